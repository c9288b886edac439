//! Every problem in a scenario file is reported with its file, line, column and field path.

use tracelab_scenario::{Diagnostic, parse};

/// A small valid scenario that the tests below break one way at a time.
const BASE: &str = "\
services:
  api:
    routes:
      /a:
        latency: {constant: 1}
        steps:
          - {call: db, route: /q}
  db:
    routes:
      /q:
        latency: {lognormal: {median_ms: 3, sigma: 0.5}}
load:
  rate: 10
  duration: 1s
  entries:
    - {service: api, route: /a}
";

fn diagnostics(source: &str) -> Vec<Diagnostic> {
    match parse(source, "test.yaml") {
        Ok(scenario) => panic!("expected diagnostics, parsed {scenario:#?}"),
        Err(diagnostics) => diagnostics.0,
    }
}

/// `BASE` with `from` (which occurs exactly once) replaced by `to`.
fn broken(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replacen(from, to, 1)
}

/// The 1-based line and column of the only occurrence of `needle` in `source`: the oracle for
/// where a diagnostic must point, worked out from the text rather than from the parser. A `|`
/// in the needle marks the point inside it (`max_parallel: |0` is the `0`).
fn position(source: &str, needle: &str) -> (usize, usize) {
    let (prefix, rest) = needle.split_once('|').unwrap_or(("", needle));
    let whole = format!("{prefix}{rest}");
    assert_eq!(
        source.matches(&whole).count(),
        1,
        "`{whole}` must occur once"
    );
    let offset = source.find(&whole).unwrap_or_default() + prefix.len();
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Asserts that exactly one diagnostic is at `path`, that it says `message` and sits at the
/// start of `at` in `source`; returns it for further checks.
fn expect(source: &str, path: &str, message: &str, at: &str) -> Diagnostic {
    let all = diagnostics(source);
    let listing: Vec<String> = all.iter().map(ToString::to_string).collect();
    let matching: Vec<&Diagnostic> = all
        .iter()
        .filter(|diagnostic| diagnostic.path == path)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one diagnostic at `{path}` expected, got:\n{}",
        listing.join("\n")
    );
    let diagnostic = matching[0].clone();
    assert!(
        diagnostic.message.contains(message),
        "`{}` does not say `{message}`",
        diagnostic.message
    );
    assert_eq!(
        (diagnostic.line, diagnostic.column),
        position(source, at),
        "position of {diagnostic}"
    );
    assert_eq!(diagnostic.file, "test.yaml");
    diagnostic
}

#[test]
fn base_is_valid() {
    parse(BASE, "test.yaml").expect("BASE is valid");
}

#[test]
fn a_typo_and_a_dangling_call_are_both_reported() {
    let source = "\
services:
  api:
    routes:
      /a:
        latncy: {constant: 1}
        steps:
          - {call: db, route: /qq}
  db:
    routes:
      /q: {}
load:
  rate: 10
  duration: 1s
  entries:
    - {service: api, route: /a}
";
    let all = diagnostics(source);
    let rendered: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "test.yaml:5:9: services.api.routes./a.latncy: unknown field `latncy` in a route\n  \
             help: did you mean `latency`? (expected one of: method, latency, errors, steps)",
            "test.yaml:7:31: services.api.routes./a.steps[0].route: no route `/qq` in service `db`\n  \
             help: did you mean `/q`? (routes: /q)",
        ]
    );
}

#[test]
fn every_unknown_field_is_reported_at_once() {
    let source = broken("  rate: 10\n", "  rat: 10\n  durration: 2s\n");
    let all = diagnostics(&source);
    let paths: Vec<&str> = all
        .iter()
        .map(|diagnostic| diagnostic.path.as_str())
        .collect();
    // The missing field is reported where the mapping that lacks it begins, which is the
    // line of its first key.
    assert_eq!(paths, ["load.rat", "load.rate", "load.durration"]);
    assert_eq!(all[1].message, "missing field `rate` in the load");
    assert_eq!((all[1].line, all[1].column), position(&source, "rat:"));
    assert!(
        all[2]
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("did you mean `duration`?")
    );
    assert_eq!((all[2].line, all[2].column), position(&source, "durration"));
}

