//! `tracelab learn`: the scenario library as a course. Without a name it lists the lessons and
//! which are done; with one it prints the lesson's brief, runs its scenario through the same
//! session as `tracelab run`, and asks questions whose right answers come from that run.
//!
//! Layout:
//! - [`lessons`]: the table of lessons, in course order.
//! - [`questions`]: the questions each lesson computes from its run, and answer checking.
//! - [`progress`]: which lessons are done, in the user's data directory.

pub mod lessons;
pub mod progress;
pub mod questions;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;
use tracelab_receiver::ReceiverConfig;
use tracelab_telemetry::OtlpProtocol;

use crate::run::{RunOptions, run_lab};
use crate::rundir::RunDir;
use lessons::{LESSONS, Lesson};
use progress::{Completion, Progress};
use questions::{Evidence, Question};

/// `tracelab learn`.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// The lesson to take; without one, the list of lessons and which are done.
    pub lesson: Option<String>,
    /// Print the right answers after the run instead of asking (for a teacher).
    #[arg(long)]
    pub answers: bool,
    /// Seed of every random draw (overrides the lesson's scenario).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long to send load (overrides the lesson's scenario), e.g. 5s.
    #[arg(long, value_parser = crate::cli::parse_duration)]
    pub duration: Option<Duration>,
    /// Run directory to write (default: runs/<scenario>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run the lesson on this scenario file instead of the library's copy: your own edit of
    /// it, for the lesson's next experiment.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

/// The `tracelab learn` command.
pub fn learn_command(args: &LearnArgs) -> anyhow::Result<ExitCode> {
    let data = progress::data_dir()?;
    let Some(name) = &args.lesson else {
        print!("{}", render_list(&Progress::load(&data)?));
        return Ok(ExitCode::SUCCESS);
    };
    let lesson = lessons::find(name).with_context(|| {
        let names: Vec<&str> = LESSONS.iter().map(|l| l.name).collect();
        format!(
            "no lesson `{name}`; the lessons are: {} (`tracelab learn` lists them)",
            names.join(", ")
        )
    })?;
    take_lesson(lesson, args, &data)
}

/// The course in order, one line each, with a mark on the lessons done.
pub fn render_list(progress: &Progress) -> String {
    let mut out = String::from("The tracelab course, in order:\n\n");
    let width = LESSONS.iter().map(|l| l.name.len()).max().unwrap_or(0);
    let topics = LESSONS.iter().map(|l| l.topic.len()).max().unwrap_or(0);
    for (i, lesson) in LESSONS.iter().enumerate() {
        let mark = if progress.done.contains_key(lesson.name) {
            "done"
        } else {
            "    "
        };
        out.push_str(&format!(
            "  {:>2}. [{mark}] {:<width$}  {:<topics$}  {}\n",
            i + 1,
            lesson.name,
            lesson.topic,
            lesson.goal
        ));
    }
    let done = LESSONS
        .iter()
        .filter(|l| progress.done.contains_key(l.name))
        .count();
    out.push_str(&format!("\n{done} of {} done. ", LESSONS.len()));
    match LESSONS.iter().find(|l| !progress.done.contains_key(l.name)) {
        Some(next) => out.push_str(&format!("Next: tracelab learn {}\n", next.name)),
        None => out.push_str("The course is done.\n"),
    }
    out
}

