//! Every converter: its results, its errors, its argument checks.

use super::*;

#[test]
fn is_match_is_unanchored_and_converts_non_strings() {
    yes(r#"IsMatch(attributes["http.route"], "check")"#);
    yes(r#"IsMatch(name, "^GET /.*out$")"#);
    no(r#"IsMatch(name, "^POST")"#);
    yes(r#"IsMatch(attributes["http.response.status_code"], "^5\d\d$")"#);
    yes(r#"IsMatch(attributes["retry"], "true")"#);
    yes(r#"IsMatch(attributes["blob"], "^3q2\+7w==$")"#);
    no(r#"IsMatch(attributes["absent"], ".*")"#);
}

#[test]
fn is_match_patterns_are_compiled_when_parsing() {
    let e = parse_error(r#"IsMatch(name, "(unclosed")"#);
    assert_eq!(e.column, 15);
    assert!(e.message.contains("regular expression"), "{e}");
    let e = parse_error(r#"IsMatch(name, attributes["p"])"#);
    assert!(e.message.contains("string literal"), "{e}");
}

#[test]
fn type_predicates() {
    yes(r#"IsString(attributes["http.route"])"#);
    no(r#"IsString(attributes["http.response.status_code"])"#);
    yes(r#"IsInt(attributes["http.response.status_code"])"#);
    no(r#"IsInt(attributes["ratio"])"#);
    yes(r#"IsDouble(attributes["ratio"])"#);
    yes(r#"IsBool(attributes["retry"])"#);
    yes(r#"IsList(attributes["tags"])"#);
    yes("IsMap(attributes)");
    no(r#"IsString(attributes["absent"])"#);
}

#[test]
fn len_of_strings_lists_and_maps() {
    yes(r#"Len(attributes["http.route"]) == 9"#);
    yes(r#"Len(attributes["tags"]) == 2"#);
    yes("Len(resource.attributes) == 1");
    yes(r#"Len("héllo") == 6"#);
    assert!(fails(r#"Len(attributes["http.response.status_code"]) == 1"#).contains("Len"));
    assert!(fails(r#"Len(attributes["absent"]) == 0"#).contains("nil"));
}

#[test]
fn int_converts_or_yields_nil() {
    yes(r#"Int(attributes["count_text"]) == 42"#);
    yes(r#"Int(attributes["ratio"]) == 0"#);
    yes("Int(-2.9) == -2");
    yes(r#"Int(attributes["retry"]) == 1"#);
    yes(r#"Int("2.0") == nil"#);
    yes(r#"Int(attributes["absent"]) == nil"#);
}

#[test]
fn double_converts_or_yields_nil() {
    yes(r#"Double(attributes["count_text"]) == 42.0"#);
    yes(r#"Double(attributes["http.response.status_code"]) > 502.5"#);
    yes(r#"Double("x") == nil"#);
}

#[test]
fn concat_joins_string_forms() {
    yes(r#"Concat([name, attributes["http.response.status_code"]], " ") == "GET /checkout 503""#);
    yes(r#"Concat(["a", 1, true, 0.5], "-") == "a-1-true-0.5""#);
    yes(r#"Concat([span_id], "") == "0102030405060708""#);
    yes(r#"Concat(["x", attributes["absent"]], ":") == "x:<nil>""#);
    let e = parse_error(r#"Concat(name, "-") == "x""#);
    assert!(e.message.contains("list"), "{e}");
}

#[test]
fn substring_checks_its_bounds() {
    yes(r#"Substring(name, 0, 3) == "GET""#);
    yes(r#"Substring(attributes["http.route"], 1, 4) == "chec""#);
    assert!(fails(r#"Substring(name, 10, 10) == "x""#).contains("do not fit"));
    assert!(fails(r#"Substring(attributes["absent"], 0, 1) == "x""#).contains("nil"));
}

#[test]
fn case_and_affix_converters() {
    yes(r#"ToLowerCase(name) == "get /checkout""#);
    yes(r#"ToUpperCase(attributes["http.route"]) == "/CHECKOUT""#);
    yes(r#"HasPrefix(name, "GET ")"#);
    no(r#"HasPrefix(name, "POST")"#);
    yes(r#"HasSuffix(attributes["http.route"], "out")"#);
    assert!(fails(r#"HasPrefix(attributes["http.response.status_code"], "5")"#).contains("int64"));
}

#[test]
fn split_results_can_be_indexed() {
    yes(r#"Split(name, " ")[1] == "/checkout""#);
    yes(r#"Len(Split("a,b,c", ",")) == 3"#);
    assert!(fails(r#"Split(name, " ")[5] == nil"#).contains("out of bounds"));
}

#[test]
fn is_root_span() {
    no("IsRootSpan()");
    let mut root = span();
    root.parent_span_id = None;
    let c = Condition::parse(
        "IsRootSpan() and kind == SPAN_KIND_SERVER",
        OttlContext::Span,
    )
    .unwrap();
    assert_eq!(c.eval_span(&root), Ok(true));
    assert!(
        Condition::parse("IsRootSpan()", OttlContext::SpanEvent).is_err(),
        "span context only"
    );
}

#[test]
fn named_arguments() {
    yes(r#"Substring(target = name, start = 4, length = 9) == "/checkout""#);
    yes(r#"IsMatch(name, pattern = "GET")"#);
    let e = parse_error(r#"IsMatch(target = name, "GET")"#);
    assert!(e.message.contains("positional"), "{e}");
    let e = parse_error("Substring(name, 0, size = 2) == nil");
    assert!(e.message.contains("no parameter `size`"), "{e}");
}

#[test]
fn converter_arity_is_checked() {
    let e = parse_error("IsString() == true");
    assert!(e.message.contains("`value`"), "{e}");
    let e = parse_error(r#"IsString(name, name)"#);
    assert_eq!(e.column, 16);
}

#[test]
fn a_converter_used_as_a_boolean_must_return_one() {
    assert!(fails("Len(name)").contains("expected bool"));
}