#[test]
fn diagnostics_are_in_file_order_and_displayed_one_per_problem() {
    let source = broken("rate: 10", "rate: 0").replace("/q:\n", "q:\n");
    let error = parse(&source, "test.yaml").expect_err("two problems");
    let lines: Vec<usize> = error.iter().map(|diagnostic| diagnostic.line).collect();
    assert_eq!(lines.len(), 3, "{error}");
    assert!(lines.windows(2).all(|pair| pair[0] <= pair[1]), "{error}");
    assert_eq!(
        error
            .to_string()
            .lines()
            .filter(|line| line.starts_with("test.yaml:"))
            .count(),
        3
    );
}

#[test]
fn unknown_service() {
    let source = broken("{call: db, route: /q}", "{call: dbb, route: /q}");
    let diagnostic = expect(
        &source,
        "services.api.routes./a.steps[0].call",
        "no service `dbb`",
        "dbb",
    );
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("did you mean `db`? (services: api, db)")
    );
}

#[test]
fn unknown_route() {
    let source = broken("{call: db, route: /q}", "{call: db, route: /x}");
    expect(
        &source,
        "services.api.routes./a.steps[0].route",
        "no route `/x` in service `db`",
        "/x}",
    );
}

#[test]
fn call_cycle_names_the_cycle() {
    let source = broken(
        "        latency: {lognormal: {median_ms: 3, sigma: 0.5}}\n",
        "        steps:\n          - parallel:\n              - {call: api, route: /a}\n",
    );
    let diagnostic = expect(
        &source,
        "services.db.routes./q.steps[0].parallel[0]",
        "call cycle: api/a -> db/q -> api/a",
        "{call: api",
    );
    assert!(diagnostic.help.is_some());
}

#[test]
fn self_call_is_a_cycle() {
    let source = broken("{call: db, route: /q}", "{call: api, route: /a}");
    expect(
        &source,
        "services.api.routes./a.steps[0]",
        "call cycle: api/a -> api/a",
        "{call: api",
    );
}

#[test]
fn probability_outside_zero_to_one() {
    let source = broken("route: /q}", "route: /q, probability: 1.5}");
    expect(
        &source,
        "services.api.routes./a.steps[0].probability",
        "probability must be between 0 and 1",
        "1.5",
    );
}

#[test]
fn repeat_zero() {
    let source = broken("route: /q}", "route: /q, repeat: 0}");
    expect(
        &source,
        "services.api.routes./a.steps[0].repeat",
        "repeat must be at least 1",
        "0}",
    );
}

#[test]
fn negative_repeat_is_a_type_error() {
    let source = broken("route: /q}", "route: /q, repeat: -2}");
    expect(
        &source,
        "services.api.routes./a.steps[0].repeat",
        "expected a whole number",
        "-2",
    );
}

#[test]
fn max_parallel_zero() {
    let source = broken(
        "          - {call: db, route: /q}\n",
        "          - parallel: [{call: db, route: /q}]\n            max_parallel: 0\n",
    );
    expect(
        &source,
        "services.api.routes./a.steps[0].max_parallel",
        "max_parallel must be at least 1",
        "max_parallel: |0",
    );
}

#[test]
fn empty_parallel() {
    let source = broken(
        "          - {call: db, route: /q}\n",
        "          - parallel: []\n",
    );
    expect(
        &source,
        "services.api.routes./a.steps[0].parallel",
        "at least one call",
        "[]",
    );
}

#[test]
fn timeout_zero() {
    let source = broken("route: /q}", "route: /q, timeout: 0ms}");
    expect(
        &source,
        "services.api.routes./a.steps[0].timeout",
        "timeout must be longer than zero",
        "0ms",
    );
}