/// Brief, run, questions, progress.
fn take_lesson(
    lesson: &Lesson,
    args: &LearnArgs,
    data: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let (label, source) = match &args.scenario {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read scenario file {}", path.display()))?,
        ),
        None => (
            lesson.scenario_file.to_string(),
            lesson.scenario_source.to_string(),
        ),
    };
    let scenario = tracelab_scenario::parse(&source, &label)
        .map_err(|d| anyhow::anyhow!("{label} has {} problem(s):\n{d}", d.0.len()))?;
    let overrides = crate::check::Overrides {
        duration: args.duration,
        rate: None,
        seed: args.seed,
        shape: crate::check::LoadShapeArgs::default(),
    };
    let scenario = crate::check::apply_overrides(scenario, &overrides, &label)?;
    let seed = scenario.seed;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| RunDir::default_path(&scenario.name));

    println!(
        "Lesson {}: {}\n\n{}\n",
        lesson.name, lesson.goal, lesson.brief
    );
    println!(
        "Running {label} (seed {seed}, {} of load)...",
        humantime::format_duration(scenario.load.duration)
    );
    let options = RunOptions {
        scenario,
        scenario_source: source,
        scenario_file: label,
        out,
        protocol: OtlpProtocol::Grpc,
        // Free ports: a lesson must not fail because a Collector holds 4317 (or a classmate's
        // lesson does, on a shared machine).
        receiver: ReceiverConfig::ephemeral(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        settle_timeout: Duration::from_secs(15),
        // The questions look into any trace of the run, not only the ones the report shows.
        keep_traces: true,
    };
    let runtime = crate::session::lab_runtime()?;
    let outcome = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        run_lab(options, shutdown).await
    })?;
    print!("{}", outcome.report.render_text());
    if !outcome.report.timing.trustworthy {
        println!(
            "  (For this lesson: the questions are about this run's own traces, so their answers \
             hold however busy the machine was; the warning matters when you compare this \
             run's timings with another's.)"
        );
    }
    print!(
        "\n{}",
        crate::report::render_terminal(&outcome.analysis, &outcome.traces)
    );
    crate::run::print_incidents(
        &outcome.incidents,
        outcome.analysis.overview.first_start_unix_nano,
    );
    println!(
        "\n  run directory: {} (open report.html in it for the interactive view)",
        outcome.dir.display()
    );

    // A lesson about sampling compares its strategies on the run, as `run --strategies` does.
    let sampling = match lesson.strategies {
        Some(strategies) => {
            let path = outcome.dir.join("strategies.yaml");
            crate::rundir::write_atomically(&path, strategies.as_bytes())?;
            let comparison = crate::run::sampling_comparison(&outcome, &path)?;
            print!(
                "\nThe same traces under each sampling strategy ({}):\n{}",
                path.display(),
                comparison.to_table()
            );
            Some(comparison)
        }
        None => None,
    };
    let reproduction = if lesson.reproduce {
        Some(reproduce(&outcome, &runtime)?)
    } else {
        None
    };
    let evidence = Evidence {
        analysis: &outcome.analysis,
        traces: &outcome.traces,
        incidents: &outcome.incidents,
        sampling: sampling.as_ref(),
        reproduction: reproduction.as_ref().map(|r| &r.analysis),
    };
    let questions = (lesson.questions)(&evidence).map_err(|why| {
        anyhow::anyhow!(
            "this run cannot answer the lesson's questions: {why}; run it again, longer \
             (--duration) or with the lesson's own scenario"
        )
    })?;
    if args.answers {
        println!("\nAnswers (for the teacher):");
        for (i, q) in questions.iter().enumerate() {
            println!();
            say(&format!("Q{}. ", i + 1), "    ", &q.prompt);
            println!("  answer: {}", q.answer);
            say("  ", "  ", &q.explanation);
        }
        print_next(lesson, &outcome.dir);
        return Ok(ExitCode::SUCCESS);
    }
    let right = ask(&questions, &mut std::io::stdin().lock(), &outcome.dir)?;
    println!("\n{right} of {} right.", questions.len());
    print_next(lesson, &outcome.dir);
    if right < questions.len() {
        println!(
            "\nRun `tracelab learn {}` again to finish the lesson (a new run asks about its own \
             traces).",
            lesson.name
        );
        return Ok(ExitCode::from(1));
    }
    let mut progress = Progress::load(data)?;
    progress.done.insert(
        lesson.name.to_string(),
        Completion {
            finished_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            seed,
            run_directory: outcome.dir.display().to_string(),
        },
    );
    progress.save(data)?;
    println!("\nLesson {} done.", lesson.name);
    if let Some(next) = LESSONS.iter().find(|l| !progress.done.contains_key(l.name)) {
        println!("Next lesson: tracelab learn {}", next.name);
    } else {
        println!("That was the last lesson: the course is done.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports the run's traces into `imported.yaml` in its directory, as `tracelab import` does,
/// runs that scenario into `reproduction/` beside it, and prints the copy's service table.
fn reproduce(
    outcome: &crate::run::RunOutcome,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<crate::run::RunOutcome> {
    let path = outcome.dir.join("imported.yaml");
    let file = path.display().to_string();
    let imported = crate::import::import_files(
        std::slice::from_ref(&outcome.dir),
        tracelab_import::ImportOptions {
            name: format!("{}-imported", outcome.report.scenario.name),
            anonymize: false,
            sources: Vec::new(),
            output: Some(file.clone()),
        },
    )?;
    let yaml = imported.to_yaml();
    crate::rundir::write_atomically(&path, yaml.as_bytes())?;
    let scenario = imported.scenario;
    println!(
        "\nImported {} traces into {file}: {} services; running it (the reproduction)...",
        imported.traces,
        scenario.services.len()
    );
    let options = RunOptions {
        scenario,
        scenario_source: yaml,
        scenario_file: file,
        out: outcome.dir.join("reproduction"),
        protocol: OtlpProtocol::Grpc,
        receiver: ReceiverConfig::ephemeral(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        settle_timeout: Duration::from_secs(15),
        keep_traces: false,
    };
    let copy = runtime.block_on(run_lab(options, CancellationToken::new()))?;
    println!(
        "\nThe reproduction ({}):\n{}",
        copy.dir.display(),
        tracelab_analysis::render_service_table(&copy.analysis)
    );
    Ok(copy)
}

/// The next experiment, and where to find the scenario it edits: the run directory holds the
/// exact file the lesson ran, which a learner without the repository's `scenarios/` has too.
fn print_next(lesson: &Lesson, run_dir: &std::path::Path) {
    println!("\nNext experiment: {}", lesson.next);
    println!(
        "  (The scenario this lesson ran, to copy: {}; in the repository it is {}.)",
        run_dir.join("scenario.yaml").display(),
        lesson.scenario_file
    );
}

/// Asks each question, one answer per line of `input` (a terminal or a pipe), and says right
/// or wrong with the explanation; a question naming a trace says how to draw it from the run
/// directory. Returns how many were right; a missing line is a wrong
/// answer.
fn ask(
    questions: &[Question],
    input: &mut dyn BufRead,
    run_dir: &std::path::Path,
) -> anyhow::Result<usize> {
    println!("\nQuestions: answer each on one line.");
    let mut right = 0;
    for (i, q) in questions.iter().enumerate() {
        println!();
        say(&format!("Q{}. ", i + 1), "    ", &q.prompt);
        // A question about a trace the summary did not draw says how to draw it.
        if let Some(id) = q
            .prompt
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|word| word.len() == 32)
        {
            println!(
                "    (its waterfall: tracelab report {} --trace {id})",
                run_dir.display()
            );
        }
        print!("> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        let read = input
            .read_line(&mut line)
            .context("cannot read an answer")?;
        if read == 0 {
            println!("(no answer)");
        } else if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // A piped answer is not echoed by a terminal: show it, so the transcript reads.
            println!("{}", line.trim_end());
        }
        if q.answer.accepts(&line) {
            right += 1;
            println!("Right: {}.", q.answer);
        } else {
            println!("Not quite: the answer is {}.", q.answer);
        }
        say("  ", "  ", &q.explanation);
    }
    Ok(right)
}

/// Prints `text` after `first`, its further lines after `rest`: wrapped at word boundaries to
/// the terminal's width when the output is a terminal (an explanation runs to 300 columns, and
/// a terminal would break it mid-word), on one line per paragraph otherwise, so that pipes and
/// transcripts keep each answer and explanation on one line.
fn say(first: &str, rest: &str, text: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!("{}", wrapped(first, rest, text, textwrap::termwidth()));
    } else {
        println!("{first}{text}");
    }
}

/// `text` wrapped to `width` columns (at least 40), `first` before its first line and `rest`
/// before the others. Lines break at spaces only: a word (a trace id, a path, a hyphenated
/// name) stays whole even when longer than a line, so that it can still be copied.
fn wrapped(first: &str, rest: &str, text: &str, width: usize) -> String {
    let options = textwrap::Options::new(width.max(40))
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    textwrap::fill(text, options)
}

#[cfg(test)]
mod tests {
    use super::wrapped;

    const TEXT: &str = "`payment: POST /pay` is the deepest failing span in 12 failed trace(s), \
        e.g. 0af7651916cd43dd8448eb211c80319c. The spans above it failed only because it did.";

    #[test]
    fn explanations_wrap_at_word_boundaries_under_their_indent() {
        let out = wrapped("  ", "  ", TEXT, 60);
        assert!(out.lines().count() > 2, "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= 60, "{line:?} is wider than 60");
            assert!(line.starts_with("  "), "{line:?}");
        }
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(&out), words(TEXT), "no word broken or lost");
    }

    #[test]
    fn a_prompt_keeps_its_number_and_indents_what_follows() {
        let out = wrapped("Q1. ", "    ", TEXT, 40);
        assert!(out.starts_with("Q1. `payment:"), "{out}");
        assert!(out.lines().skip(1).all(|l| l.starts_with("    ")), "{out}");
        let path = "/home/learner/.local/share/tracelab/runs/first-trace-20261205-044000";
        let out = wrapped("  ", "  ", &format!("the run directory: {path}"), 40);
        assert!(
            out.contains(path),
            "a word wider than the line stays whole: {out}"
        );
    }
}
