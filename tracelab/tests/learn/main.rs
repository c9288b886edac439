//! `tracelab learn` as a learner meets it: the binary runs a lesson on real services and real
//! OTLP, asks its questions, and reads the answers from a pipe. Each test computes the right
//! answers itself, from the run directory the lesson wrote (the raw OTLP JSON in
//! `spans.otlp.jsonl`, `incidents.jsonl`, `analysis.json`), not from the course's code, and
//! checks that the lesson agrees: right answers finish the lesson, wrong ones get the right
//! answer and its explanation, and where a lesson's point is structural two seeds give the
//! same answers.

mod solve;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use solve::*;

/// One lesson run at a time: two labs sharing two cores would make each other's slow
/// requests, and the first lesson is about which service makes them.
static ONE_LESSON_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tracelab-learn-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test's own data directory (its `progress.json`), removed when the test ends.
struct DataDir(PathBuf);

impl std::ops::Deref for DataDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one `tracelab learn NAME` showed.
struct Session {
    /// Everything it printed.
    stdout: String,
    /// Its exit status.
    success: bool,
    /// The answers the test computed and gave (or, with `--answers`, would have given).
    answers: Vec<String>,
}

/// Runs `tracelab learn LESSON` with `flags`, waits for its first question (the run is over
/// by then, its directory complete), computes the answers with `solve` from the run
/// directory and the questions printed so far, and pipes `transform(answers)` to its stdin.
fn take(
    lesson: &str,
    flags: &[&str],
    data_dir: &Path,
    solve: fn(&Path, &str) -> Vec<String>,
    transform: fn(&[String]) -> Vec<String>,
) -> Session {
    let _turn = ONE_LESSON_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The learner's command as typed, from a directory of its own: the run directory is
    // where the lesson puts it by default, found as a learner finds it, in the summary.
    let cwd = tempdir(lesson);
    std::fs::create_dir_all(&cwd).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("learn")
        .arg(lesson)
        .args(flags)
        .current_dir(&cwd)
        .env("TRACELAB_DATA_DIR", data_dir)
        .env_remove("OTEL_TRACES_SAMPLER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tracelab starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let answering = !flags.contains(&"--answers");
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if answering && line.starts_with("Q1. ") {
            break;
        }
    }
    // The lesson asks about every trace, so the questions follow the whole summary: by now
    // the run directory is complete.
    let out = cwd.join(
        seen.lines()
            .find_map(|l| l.trim_start().strip_prefix("run directory: "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the summary names no run directory:\n{seen}")),
    );
    let answers = solve(&out, &seen);
    let mut stdin = child.stdin.take().unwrap();
    if answering {
        let given = transform(&answers);
        stdin
            .write_all(format!("{}\n", given.join("\n")).as_bytes())
            .unwrap();
    }
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    // The run directory has served its purpose once the answers are computed.
    let _ = std::fs::remove_dir_all(&cwd);
    Session {
        stdout: seen,
        success: status.success(),
        answers,
    }
}

/// Every answer was right: the lesson says so and ends with success.
fn assert_right(session: &Session, questions: usize) {
    assert!(
        session
            .stdout
            .contains(&format!("{questions} of {questions} right.")),
        "answers {:?}:\n{}",
        session.answers,
        session.stdout
    );
    assert!(session.success);
}

/// Every answer was wrong: the lesson says so, gives each right answer with its explanation,
/// and does not end with success.
fn assert_wrong_explained(session: &Session, questions: usize) {
    assert!(!session.success, "wrong answers must not finish the lesson");
    assert!(
        session.stdout.contains(&format!("0 of {questions} right.")),
        "{}",
        session.stdout
    );
    for answer in &session.answers {
        assert!(
            session
                .stdout
                .contains(&format!("Not quite: the answer is {answer}.")),
            "{answer}:\n{}",
            session.stdout
        );
    }
}

fn right(answers: &[String]) -> Vec<String> {
    answers.to_vec()
}

/// Every answer wrong, in a way a learner might get it wrong.
fn wrong(answers: &[String]) -> Vec<String> {
    answers
        .iter()
        .map(|a| match a.parse::<u64>() {
            Ok(n) => (n + 1).to_string(),
            Err(_) if a == "sequential" => "parallel".into(),
            Err(_) if a == "link" => "parent".into(),
            Err(_) if a == "tail-errors" => "head-10pct".into(),
            Err(_) => "loadgen".into(),
        })
        .collect()
}

fn progress(data_dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir.join("progress.json")).unwrap()).unwrap()
}