#[test]
fn invalid_duration() {
    let source = broken("duration: 1s", "duration: soon");
    expect(&source, "load.duration", "`soon` is not a duration", "soon");
}

#[test]
fn duration_without_unit() {
    let source = broken("duration: 1s", "duration: 30");
    let diagnostic = expect(
        &source,
        "load.duration",
        "expected a duration with a unit",
        "30",
    );
    assert!(
        diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("`30s`")
    );
}

#[test]
fn rate_not_positive() {
    expect(
        &broken("rate: 10", "rate: 0"),
        "load.rate",
        "rate must be a finite number",
        "0\n",
    );
    expect(
        &broken("rate: 10", "rate: -3"),
        "load.rate",
        "found -3",
        "-3",
    );
}

#[test]
fn rate_not_finite() {
    expect(
        &broken("rate: 10", "rate: .inf"),
        "load.rate",
        "found inf",
        ".inf",
    );
    expect(
        &broken("rate: 10", "rate: .nan"),
        "load.rate",
        "found NaN",
        ".nan",
    );
}

#[test]
fn duration_zero() {
    expect(
        &broken("duration: 1s", "duration: 0s"),
        "load.duration",
        "duration must be longer than zero",
        "0s",
    );
}

#[test]
fn negative_latency() {
    let source = broken("{constant: 1}", "{constant: -1}");
    // The shorthand `{constant: -1}` stands for `{constant: {ms: -1}}`.
    expect(
        &source,
        "services.api.routes./a.latency.constant.ms",
        "ms must be a finite number of at least 0",
        "-1",
    );
}

#[test]
fn non_finite_latency() {
    let source = broken("{constant: 1}", "{constant: {ms: .nan}}");
    expect(
        &source,
        "services.api.routes./a.latency.constant.ms",
        "found NaN",
        ".nan",
    );
}

#[test]
fn uniform_min_above_max() {
    let source = broken("{constant: 1}", "{uniform: {min_ms: 9, max_ms: 2}}");
    expect(
        &source,
        "services.api.routes./a.latency.uniform.min_ms",
        "min_ms (9) is greater than max_ms (2)",
        "9,",
    );
}

#[test]
fn normal_negative_std_dev() {
    let source = broken("{constant: 1}", "{normal: {mean_ms: 5, std_dev_ms: -1}}");
    expect(
        &source,
        "services.api.routes./a.latency.normal.std_dev_ms",
        "std_dev_ms must be",
        "-1",
    );
}

#[test]
fn lognormal_negative_sigma() {
    let source = broken("sigma: 0.5", "sigma: -0.5");
    expect(
        &source,
        "services.db.routes./q.latency.lognormal.sigma",
        "sigma must be",
        "-0.5",
    );
}

#[test]
fn pareto_scale_and_shape_above_zero() {
    let source = broken("{constant: 1}", "{pareto: {scale_ms: 0, shape: -2}}");
    expect(
        &source,
        "services.api.routes./a.latency.pareto.scale_ms",
        "scale_ms must be a finite number above 0",
        "0,",
    );
    expect(
        &source,
        "services.api.routes./a.latency.pareto.shape",
        "shape must be a finite number above 0",
        "-2",
    );
}

#[test]
fn exponential_mean_above_zero() {
    let source = broken("{constant: 1}", "{exponential: {mean_ms: 0}}");
    expect(
        &source,
        "services.api.routes./a.latency.exponential.mean_ms",
        "mean_ms must be",
        "0}}",
    );
}

#[test]
fn empirical_table_out_of_order() {
    let source = broken(
        "{constant: 1}",
        "{empirical: {quantiles: [[0, 1], [0.5, 3], [0.9, 2], [1, 9]]}}",
    );
    let diagnostic = expect(
        &source,
        "services.api.routes./a.latency.empirical.quantiles[2]",
        "the times must not fall, found 2 ms after 3 ms",
        "[0.9",
    );
    assert!(
        diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("[0, shortest] to [1, longest]")
    );
}

