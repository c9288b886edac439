//! The fast path against the reference reader: on fixtures, on every name it knows, and on
//! generated documents.

use super::*;

/// The reference reader's spans for the same text.
fn reference(text: &str) -> Vec<Span> {
    super::super::reference_lines(text).expect("the reference reader reads it")
}

const SPAN: &str = r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"GET /","kind":"SPAN_KIND_SERVER","startTimeUnixNano":"12","endTimeUnixNano":13,"flags":"257","traceState":"ot=th:8","attributes":[{"key":"s","value":{"stringValue":"v"}},{"key":"i","value":{"intValue":"-9007199254740993"}},{"key":"d","value":{"doubleValue":"NaN"}},{"key":"u","value":{"doubleValue":5}},{"key":"b","value":{"boolValue":true}},{"key":"a","value":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"x"}]}}},{"key":"e"},{"key":"n","value":null}],"events":[{"timeUnixNano":"14","name":"retry","attributes":[{"key":"k","value":{"int_value":3}}]}],"links":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","traceState":"a=b","flags":1}],"status":{"code":"STATUS_CODE_ERROR","message":"boom"},"unknown":{"x":[1,2]}}"#;

#[test]
fn reads_what_the_reference_reader_reads() {
    let line = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"api"}}}}]}},"scopeSpans":[{{"scope":{{"name":"lib","version":"1"}},"spans":[{SPAN}]}}],"schemaUrl":"s"}}]}}"#
    );
    let snake = line
        .replace("resourceSpans", "resource_spans")
        .replace("scopeSpans", "scope_spans")
        .replace("spanId", "span_id")
        .replace("startTimeUnixNano", "start_time_unix_nano");
    let both = line.replace(
        r#""name":"GET /""#,
        r#""name":null,"name":"GET /","trace_state":"ignored""#,
    );
    let texts = [
        line.clone(),
        format!("{line}\n{snake}\n\n"),
        format!("[{line},\n {both}]"),
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&line).unwrap())
            .unwrap(),
        String::new(),
    ];
    for text in &texts {
        let fast = decode(text).expect("the fast path reads it");
        // Compared as text: a NaN attribute is not equal to itself.
        assert_eq!(
            format!("{fast:?}"),
            format!("{:?}", reference(text)),
            "{text}"
        );
    }
    assert_eq!(decode(&line).unwrap()[0].trace_state, "ot=th:8");
    assert_eq!(decode(&both).unwrap()[0].trace_state, "ot=th:8");
}

#[test]
fn leaves_the_rest_to_the_reference_reader() {
    let wrap =
        |span: &str| format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#);
    let ok = r#"{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202""#;
    for rest in [
        r#","attributes":[{"key":"m","value":{"kvlistValue":{"values":[]}}}]}"#,
        r#","attributes":[{"key":"y","value":{"bytesValue":"AQID"}}]}"#,
        r#","attributes":[{"key":"t","value":{"stringValue":"a","intValue":1}}]}"#,
        r#","kind":"SPAN_KIND_NOPE"}"#,
        r#","flags":-1}"#,
        r#","status":[1]}"#,
        r#","name":5}"#,
    ] {
        assert_eq!(decode(&wrap(&format!("{ok}{rest}"))), None, "{rest}");
    }
    assert_eq!(
        decode(&wrap(r#"{"traceId":"01","spanId":"0202020202020202"}"#)),
        None
    );
    assert_eq!(decode("[[]]"), None);
    assert_eq!(decode("3"), None);
    assert_eq!(decode("{\"resourceSpans\": [}"), None);
}

#[test]
fn every_name_sits_at_its_field() {
    // `message_fields!` writes each JSON name next to the builder field it fills; here the
    // lowerCamelCase names are checked against the original names they stand beside.
    let messages: [(&str, &[&str]); 12] = [
        (
            "ExportTraceServiceRequest",
            ExportTraceServiceRequest::NAMES,
        ),
        ("ResourceSpans", wire::ResourceSpans::NAMES),
        ("Resource", Resource::NAMES),
        ("ScopeSpans", wire::ScopeSpans::NAMES),
        ("InstrumentationScope", InstrumentationScope::NAMES),
        ("Span", wire::Span::NAMES),
        ("Event", wire::span::Event::NAMES),
        ("Link", wire::span::Link::NAMES),
        ("Status", wire::Status::NAMES),
        ("KeyValue", KeyValue::NAMES),
        ("AnyValue", AnyValue::NAMES),
        ("ArrayValue", ArrayValue::NAMES),
    ];
    for (message, names) in messages {
        assert_eq!(names.len() % 2, 0, "{message}");
        for pair in names.chunks(2) {
            assert_eq!(pair[0], lower_camel(pair[1]), "{message}: {pair:?}");
        }
    }
}

/// `start_time_unix_nano` as OTLP/JSON writes it: `startTimeUnixNano`.
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

mod generated;