fn list(data_dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("learn")
        .env("TRACELAB_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn first_trace_is_answered_from_the_run_and_the_same_on_two_seeds() {
    let data = DataDir(tempdir("data-first"));
    let before = list(&data);
    assert!(before.contains("1. [    ] first-trace"), "{before}");
    assert!(
        before.contains("Next: tracelab learn first-trace"),
        "{before}"
    );

    let session = take(
        "first-trace",
        &["--seed", "7", "--duration", "3s"],
        &data,
        solve_first_trace,
        right,
    );
    assert!(session.stdout.contains("PAGE  shop"), "{}", session.stdout);
    assert_right(&session, 3);
    assert_eq!(progress(&data)["done"]["first-trace"]["seed"], 7);
    let after = list(&data);
    assert!(after.contains("1. [done] first-trace"), "{after}");
    assert!(
        after.contains("Next: tracelab learn broken-propagation"),
        "{after}"
    );

    // Another seed, answered wrong: the lesson says so, gives the right answer with its
    // evidence, and the slow service is the same as on the first seed.
    let other = take(
        "first-trace",
        &["--seed", "8", "--duration", "3s"],
        &data,
        solve_first_trace,
        wrong,
    );
    assert!(!other.success);
    assert_eq!(session.answers[0], "payment");
    assert_eq!(other.answers[0], session.answers[0]);
    assert!(other.stdout.contains("0 of 3 right."), "{}", other.stdout);
    assert!(
        other
            .stdout
            .contains("Not quite: the answer is payment.\n  Row 1 of \"Where the time"),
        "{}",
        other.stdout
    );
    let slowest = trace_id_in(&other.stdout, "Slowest trace ");
    assert!(
        other.stdout.contains(&format!(
            "Q2. How many spans does the slowest trace, {slowest}, have?"
        )),
        "{}",
        other.stdout
    );
    assert_eq!(progress(&data)["done"]["first-trace"]["seed"], 7);
}

#[test]
fn n_plus_one_wrong_answers_get_the_evidence_and_two_seeds_agree() {
    let data = DataDir(tempdir("data-n1"));
    let session = take(
        "n-plus-one",
        &["--seed", "4", "--duration", "2s"],
        &data,
        solve_n_plus_one,
        right,
    );
    assert_right(&session, 3);

    let other = take(
        "n-plus-one",
        &["--seed", "5", "--duration", "2s"],
        &data,
        solve_n_plus_one,
        wrong,
    );
    // The structure does not depend on the seed: 10 sequential calls, 3 spans each.
    assert_eq!(other.answers, session.answers);
    assert_eq!(session.answers[1], "sequential");
    assert_wrong_explained(&other, 3);
    // The explanation points at a trace of this run.
    let typical = trace_id_in(&other.stdout, "Q1. ");
    assert!(
        other.stdout.contains(&format!("; trace {typical}: ")),
        "{}",
        other.stdout
    );
    assert!(other.stdout.contains("staircase"), "{}", other.stdout);
    // The first session's completion stays; the failed one adds nothing.
    assert_eq!(progress(&data)["done"]["n-plus-one"]["seed"], 4);
}

#[test]
fn error_origins_finds_the_leaf_and_the_retries() {
    let data = DataDir(tempdir("data-errors"));
    // The incident starts at 3 s: 4 s of load plays its first second.
    let session = take(
        "error-origins",
        &["--seed", "2", "--duration", "4s"],
        &data,
        solve_error_origins,
        right,
    );
    assert_right(&session, 3);
    assert_eq!(session.answers[0], "ledger");
    assert_eq!(session.answers[2], "during");
    // Two layers of three attempts: up to nine calls to ledger in one failing request.
    let calls: u64 = session.answers[1].parse().unwrap();
    assert!((2..=9).contains(&calls), "{calls}");
    assert!(progress(&data)["done"]["error-origins"].is_object());

    // A teacher's view of another seed: the answers are printed, nothing is asked, and the
    // lesson's point (the origin, and errors only once the incident starts) is the same.
    let teacher = take(
        "error-origins",
        &["--seed", "3", "--duration", "4s", "--answers"],
        &data,
        solve_error_origins,
        right,
    );
    assert!(teacher.success, "{}", teacher.stdout);
    assert!(
        !teacher.stdout.contains("\n> "),
        "--answers must not ask:\n{}",
        teacher.stdout
    );
    for answer in &teacher.answers {
        assert!(
            teacher.stdout.contains(&format!("answer: {answer}\n")),
            "{answer} missing from:\n{}",
            teacher.stdout
        );
    }
    assert_eq!(teacher.answers[0], session.answers[0]);
    assert_eq!(teacher.answers[2], session.answers[2]);
}

#[test]
fn cascading_timeout_tells_the_slow_service_from_the_origin() {
    let data = DataDir(tempdir("data-timeout"));
    // The incident starts at 3 s: 4 s of load plays its first second.
    let session = take(
        "cascading-timeout",
        &["--seed", "3", "--duration", "4s"],
        &data,
        solve_cascading_timeout,
        right,
    );
    assert_right(&session, 3);
    // The lesson's point: the slow service (bank) is not where failures start (gateway's
    // 1 s timeout), and that outermost timeout sets the failing request's length.
    assert_eq!(session.answers, ["bank", "gateway", "1"]);
    let listed = list(&data);
    assert!(listed.contains("[done] cascading-timeout"), "{listed}");
}

#[test]
fn broken_propagation_counts_the_fragments_and_two_seeds_agree() {
    let data = DataDir(tempdir("data-propagation"));
    // The incident starts at 3 s: 4 s of load plays its first second.
    let session = take(
        "broken-propagation",
        &["--seed", "7", "--duration", "4s"],
        &data,
        solve_broken_propagation,
        right,
    );
    assert!(session.stdout.contains("PAGE  web"), "{}", session.stdout);
    assert_right(&session, 3);
    assert!(progress(&data)["done"]["broken-propagation"].is_object());
    // More traces than requests: the requests are the traces rooted at the load generator,
    // which the lesson states in the first question.
    let traces: u64 = session.answers[0].parse().unwrap();
    let requests: u64 = session
        .stdout
        .split("The load sent ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(traces > requests, "{traces} traces for {requests} requests");

    let other = take(
        "broken-propagation",
        &["--seed", "8", "--duration", "4s"],
        &data,
        solve_broken_propagation,
        wrong,
    );
    // The structure does not depend on the seed: `api` drops the context, and a request's
    // own trace keeps loadgen, web and api's SERVER span (4 of 6 spans).
    assert_eq!(session.answers[1], "api");
    assert_eq!(other.answers[1..], session.answers[1..]);
    assert_wrong_explained(&other, 3);
    // The explanation points at a fragment of this run and at the injected mark on its root.
    assert!(
        other
            .stdout
            .contains("a CLIENT span with no parent, marked `tracelab.injected=drop_context`"),
        "{}",
        other.stdout
    );
    let cut = trace_id_in(&other.stdout, "Q3. ");
    // The trace is not drawn in the summary: the question says how to draw it.
    assert!(
        other.stdout.contains(&format!(" --trace {cut})")),
        "{}",
        other.stdout
    );
    assert!(
        other
            .stdout
            .contains(&format!("Trace {cut} is the first request"))
    );
}

#[test]
fn pool_exhaustion_tells_waiting_from_working_and_two_seeds_agree() {
    let data = DataDir(tempdir("data-pool"));
    let session = take(
        "pool-exhaustion",
        &["--seed", "1", "--duration", "3s"],
        &data,
        solve_pool_exhaustion,
        right,
    );
    assert_right(&session, 3);
    assert!(progress(&data)["done"]["pool-exhaustion"].is_object());
    // The lesson's point: the slowest request mostly waited, the work stayed at its 40 ms.
    let share: u64 = session.answers[1].parse().unwrap();
    assert!(share > 50, "{share} % waiting");
    assert_eq!(session.answers[2], "40");

    let other = take(
        "pool-exhaustion",
        &["--seed", "2", "--duration", "3s"],
        &data,
        solve_pool_exhaustion,
        wrong,
    );
    // The structure does not depend on the seed: the pool is `inventory`'s, and its work
    // stays at 40 ms however long the queue.
    assert_eq!(
        [&other.answers[0], &other.answers[2]],
        [&session.answers[0], &session.answers[2]]
    );
    assert_eq!(session.answers[0], "inventory");
    assert_wrong_explained(&other, 3);
    let slowest = trace_id_in(&other.stdout, "Slowest trace ");
    assert!(
        other.stdout.contains(&format!(
            "In the slowest trace, {slowest}, it is the long bar"
        )),
        "{}",
        other.stdout
    );
}

#[test]
fn queue_lag_finds_the_consumer_its_link_and_the_messages_left_queued() {
    let data = DataDir(tempdir("data-queue"));
    let session = take(
        "queue-lag",
        &["--seed", "9", "--duration", "4s"],
        &data,
        solve_queue_lag,
        right,
    );
    assert_right(&session, 4);
    // The lesson's point does not depend on the run: `fulfilment` consumes in traces of its
    // own, tied by a link; the request does not wait for the queue's ~800 ms; and with 4 s of
    // load some messages are still queued at the end.
    assert_eq!(session.answers[..3], ["fulfilment", "link", "no"]);
    let queued: u64 = session.answers[3].parse().unwrap();
    assert!((1..=20).contains(&queued), "{queued} queued");

    let other = take(
        "queue-lag",
        &["--seed", "10", "--duration", "4s"],
        &data,
        solve_queue_lag,
        wrong,
    );
    assert_eq!(other.answers[..3], session.answers[..3]);
    assert_wrong_explained(&other, 4);
}

#[test]
fn head_vs_tail_keeps_the_incident_only_with_the_tail_on_two_seeds() {
    let data = DataDir(tempdir("data-sampling"));
    let session = take(
        "head-vs-tail",
        &["--seed", "2", "--duration", "6s"],
        &data,
        solve_head_vs_tail,
        right,
    );
    assert_right(&session, 3);
    // The table the questions are about is printed before them.
    assert!(
        session
            .stdout
            .contains("The same traces under each sampling strategy"),
        "{}",
        session.stdout
    );
    // The lesson's point does not depend on the seed: only the tail keeps the incident, and
    // keeping every error of a retry storm costs most of the bytes.
    assert_eq!(session.answers[1..], ["tail-errors", "yes"]);

    let other = take(
        "head-vs-tail",
        &["--seed", "3", "--duration", "6s"],
        &data,
        solve_head_vs_tail,
        wrong,
    );
    assert_eq!(other.answers[1..], session.answers[1..]);
    assert_wrong_explained(&other, 3);
}

#[test]
fn reproduce_imports_the_run_and_the_copy_tells_the_same_story() {
    let data = DataDir(tempdir("data-reproduce"));
    let session = take(
        "reproduce",
        &["--seed", "7", "--duration", "4s"],
        &data,
        solve_reproduce,
        right,
    );
    assert_right(&session, 3);
    // The copy's slow requests wait on the same service as production's, and it has the
    // quickstart's six services.
    assert_eq!(session.answers, ["payment", "payment", "6"]);
    assert!(
        session.stdout.contains("The reproduction ("),
        "{}",
        session.stdout
    );

    let other = take(
        "reproduce",
        &["--seed", "8", "--duration", "4s"],
        &data,
        solve_reproduce,
        wrong,
    );
    assert_eq!(other.answers, session.answers);
    assert_wrong_explained(&other, 3);
}

#[test]
fn clock_skew_finds_the_wrong_clock_and_no_slower_requests_on_two_seeds() {
    let data = DataDir(tempdir("data-skew"));
    let session = take(
        "clock-skew",
        &["--seed", "8", "--duration", "7s"],
        &data,
        solve_clock_skew,
        right,
    );
    assert_right(&session, 4);
    // The lesson's point does not depend on the run: `payments`' clock, 1.5 s fast, for the
    // 3 s of the incident (about 30 requests at 10/s), and no request slower for it.
    assert_eq!(session.answers[0], "payments");
    let traces: u64 = session.answers[1].parse().unwrap();
    assert!((25..=35).contains(&traces), "{traces} traces");
    assert_eq!(session.answers[2], "1500");
    assert_eq!(session.answers[3], "no");
    // What the learner is pointed at is printed: the summary's line, a waterfall of such a
    // trace, and the incident at its place in the run.
    assert!(
        session.stdout.contains("Spans outside their parent: "),
        "{}",
        session.stdout
    );
    trace_id_in(&session.stdout, "Trace with a span outside its parent ");
    assert!(
        session
            .stdout
            .contains("+   3.0s for   3.0s  payments' clock is 1.5 s fast"),
        "{}",
        session.stdout
    );

    let other = take(
        "clock-skew",
        &["--seed", "9", "--duration", "7s"],
        &data,
        solve_clock_skew,
        wrong,
    );
    assert_eq!(
        [&other.answers[0], &other.answers[2], &other.answers[3]],
        [
            &session.answers[0],
            &session.answers[2],
            &session.answers[3]
        ]
    );
    assert_wrong_explained(&other, 4);
}

#[test]
fn an_unknown_lesson_names_the_lessons() {
    let output = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .args(["learn", "first-trac"])
        .env("TRACELAB_DATA_DIR", &*DataDir(tempdir("data-unknown")))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no lesson `first-trac`")
            && stderr.contains("first-trace, broken-propagation, n-plus-one"),
        "{stderr}"
    );
}
