//! The course: one table of lessons in course order. A lesson is a scenario of the library
//! (built into the binary, so the course works from any directory), an on-call brief, the
//! questions asked about the run, and the experiment to try next.

use super::questions::{self, Evidence, Question};

/// One lesson of the course.
pub struct Lesson {
    /// What `tracelab learn NAME` takes.
    pub name: &'static str,
    /// The part of the course it belongs to (basics, latency, errors, ...).
    pub topic: &'static str,
    /// One line: what the learner will be able to do after it.
    pub goal: &'static str,
    /// The scenario file of the library it runs, as the repository names it.
    pub scenario_file: &'static str,
    /// That file's text.
    pub scenario_source: &'static str,
    /// The story, as an on-call page would tell it.
    pub brief: &'static str,
    /// The questions, computed from the run.
    pub questions: fn(&Evidence<'_>) -> Result<Vec<Question>, String>,
    /// Sampling strategies (a `tracelab compare` strategies file) to compare on the run, for
    /// a lesson about sampling.
    pub strategies: Option<&'static str>,
    /// Whether the lesson imports its run's traces into a scenario (`tracelab import`) and
    /// runs that scenario too, for a lesson about reproducing a system from its traces.
    pub reproduce: bool,
    /// The experiment to try next: a flag or a one-line scenario edit.
    pub next: &'static str,
}

/// Every lesson, in course order.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        name: "first-trace",
        topic: "basics",
        goal: "read a trace: its spans, the waterfall, and who owns the critical path",
        scenario_file: "scenarios/quickstart.yaml",
        scenario_source: include_str!("../../../scenarios/quickstart.yaml"),
        brief: "\
PAGE  shop / checkout latency  ·  severity: low
  Customers say paying sometimes takes a while. Nothing is down. The shop is six services:
  `frontend` serves the page (which asks `catalog` for products and, some of the time,
  `recommendations`) and `/buy`, which hands over to `checkout`; `checkout` asks `cart`,
  then `payment`, then `catalog`. Every request is one trace: a tree of spans, one
  per piece of work, each with a service, a name, a start and an end.
  Your job: find which service the slow requests are waiting on.
  Words you will meet: p50 is the median latency (half the requests are faster), p99 the
  latency only the slowest 1 % exceed; `loadgen` is tracelab's own load generator, the
  \"user\" whose request starts every trace. The lines `driver`, `tail`, `client` and
  `precision` are for a closer look at the load (how requests were spaced, the rarest
  latencies, requests sent late or not at all, how exactly the injected waits ran): skip
  them for now.
  What to look at: the service table (ranked by share of the critical path, the chain of
  work the request actually waited for) and the waterfall of the slowest trace (one row per
  span, indented under its parent; █ is time on the critical path, ░ time spent waiting for
  children or beside the path).",
        questions: questions::first_trace,
        strategies: None,
        reproduce: false,
        next: "\
Try another seed (`tracelab learn first-trace --seed 8`): does the same service still lead?
  Then copy scenarios/quickstart.yaml, give `payment`'s `bank.authorize` the latency
  `{constant: 5}`, and run `tracelab learn first-trace --scenario YOUR_COPY`: who leads now?",
    },
    Lesson {
        name: "broken-propagation",
        topic: "propagation",
        goal: "see what a service that drops the trace context does to your traces",
        scenario_file: "scenarios/broken-propagation.yaml",
        scenario_source: include_str!("../../../scenarios/broken-propagation.yaml"),
        brief: "\
PAGE  web / traces missing their database calls  ·  severity: low
  Nothing fails and nothing is slow, but the tracing backend counts more traces than the
  load balancer counts requests, and some requests' traces stop at `api`: the `db` query
  they surely made is not in them. `web` calls `api`, which calls `db`; each call should pass
  the trace context on (the `traceparent` header), so that the callee's spans join the
  caller's trace.
  Your job: count the traces, find the service that loses the context, and see what is left
  of a request's trace once it is lost.
  What to look at: the `traces` line of the summary (received against the requests sent),
  the incidents list, and the spans-per-trace range (min and max).",
        questions: questions::broken_propagation,
        strategies: None,
        reproduce: false,
        next: "\
Copy scenarios/broken-propagation.yaml and add `fraction: 0.5` to the incident's fault, then
  run `tracelab learn broken-propagation --scenario YOUR_COPY`: how many extra traces now?
  Then open report.html in the run directory: the trace health panel counts what the backend
  can and cannot join.",
    },
    Lesson {
        name: "n-plus-one",
        topic: "latency",
        goal: "spot sequential fan-out (N+1 calls) in a waterfall and predict its cost",
        scenario_file: "scenarios/n-plus-one.yaml",
        scenario_source: include_str!("../../../scenarios/n-plus-one.yaml"),
        brief: "\
PAGE  orders / GET /order slower than its parts  ·  severity: low
  Every dependency of `orders` is fast: `catalog` answers in a few milliseconds. Yet an order
  takes far longer than any single lookup, and it gets slower as orders get bigger.
  Your job: find out how `orders` uses `catalog`, and what that costs per item.
  What to look at: the waterfall of the slowest trace. Count the calls to `catalog`, and
  look at whether their bars overlap or form a staircase.",
        questions: questions::n_plus_one,
        strategies: None,
        reproduce: false,
        next: "\
Copy scenarios/n-plus-one.yaml and change `repeat: 10` to `repeat: 20`, then run
  `tracelab learn n-plus-one --scenario YOUR_COPY`: check your prediction of the span count.
  Then put the calls in a `parallel:` group instead and compare the durations
  (`tracelab diff BEFORE AFTER` on the two run directories).",
    },
    Lesson {
        name: "error-origins",
        topic: "errors",
        goal: "tell where a failure started from where it only travelled, retries included",
        scenario_file: "scenarios/retry-storm.yaml",
        scenario_source: include_str!("../../../scenarios/retry-storm.yaml"),
        brief: "\
PAGE  frontend / error rate above 5 %  ·  severity: high
  Users get errors from `frontend`. `frontend` calls `api`, which calls `ledger`; both
  callers retry a failed call up to 3 times. Every span on the way up is marked failed (✗),
  so every service looks guilty.
  Your job: find the service where the failures start, how much extra traffic the retries
  made, and when it began compared with the incident the run played.
  What to look at: the waterfall of the first failing trace (the deepest ✗ is the origin),
  and the incidents list at the end of the summary.",
        questions: questions::error_origins,
        strategies: None,
        reproduce: false,
        next: "\
Copy scenarios/retry-storm.yaml, set `api`'s retry to `{attempts: 1}`, and run
  `tracelab learn error-origins --scenario YOUR_COPY`: how many times is `ledger` called in a
  failing trace now? Retrying at one layer only is the usual fix.",
    },
    Lesson {
        name: "cascading-timeout",
        topic: "timeouts",
        goal: "tell the slow service from the timeout that failed the request",
        scenario_file: "scenarios/cascading-timeout.yaml",
        scenario_source: include_str!("../../../scenarios/cascading-timeout.yaml"),
        brief: "\
PAGE  gateway / 502s on checkout  ·  severity: high
  `gateway` answers 502 to some checkouts. The chain is gateway → orders → payment → bank,
  and each caller has a timeout: gateway gives orders 1 s, orders gives payment 2 s, payment
  gives bank 3 s. Someone says bank is slow; someone else says bank never returned an error.
  Your job: find the slow service, the service where the failures start, and what sets how
  long a failing request takes.
  What to look at: the service table, and the waterfall of the first failing trace: which
  rows are marked ✗, and which are only cut short.",
        questions: questions::cascading_timeout,
        strategies: None,
        reproduce: false,
        next: "\
Copy scenarios/cascading-timeout.yaml and make the timeouts shrink down the chain (gateway
  3s, orders 2s, payment 1s), then run `tracelab learn cascading-timeout --scenario
  YOUR_COPY`: where do the failures start now, and how long does a failing request take?",
    },
    Lesson {
        name: "pool-exhaustion",
        topic: "resources",
        goal: "tell waiting for a worker from working: a pool too small for its traffic",
        scenario_file: "scenarios/pool-exhaustion.yaml",
        scenario_source: include_str!("../../../scenarios/pool-exhaustion.yaml"),
        brief: "\
PAGE  storefront / p99 latency climbing  ·  severity: medium
  `storefront` gets slower by the minute; no deploy, no errors. It calls `inventory` for
  every page, and `inventory` says its handler has not changed and takes the same time as
  ever. `inventory` serves requests with a small pool of workers: a request that finds
  every worker busy waits in line.
  Your job: find whose pool is the bottleneck, how much of a slow request is waiting rather
  than working, and how long the work itself takes.
  What to look at: the service table, the waterfall of the slowest trace (the `worker pool
  wait` row under `inventory`), and the operations in report.html (self time against
  latency).",
        questions: questions::pool_exhaustion,
        strategies: None,
        reproduce: false,
        next: "\
Copy scenarios/pool-exhaustion.yaml and raise `concurrency: 2` to `concurrency: 3`, then run
  `tracelab learn pool-exhaustion --scenario YOUR_COPY`: does the wait still grow? Then try
  `--rate 40` on the original with `tracelab run`: the same pool, less traffic.",
    },
    Lesson {
        name: "queue-lag",
        topic: "messaging",
        goal: "follow work through a queue: a trace of its own, tied to the request by a link",
        scenario_file: "scenarios/queue-lag.yaml",
        scenario_source: include_str!("../../../scenarios/queue-lag.yaml"),
        brief: "\
PAGE  fulfilment / orders shipped late  ·  severity: medium
  Orders are confirmed in a few milliseconds, yet the warehouse says shipments start long
  after. `checkout` answers `POST /order` at once and publishes an `orders` message to a
  queue; `fulfilment` takes messages off the queue and ships them. The tracing backend shows
  the order requests as fast, and some traces that start at `fulfilment` with no request
  before them.
  Your job: find where those traces come from, how they are tied to the orders, and whether
  a customer waits for the queue.
  What to look at: the service table (`requests` of each service), the slowest trace (its
  root), and the `latency` line at the top.",
        questions: questions::queue_lag,
        strategies: None,
        reproduce: false,
        next: "\
Copy the scenario and raise the lag (`median_ms: 3000`), then run `tracelab learn queue-lag
  --scenario YOUR_COPY`: how many messages are still queued at the end now? Then open
  report.html, click a `process orders` span and follow its link to the order that sent it.",
    },
    Lesson {
        name: "clock-skew",
        topic: "trace data",
        goal: "recognise a host whose clock is off, and not mistake it for a slow request",
        scenario_file: "scenarios/clock-skew.yaml",
        scenario_source: include_str!("../../../scenarios/clock-skew.yaml"),
        brief: "\
PAGE  shop / traces a second and a half long  ·  severity: low
  The tracing backend shows some `/pay` traces that last over a second, and in their
  waterfalls a span sits to the right of the span that called it, as if the work had
  happened after the caller stopped waiting. The load balancer's latency graph is flat.
  `shop` calls `payments`; each host stamps its spans with its own clock.
  Your job: find whose timestamps are wrong, by how much, for how long, and whether any
  user actually waited longer.
  What to look at: the \"Spans outside their parent\" line and the waterfall under it, the
  incidents list, and the `latency` line at the top (the load generator's own clock).",
        questions: questions::clock_skew,
        strategies: None,
        reproduce: false,
        next: "\
Copy scenarios/clock-skew.yaml and make the offset negative (`offset_ms: -1500`), then run
  `tracelab learn clock-skew --scenario YOUR_COPY`: which way do the spans stick out now? Then
  open report.html: its trace health panel counts the spans outside their parents.",
    },
    Lesson {
        name: "head-vs-tail",
        topic: "sampling",
        goal: "compare head and tail sampling on the same traces: what each keeps, at what cost",
        scenario_file: "scenarios/retry-storm.yaml",
        scenario_source: include_str!("../../../scenarios/retry-storm.yaml"),
        brief: "\
TICKET  platform / tracing bill  ·  severity: planning
  Storing every trace costs too much; the platform team must keep only some. Head sampling
  decides at the first service, from the trace id, before anything has happened: cheap, but
  blind. Tail sampling (the Collector's `tail_sampling`) waits until a trace is whole and
  keeps the ones its policies like (errors, say), at the price of buffering every trace.
  This run replays the retry-storm incident (`ledger` fails from 3 s to 6 s, and two layers
  of retries multiply the calls), then replays its traces through `head-10pct` (keep 10 %
  of traces) and `tail-errors` (keep every error trace, and 10 % of the rest).
  Your job: find which strategy keeps the incident, and what keeping it costs.
  What to look at: the strategy table after the summary: traces, spans and MB kept, and
  each strategy's recall of error and incident traces.",
        questions: questions::head_vs_tail,
        strategies: Some(HEAD_VS_TAIL_STRATEGIES),
        reproduce: false,
        next: "\
Copy the scenario and lower the incident's error rate (`rate: 0.2` in the fault), then run
  `tracelab learn head-vs-tail --scenario YOUR_COPY`: does tail sampling still cost as much?
  Then try your own strategies on the run: `tracelab compare RUN_DIR --strategies FILE`
  (sampling/strategies.example.yaml in the repository is a start).",
    },
    Lesson {
        name: "reproduce",
        topic: "import",
        goal: "turn traces into a scenario with `tracelab import`, and check the copy behaves",
        scenario_file: "scenarios/quickstart.yaml",
        scenario_source: include_str!("../../../scenarios/quickstart.yaml"),
        brief: "\
TICKET  shop / reproduce production in the lab  ·  severity: planning
  You have traces from production but not its code, and you want a lab copy to try changes
  on: more traffic, a slower dependency, another sampling strategy. `tracelab import` reads
  traces (OTLP/JSON, Jaeger or Zipkin JSON) and writes a scenario: the services and routes
  it saw, who calls whom and how often, latency distributions fitted to each span's own time,
  error rates and the load.
  This lesson plays production with the shop of the first lesson, imports its traces into
  `imported.yaml` in the run directory, runs that scenario, and asks whether the copy tells
  the same story.
  What to look at: the first service table (production), then the reproduction's table.",
        questions: questions::reproduce,
        strategies: None,
        reproduce: true,
        next: "\
Open imported.yaml in the run directory: each fitted latency has a comment saying what it was
  fitted from. Give `payment`'s slow step a constant latency there and run it with `tracelab
  run`, then compare the two runs: `tracelab diff RUN_DIR RUN_DIR_OF_YOUR_EDIT`.",
    },
];

/// The strategies the sampling lesson compares: head sampling at 10 % against a tail policy
/// that keeps every error and a tenth of the rest (the names are the questions').
const HEAD_VS_TAIL_STRATEGIES: &str = "\
# The strategies `tracelab learn head-vs-tail` compares (a `tracelab compare` strategies file).
slow_threshold: p99
strategies:
  - name: head-10pct
    head: {sampler: parentbased_traceidratio, arg: 0.1}
  - name: tail-errors
    tail:
      inline:
        decision_wait: 5s
        num_traces: 50000
        policies:
          - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
          - {name: some-of-the-rest, type: probabilistic, probabilistic: {sampling_percentage: 10}}
";

/// The lesson called `name`.
pub fn find(name: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_scenario_is_valid_and_names_are_unique() {
        for lesson in LESSONS {
            tracelab_scenario::parse(lesson.scenario_source, lesson.scenario_file)
                .unwrap_or_else(|d| panic!("{}: {d}", lesson.name));
            if let Some(strategies) = lesson.strategies {
                let file = tracelab_sampling::compare::strategies::parse_strategies(
                    strategies,
                    lesson.name,
                    std::path::Path::new("."),
                )
                .unwrap_or_else(|e| panic!("{}: {e}", lesson.name));
                let names: Vec<&str> = file.strategies.iter().map(|s| s.name.as_str()).collect();
                // The sampling lesson's questions name these two.
                assert_eq!(names, [questions::HEAD, questions::TAIL], "{}", lesson.name);
            }
            assert_eq!(
                LESSONS.iter().filter(|l| l.name == lesson.name).count(),
                1,
                "{} is listed twice",
                lesson.name
            );
        }
    }
}