#[test]
fn empirical_table_without_its_ends() {
    let source = broken(
        "{constant: 1}",
        "{empirical: {quantiles: [[0.1, 1], [1, 9]]}}",
    );
    expect(
        &source,
        "services.api.routes./a.latency.empirical.quantiles[0]",
        "the first pair must be at p = 0",
        "[0.1",
    );
}

#[test]
fn unknown_latency_model() {
    let source = broken("{constant: 1}", "{lognorm: {median_ms: 1, sigma: 1}}");
    let diagnostic = expect(
        &source,
        "services.api.routes./a.latency.lognorm",
        "unknown latency model `lognorm`",
        "{|lognorm:",
    );
    assert!(
        diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .starts_with("did you mean `lognormal`?")
    );
}

#[test]
fn missing_latency_parameter() {
    let source = broken("{constant: 1}", "{uniform: {min_ms: 1}}");
    expect(
        &source,
        "services.api.routes./a.latency.uniform.max_ms",
        "missing field `max_ms`",
        "{min_ms",
    );
}

#[test]
fn error_rate_outside_zero_to_one() {
    let source = broken(
        "        latency: {constant: 1}\n",
        "        errors: {rate: 2}\n",
    );
    expect(
        &source,
        "services.api.routes./a.errors.rate",
        "rate must be between 0 and 1, found 2",
        "2}",
    );
}

#[test]
fn error_status_outside_4xx_5xx() {
    let source = broken(
        "        latency: {constant: 1}\n",
        "        errors: {rate: 0.1, status: 302}\n",
    );
    expect(
        &source,
        "services.api.routes./a.errors.status",
        "from 400 to 599, found 302",
        "302",
    );
}

#[test]
fn weight_not_positive() {
    let source = broken("route: /a}", "route: /a, weight: 0}");
    expect(
        &source,
        "load.entries[0].weight",
        "weight must be a finite number above 0, found 0",
        "0}",
    );
}

#[test]
fn route_must_start_with_slash() {
    let source = broken("      /q:\n", "      q:\n").replace("route: /q}", "route: q}");
    expect(
        &source,
        "services.db.routes.q",
        "route `q` must start with `/`",
        "q:\n",
    );
}

#[test]
fn route_must_be_literal() {
    let source =
        broken("      /q:\n", "      /q/{id}:\n").replace("route: /q}", "route: \"/q/{id}\"}");
    expect(
        &source,
        "services.db.routes./q/{id}",
        "may only contain",
        "/q/{id}:",
    );
}

#[test]
fn invalid_method() {
    let source = broken(
        "        latency: {constant: 1}\n",
        "        method: FETCH\n",
    );
    expect(
        &source,
        "services.api.routes./a.method",
        "`FETCH` is not an HTTP method",
        "FETCH",
    );
    let source = broken("        latency: {constant: 1}\n", "        method: post\n");
    let diagnostic = expect(
        &source,
        "services.api.routes./a.method",
        "`post` is not an HTTP method",
        "post",
    );
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("write it in capitals: `POST`")
    );
}

#[test]
fn service_names_are_dns_labels() {
    for bad in ["Api", "api_v2", "-api", "a.b"] {
        let source = BASE
            .replace("  api:\n", &format!("  {bad}:\n"))
            .replace("service: api", &format!("service: {bad}"));
        expect(
            &source,
            &format!("services.{bad}"),
            &format!("service name `{bad}`"),
            &format!("{bad}:"),
        );
    }
    let long = "a".repeat(64);
    let source = BASE
        .replace("  api:\n", &format!("  {long}:\n"))
        .replace("service: api", &format!("service: {long}"));
    expect(
        &source,
        &format!("services.{long}"),
        "longer than 63 characters",
        &format!("{long}:"),
    );
}

