//! Unit cases of the OTTL subset: parsing and its errors, precedence, `nil`, the cross-type
//! comparison rules, paths of both contexts, error modes; `converters` has every converter.

use std::sync::Arc;

use tracelab_trace::{
    AttrValue, Attribute, Event, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

use super::*;

mod converters;

pub(super) fn attr(key: &str, value: AttrValue) -> Attribute {
    Attribute {
        key: key.to_string(),
        value,
    }
}

/// A server span with a few attributes of each type, one event and a resource.
pub(super) fn span() -> Span {
    Span {
        trace_id: TraceId([0xab; 16]),
        span_id: SpanId([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]),
        parent_span_id: Some(SpanId([0x11; 8])),
        trace_state: "ot=th:8,vendor=blue".to_string(),
        flags: 1,
        name: "GET /checkout".to_string(),
        kind: SpanKind::Server,
        start_unix_nano: 1_000_000_000,
        end_unix_nano: 1_250_000_000,
        attributes: vec![
            attr("http.route", AttrValue::Str("/checkout".into())),
            attr("http.response.status_code", AttrValue::Int(503)),
            attr("ratio", AttrValue::Double(0.25)),
            attr("retry", AttrValue::Bool(true)),
            attr(
                "tags",
                AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Int(7)]),
            ),
            attr("blob", AttrValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
            attr("count_text", AttrValue::Str("42".into())),
        ],
        events: vec![Event {
            name: "exception".to_string(),
            time_unix_nano: 1_100_000_000,
            attributes: vec![attr("exception.type", AttrValue::Str("Timeout".into()))],
        }],
        links: vec![],
        status: Status {
            code: StatusCode::Error,
            message: "upstream timed out".to_string(),
        },
        service_name: Arc::from("checkout"),
        resource: Arc::new(vec![attr(
            "service.name",
            AttrValue::Str("checkout".into()),
        )]),
        scope_name: "tracelab".to_string(),
    }
}

/// Parses and evaluates a `span` condition on [`span`].
pub(super) fn on_span(text: &str) -> Result<bool, String> {
    let c = Condition::parse(text, OttlContext::Span)
        .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
    c.eval_span(&span())
}

pub(super) fn yes(text: &str) {
    assert_eq!(on_span(text), Ok(true), "{text}");
}

pub(super) fn no(text: &str) {
    assert_eq!(on_span(text), Ok(false), "{text}");
}

pub(super) fn fails(text: &str) -> String {
    on_span(text).expect_err(text)
}

pub(super) fn parse_error(text: &str) -> OttlParseError {
    Condition::parse(text, OttlContext::Span).expect_err(text)
}

#[test]
fn the_readme_conditions_parse() {
    for c in [
        r#"attributes["test_attr_key_1"] == "test_attr_val_1""#,
        r#"attributes["test_attr_key_2"] != "test_attr_val_1""#,
        r#"resource.attributes["service.name"] == "checkout""#,
        r#"span.attributes["http.status_code"] >= 500"#,
    ] {
        Condition::parse(c, OttlContext::Span).unwrap();
    }
    for c in [
        r#"name != "test_span_event_name""#,
        r#"attributes["test_event_attr_key_2"] != "test_event_attr_val_1""#,
        r#"spanevent.name == "exception""#,
    ] {
        Condition::parse(c, OttlContext::SpanEvent).unwrap();
    }
}