#[test]
fn no_services() {
    let source = "services: {}\nload:\n  rate: 1\n  duration: 1s\n  entries: []\n";
    expect(
        source,
        "services",
        "a scenario needs at least one service",
        "{}",
    );
    expect(source, "load.entries", "at least one entry route", "[]");
}

#[test]
fn missing_sections() {
    let all = diagnostics("name: x\n");
    let rendered: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "test.yaml:1:1: services: missing field `services` in a scenario",
            "test.yaml:1:1: load: missing field `load` in a scenario",
        ]
    );
}

#[test]
fn entry_to_an_unknown_route() {
    let source = broken("{service: api, route: /a}", "{service: api, route: /b}");
    let diagnostic = expect(
        &source,
        "load.entries[0].route",
        "no route `/b` in service `api`",
        "/b",
    );
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("did you mean `/a`? (routes: /a)")
    );
    // No suggestion when nothing is close, only the choices.
    let source = broken(
        "{service: api, route: /a}",
        "{service: api, route: /payments}",
    );
    let diagnostic = expect(
        &source,
        "load.entries[0].route",
        "no route `/payments`",
        "/payments",
    );
    assert_eq!(diagnostic.help.as_deref(), Some("routes: /a"));
    let source = broken("{service: api, route: /a}", "{service: web, route: /a}");
    expect(
        &source,
        "load.entries[0].service",
        "no service `web`",
        "web",
    );
}

#[test]
fn a_step_is_exactly_one_kind() {
    let source = broken("{call: db, route: /q}", "{call: db, route: /q, work: x}");
    expect(
        &source,
        "services.api.routes./a.steps[0]",
        "this one has `call` and `work`",
        "{call: db",
    );
    let source = broken("{call: db, route: /q}", "{cal: db, route: /q}");
    let diagnostic = expect(
        &source,
        "services.api.routes./a.steps[0]",
        "this one has none",
        "{cal",
    );
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("did you mean `call` instead of `cal`?")
    );
}

#[test]
fn only_calls_run_in_parallel() {
    let source = broken(
        "          - {call: db, route: /q}\n",
        "          - parallel:\n              - {work: db, latency: 5ms}\n",
    );
    expect(
        &source,
        "services.api.routes./a.steps[0].parallel[0]",
        "runs calls only, not `work`",
        "{work",
    );
}

#[test]
fn wrong_types_are_reported_with_what_was_found() {
    let source = broken("rate: 10", "rate: fast");
    expect(
        &source,
        "load.rate",
        "expected a number, found the string `fast`",
        "fast",
    );
    let source = broken(
        "    routes:\n      /a:",
        "    version: 2\n    routes:\n      /a:",
    );
    let diagnostic = expect(
        &source,
        "services.api.version",
        "expected a string, found the integer `2`",
        "2\n",
    );
    assert!(diagnostic.help.is_some());
}

#[test]
fn problems_after_a_broken_step_keep_their_own_positions() {
    // The first step is broken and left out; the problem in the second must still point at the
    // second step, not at the first.
    let source = broken(
        "          - {call: db, route: /q}\n",
        "          - {call: db}\n          - {call: db, route: /q, repeat: 0}\n",
    );
    expect(
        &source,
        "services.api.routes./a.steps[0].route",
        "missing field `route`",
        "{call: db}",
    );
    expect(
        &source,
        "services.api.routes./a.steps[1].repeat",
        "repeat must be at least 1",
        "0}",
    );
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let all = diagnostics("services:\n  api: [unclosed\nload: {}\n");
    assert_eq!(all.len(), 1);
    assert!(all[0].line >= 2, "{}", all[0]);
    let duplicate = diagnostics("services: {}\nservices: {}\n");
    assert_eq!(duplicate[0].line, 2, "{}", duplicate[0]);
}

#[test]
fn empty_file() {
    for source in ["", "  \n", "# only a comment\n"] {
        let all = diagnostics(source);
        assert_eq!(all.len(), 1);
        assert!(all[0].message.contains("the file is empty"), "{}", all[0]);
    }
}