#[test]
fn string_equality_and_inequality() {
    yes(r#"attributes["http.route"] == "/checkout""#);
    no(r#"attributes["http.route"] == "/cart""#);
    yes(r#"attributes["http.route"] != "/cart""#);
}

#[test]
fn integer_ordering() {
    yes(r#"attributes["http.response.status_code"] >= 500"#);
    yes(r#"attributes["http.response.status_code"] < 600"#);
    no(r#"attributes["http.response.status_code"] > 503"#);
    yes(r#"attributes["http.response.status_code"] <= 503"#);
}

#[test]
fn ints_and_floats_compare_as_floats() {
    yes(r#"attributes["ratio"] < 1"#);
    yes(r#"attributes["ratio"] == .25"#);
    yes("1 == 1.0");
    yes("-1.5 < -1");
}

#[test]
fn strings_compare_bytewise() {
    yes(r#""abc" < "abd""#);
    yes(r#""B" < "a""#);
    no(r#""b" <= "a""#);
}

#[test]
fn booleans_order_false_below_true() {
    yes(r#"attributes["retry"] == true"#);
    yes("false < true");
    no("true < false");
}

#[test]
fn values_of_different_types_are_not_equal_without_error() {
    no(r#"attributes["http.response.status_code"] == "503""#);
    yes(r#"attributes["http.response.status_code"] != "503""#);
    no(r#"attributes["http.route"] > 1"#);
    no(r#"attributes["http.route"] < 1"#);
    no("true == 1");
}

#[test]
fn a_missing_attribute_is_nil() {
    yes(r#"attributes["absent"] == nil"#);
    no(r#"attributes["absent"] != nil"#);
    yes(r#"attributes["http.route"] != nil"#);
    no(r#"attributes["absent"] == """#);
}

#[test]
fn nil_is_equal_only_to_nil_and_never_ordered() {
    yes("nil == nil");
    no("nil < nil");
    no("nil >= nil");
    no(r#"attributes["absent"] < 5"#);
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    // true or (false and false): or is the loosest.
    yes("true or false and false");
    // (not true) or true.
    yes("not true or true");
    // not (true and false) would be true; (not true) and false is false.
    no("not true and false");
    yes("not (true and false)");
}

#[test]
fn parentheses_override_precedence() {
    no("(true or false) and false");
    yes("true or (false and false)");
    yes("((true))");
}

#[test]
fn not_applies_to_a_whole_comparison() {
    yes(r#"not name == "other""#);
    no(r#"not name == "GET /checkout""#);
    yes("not not true");
}

#[test]
fn arithmetic_follows_its_precedence() {
    yes("1 + 2 * 3 == 7");
    yes("(1 + 2) * 3 == 9");
    yes("10 - 4 - 3 == 3");
    yes("7 / 2 == 3");
    yes("end_time_unix_nano - start_time_unix_nano == 250000000");
    yes("(end_time_unix_nano - start_time_unix_nano) / 1000000 > 200");
}

#[test]
fn arithmetic_errors_are_evaluation_errors() {
    assert!(fails("1 / 0 == 0").contains("divide by 0"));
    assert!(fails("1 + 1.5 == 2.5").contains("int64"));
    assert!(fails(r#"name + 1 == 1"#).contains("string"));
}

#[test]
fn span_fields_and_enums() {
    yes("kind == SPAN_KIND_SERVER");
    no("kind == SPAN_KIND_CLIENT");
    yes("status.code == STATUS_CODE_ERROR");
    yes("span.status.code == 2");
    yes(r#"status.message == "upstream timed out""#);
    yes(r#"kind.string == "Server""#);
    yes(r#"span.name == "GET /checkout""#);
    yes(r#"instrumentation_scope.name == "tracelab""#);
    yes(r#"scope.name == "tracelab""#);
    yes("start_time_unix_nano == 1000000000");
}

#[test]
fn ids_read_as_bytes_and_as_text() {
    yes("trace_id == TraceID(0xabababababababababababababababab)");
    yes("span_id == SpanID(0x0102030405060708)");
    yes(r#"span_id.string == "0102030405060708""#);
    yes(r#"parent_span_id.string == "1111111111111111""#);
    no("parent_span_id == SpanID(0x0000000000000000)");
    let mut root = span();
    root.parent_span_id = None;
    let c = Condition::parse(
        "parent_span_id == SpanID(0x0000000000000000)",
        OttlContext::Span,
    )
    .unwrap();
    assert_eq!(c.eval_span(&root), Ok(true));
}

#[test]
fn trace_state_reads_whole_and_by_key() {
    yes(r#"trace_state["vendor"] == "blue""#);
    yes(r#"trace_state["absent"] == nil"#);
    yes(r#"trace_state == "ot=th:8,vendor=blue""#);
}

#[test]
fn resource_attributes() {
    yes(r#"resource.attributes["service.name"] == "checkout""#);
    yes(r#"resource.attributes["absent"] == nil"#);
}

#[test]
fn list_attributes_index_by_position() {
    yes(r#"attributes["tags"][0] == "a""#);
    yes(r#"attributes["tags"][1] == 7"#);
    assert!(fails(r#"attributes["tags"][2] == nil"#).contains("out of bounds"));
    assert!(fails(r#"attributes["http.route"][0] == nil"#).contains("int indexing"));
}

#[test]
fn span_event_conditions_read_the_event_and_its_span() {
    let s = span();
    let e = &s.events[0];
    let ev = |text: &str| {
        Condition::parse(text, OttlContext::SpanEvent)
            .unwrap()
            .eval_event(&s, e)
            .unwrap()
    };
    assert!(ev(r#"name == "exception""#));
    assert!(ev(r#"spanevent.name == "exception""#));
    assert!(ev(r#"attributes["exception.type"] == "Timeout""#));
    assert!(ev(r#"span.name == "GET /checkout""#));
    assert!(ev(r#"span.attributes["http.route"] == "/checkout""#));
    assert!(ev("time_unix_nano > span.start_time_unix_nano"));
    assert!(ev(r#"resource.attributes["service.name"] == "checkout""#));
}

#[test]
fn spanevent_paths_are_refused_in_span_conditions() {
    let e = parse_error(r#"spanevent.name == "x""#);
    assert_eq!(e.column, 1);
    assert!(e.message.contains("spanevent"), "{e}");
}

#[test]
fn string_escapes() {
    let mut s = span();
    s.name = r#"say "hi" \ bye"#.to_string();
    let c = Condition::parse(r#"name == "say \"hi\" \\ bye""#, OttlContext::Span).unwrap();
    assert_eq!(c.eval_span(&s), Ok(true));
}

#[test]
fn lists_and_maps_compare_structurally() {
    yes(r#"attributes["tags"] == ["a", 7]"#);
    no(r#"attributes["tags"] == ["a", 8]"#);
    no(r#"["a"] < ["b"]"#);
    yes(r#"{"k": 1} == {"k": 1}"#);
}

#[test]
fn parse_errors_point_at_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        (r#"name == "unclosed"#, 9, "not closed"),
        (r#"name = "x""#, 6, "comparison operator"),
        (r#"name == "x" && kind == 2"#, 13, "`and` or `or`"),
        (r#"attributes["k"] == "v" and"#, 27, "expected a value"),
        ("nme == 1", 1, "unknown path `nme`"),
        ("kind == SPAN_KIND_SERVR", 9, "unknown enum"),
        ("Lenn(name) == 1", 1, "unknown converter"),
        ("set(name, 1)", 1, "editor"),
        ("name == ", 9, "expected a value"),
        ("(name == \"x\"", 13, "`)`"),
        ("kind[0] == 1", 5, "cannot be indexed"),
        ("attributes[0] == 1", 11, "string key"),
        ("", 1, "empty"),
        ("name == 'x'", 9, "double quotes"),
        ("attributes", 11, "comparison operator"),
        ("1 == 1 1", 8, "end of the condition"),
    ];
    for (text, column, needle) in cases {
        let e = parse_error(text);
        assert_eq!(e.column, *column, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn error_modes_decide_what_a_failing_condition_does() {
    let failing = Condition::parse(
        r#"Substring(attributes["absent"], 0, 1) == "x""#,
        OttlContext::Span,
    )
    .unwrap();
    let matching = Condition::parse(r#"name == "GET /checkout""#, OttlContext::Span).unwrap();
    let s = span();
    let set = |mode| OttlConditions::new(vec![failing.clone(), matching.clone()], vec![], mode);
    assert_eq!(set(ErrorMode::Propagate).evaluate(&s), SpanOutcome::Error);
    assert_eq!(set(ErrorMode::Ignore).evaluate(&s), SpanOutcome::Match);
    assert_eq!(set(ErrorMode::Silent).evaluate(&s), SpanOutcome::Match);
    // A true condition before the failing one decides first, whatever the mode.
    let first = OttlConditions::new(vec![matching, failing], vec![], ErrorMode::Propagate);
    assert_eq!(first.evaluate(&s), SpanOutcome::Match);
    assert_eq!(ErrorMode::parse("ignore"), Some(ErrorMode::Ignore));
    assert_eq!(ErrorMode::parse("loud"), None);
}

#[test]
fn span_event_conditions_match_any_event() {
    let ev = Condition::parse(r#"name == "exception""#, OttlContext::SpanEvent).unwrap();
    let never = Condition::parse(r#"name == "nope""#, OttlContext::Span).unwrap();
    let set = OttlConditions::new(vec![never], vec![ev], ErrorMode::Propagate);
    assert_eq!(set.evaluate(&span()), SpanOutcome::Match);
    let mut quiet = span();
    quiet.events.clear();
    assert_eq!(set.evaluate(&quiet), SpanOutcome::NoMatch);
}

#[test]
fn the_attribute_string_fast_path_agrees_with_the_general_comparison() {
    // `Concat([x], "")` is a string too, but keeps the comparison on the general path.
    for key in [
        "http.route",
        "http.response.status_code",
        "tags",
        "retry",
        "absent",
    ] {
        for value in ["/checkout", "503", "true", ""] {
            for op in ["==", "!="] {
                let fast = format!(r#"attributes["{key}"] {op} "{value}""#);
                let mirrored = format!(r#""{value}" {op} attributes["{key}"]"#);
                let general = format!(r#"attributes["{key}"] {op} Concat(["{value}"], "")"#);
                let expected = on_span(&general);
                assert_eq!(on_span(&fast), expected, "{fast}");
                assert_eq!(on_span(&mirrored), expected, "{mirrored}");
            }
        }
    }
    let s = span();
    for (text, want) in [
        (r#"resource.attributes["service.name"] == "checkout""#, true),
        (
            r#"resource.attributes["service.name"] != "checkout""#,
            false,
        ),
    ] {
        let c = Condition::parse(text, OttlContext::Span).unwrap();
        assert_eq!(c.eval_span(&s), Ok(want), "{text}");
    }
    let ev = Condition::parse(
        r#"attributes["exception.type"] == "Timeout""#,
        OttlContext::SpanEvent,
    )
    .unwrap();
    assert_eq!(ev.eval_event(&s, &s.events[0]), Ok(true));
}

#[test]
fn merged_equalities_keep_the_order_of_failing_terms() {
    // The two route tests are not neighbours: the failing Substring between them still
    // fails the condition before the second test could make it true.
    let failing = r#"attributes["http.route"] == "/cart" or Substring(attributes["absent"], 0, 1) == "x" or attributes["http.route"] == "/checkout""#;
    assert!(fails(failing).contains("Substring"));
    // Neighbours are merged, in any number, and agree with the general comparison.
    yes(
        r#"attributes["http.route"] == "/a" or attributes["http.route"] == "/b" or attributes["http.route"] == "/checkout""#,
    );
    no(r#"attributes["http.route"] == "/a" or attributes["http.route"] == "/b""#);
    yes(r#"attributes["retry"] == "x" or attributes["http.route"] == "/checkout""#);
    no(
        r#"attributes["http.response.status_code"] == "503" or attributes["http.response.status_code"] == "x""#,
    );
}

#[test]
fn errors_at_the_end_of_a_condition_point_past_it() {
    for (text, column) in [
        ("attributes[", 12),
        ("attributes[\"k\"", 15),
        ("resource.", 10),
        ("{\"a\": 1, ", 10),
    ] {
        let e = parse_error(text);
        assert_eq!(e.column, column, "{text:?}: {e}");
    }
}
