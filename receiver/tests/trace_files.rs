//! Trace files in the formats people have: Jaeger JSON and Zipkin v2 JSON beside OTLP/JSON,
//! told apart by their content, read into the span model, and read as streams. The documents
//! here are written by hand from the formats' descriptions (Jaeger's `model/json`, Zipkin's
//! `zipkin2-api.yaml`), with the quirks producers have: 64-bit trace ids, span ids without
//! their leading zeros, `null` lists, Zipkin's all-string tags and shared client/server spans.

use std::path::PathBuf;

use tracelab_receiver::trace_file::{self, TraceFileError, TraceFormat};
use tracelab_trace::{AttrValue, Span, SpanKind, StatusCode, group_into_traces};

fn file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trace-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Two traces as Jaeger's UI downloads them. The first: `web` serves `GET /` and calls `api`,
/// which fails; a log on the client span. The second: a consumer that follows from a producer
/// span of the first trace.
const JAEGER: &str = r#"{
  "data": [
    {
      "traceID": "95b8f374e549297f",
      "spans": [
        {
          "traceID": "95b8f374e549297f",
          "spanID": "95b8f374e549297f",
          "flags": 1,
          "operationName": "GET /",
          "references": [],
          "startTime": 1700000000000000,
          "duration": 12000,
          "tags": [
            {"key": "span.kind", "type": "string", "value": "server"},
            {"key": "http.route", "type": "string", "value": "/"},
            {"key": "http.response.status_code", "type": "int64", "value": 502},
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "otel.status_description", "type": "string", "value": "api failed"},
            {"key": "otel.scope.name", "type": "string", "value": "web-instrumentation"}
          ],
          "logs": null,
          "processID": "p1",
          "warnings": null
        },
        {
          "traceID": "95b8f374e549297f",
          "spanID": "b09c80f18a5dc8b",
          "flags": 1,
          "operationName": "GET /data",
          "references": [{"refType": "CHILD_OF", "traceID": "95b8f374e549297f", "spanID": "95b8f374e549297f"}],
          "startTime": 1700000000001000,
          "duration": 10000,
          "tags": [
            {"key": "span.kind", "type": "string", "value": "client"},
            {"key": "error", "type": "bool", "value": true},
            {"key": "retry", "type": "float64", "value": 0.5}
          ],
          "logs": [
            {"timestamp": 1700000000002000, "fields": [
              {"key": "event", "type": "string", "value": "connection reset"},
              {"key": "attempt", "type": "int64", "value": 1}
            ]}
          ],
          "processID": "p1",
          "warnings": null
        },
        {
          "traceID": "95b8f374e549297f",
          "spanID": "00000000000000c1",
          "operationName": "GET /data",
          "references": [{"refType": "CHILD_OF", "traceID": "95b8f374e549297f", "spanID": "0b09c80f18a5dc8b"}],
          "startTime": 1700000000002000,
          "duration": 8000,
          "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
          "processID": "p2"
        },
        {
          "traceID": "95b8f374e549297f",
          "spanID": "00000000000000d1",
          "operationName": "send orders",
          "references": [{"refType": "CHILD_OF", "traceID": "95b8f374e549297f", "spanID": "95b8f374e549297f"}],
          "startTime": 1700000000011000,
          "duration": 100,
          "tags": [{"key": "span.kind", "type": "string", "value": "producer"}],
          "processID": "p1"
        }
      ],
      "processes": {
        "p1": {"serviceName": "web", "tags": [{"key": "hostname", "type": "string", "value": "web-1"}]},
        "p2": {"serviceName": "api", "tags": null}
      },
      "warnings": null
    },
    {
      "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
      "spans": [
        {
          "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
          "spanID": "00000000000000e1",
          "operationName": "process orders",
          "references": [{"refType": "FOLLOWS_FROM", "traceID": "95b8f374e549297f", "spanID": "00000000000000d1"}],
          "startTime": "1700000000500000",
          "duration": 3000,
          "tags": [{"key": "span.kind", "type": "string", "value": "consumer"}],
          "processID": "p1"
        }
      ],
      "processes": {"p1": {"serviceName": "fulfilment"}}
    }
  ],
  "total": 0,
  "limit": 0,
  "offset": 0,
  "errors": null
}"#;

/// The same kind of request as Zipkin stores it: a list of spans, the server half of the call
/// sharing the client's id (B3 single-span RPC), tags all strings, no kind for local work.
const ZIPKIN: &str = r#"[
  {"traceId": "95b8f374e549297f", "id": "95b8f374e549297f", "kind": "SERVER", "name": "get /",
   "timestamp": 1700000000000000, "duration": 12000,
   "localEndpoint": {"serviceName": "web", "ipv4": "10.0.0.1"},
   "tags": {"http.route": "/", "http.response.status_code": "502", "error": "api failed"}},
  {"traceId": "95b8f374e549297f", "parentId": "95b8f374e549297f", "id": "0b09c80f18a5dc8b",
   "kind": "CLIENT", "name": "get /data", "timestamp": 1700000000001000, "duration": 10000,
   "localEndpoint": {"serviceName": "web"}, "remoteEndpoint": {"serviceName": "api"},
   "annotations": [{"timestamp": 1700000000002000, "value": "connection reset"}],
   "tags": {"otel.status_code": "ERROR"}},
  {"traceId": "95b8f374e549297f", "parentId": "95b8f374e549297f", "id": "0b09c80f18a5dc8b",
   "kind": "SERVER", "shared": true, "name": "get /data", "timestamp": 1700000000002000,
   "duration": 8000, "localEndpoint": {"serviceName": "api"}},
  {"traceId": "95b8f374e549297f", "parentId": "0b09c80f18a5dc8b", "id": "00000000000000c2",
   "name": "render", "timestamp": 1700000000003000, "duration": 1000,
   "localEndpoint": {"serviceName": "api"}, "tags": {"otel.scope.name": "render-lib"}}
]"#;

fn span<'s>(spans: &'s [Span], id: &str) -> &'s Span {
    spans
        .iter()
        .find(|s| s.span_id.to_hex() == id)
        .unwrap_or_else(|| panic!("no span {id}"))
}

#[test]
fn formats_are_told_apart_by_their_content() {
    let otlp = r#"{"resourceSpans":[]}"#;
    let traces = "[[{\"traceId\": \"01\", \"id\": \"02\"}]]";
    for (name, text, format) in [
        ("a.json", JAEGER, TraceFormat::JaegerJson),
        ("b.json", ZIPKIN, TraceFormat::ZipkinJson),
        ("c.json", traces, TraceFormat::ZipkinJson),
        ("d.jsonl", otlp, TraceFormat::OtlpJson),
        ("e.json", &format!("[{otlp}]"), TraceFormat::OtlpJson),
        // Jaeger's other keys may come first.
        (
            "f.json",
            r#"{"total": 0, "data": []}"#,
            TraceFormat::JaegerJson,
        ),
    ] {
        assert_eq!(
            trace_file::detect(&file(name, text)).unwrap(),
            format,
            "{name}"
        );
    }
}

#[test]
fn an_unknown_format_is_named_with_what_tracelab_reads() {
    for (name, text, found) in [
        (
            "csv.txt",
            "trace,span\n1,2\n",
            "it is not JSON (line 1, column ",
        ),
        ("empty.json", "", "the file is empty"),
        (
            "other.json",
            r#"{"spans": [], "version": 2}"#,
            "an object with the keys `spans`, `version`",
        ),
        (
            "numbers.json",
            "[1, 2]",
            "an array of values such as a number",
        ),
    ] {
        let path = file(name, text);
        let error = trace_file::read_spans(&path).unwrap_err();
        assert!(
            matches!(error, TraceFileError::UnknownFormat { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(found), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("Jaeger JSON") && message.contains("Zipkin v2 JSON"),
            "{message}"
        );
    }
}

#[test]
fn jaeger_spans_carry_kind_status_parents_links_and_resources() {
    let (spans, summary) = trace_file::read_spans(&file("jaeger.json", JAEGER)).unwrap();
    assert_eq!(summary.format, TraceFormat::JaegerJson);
    assert_eq!(spans.len(), 5);
    assert!(summary.warnings.is_empty());

    let root = span(&spans, "95b8f374e549297f");
    assert_eq!(root.trace_id.to_hex(), "000000000000000095b8f374e549297f");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.status.code, StatusCode::Error);
    assert_eq!(root.status.message, "api failed");
    assert_eq!(root.scope_name, "web-instrumentation");
    assert_eq!(root.flags, 1);
    assert_eq!(root.start_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(root.duration_nanos(), 12_000_000);
    assert_eq!(
        root.attr("http.response.status_code"),
        Some(&AttrValue::Int(502))
    );
    // The tags that became kind, status and scope are not attributes too.
    assert!(root.attr("span.kind").is_none() && root.attr("otel.status_code").is_none());
    assert_eq!(&*root.service_name, "web");
    assert!(root.resource.iter().any(|a| a.key == "hostname"));

    // A span id written without its leading zero.
    let client = span(&spans, "0b09c80f18a5dc8b");
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, Some(root.span_id));
    assert_eq!(client.status.code, StatusCode::Error);
    assert_eq!(client.attr("retry"), Some(&AttrValue::Double(0.5)));
    assert_eq!(client.events[0].name, "connection reset");
    assert_eq!(client.events[0].attributes[0].value, AttrValue::Int(1));

    let server = span(&spans, "00000000000000c1");
    assert_eq!(server.parent_span_id, Some(client.span_id));
    assert_eq!(&*server.service_name, "api");

    // FOLLOWS_FROM into another trace: a link, marked as OpenTracing marks it.
    let consumer = span(&spans, "00000000000000e1");
    assert_eq!(consumer.kind, SpanKind::Consumer);
    assert_eq!(consumer.parent_span_id, None);
    assert_eq!(consumer.links.len(), 1);
    assert_eq!(consumer.links[0].span_id.to_hex(), "00000000000000d1");
    assert_eq!(
        consumer.links[0].attributes[0].value,
        AttrValue::Str("follows_from".into())
    );
    assert_eq!(consumer.start_unix_nano, 1_700_000_000_500_000_000);
}

#[test]
fn zipkin_spans_get_kinds_statuses_and_a_server_span_of_their_own() {
    let (spans, summary) = trace_file::read_spans(&file("zipkin.json", ZIPKIN)).unwrap();
    assert_eq!(summary.format, TraceFormat::ZipkinJson);
    assert_eq!(spans.len(), 4);
    let root = span(&spans, "95b8f374e549297f");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(
        (root.status.code, root.status.message.as_str()),
        (StatusCode::Error, "api failed")
    );
    // Zipkin's tags are strings, and stay strings.
    assert_eq!(
        root.attr("http.response.status_code"),
        Some(&AttrValue::Str("502".into()))
    );
    let client = span(&spans, "0b09c80f18a5dc8b");
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.status.code, StatusCode::Error);
    assert_eq!(
        client.attr("peer.service"),
        Some(&AttrValue::Str("api".into()))
    );
    assert_eq!(client.events[0].name, "connection reset");
    // The shared server half: an id of its own, under the client half.
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && &*s.service_name == "api")
        .unwrap();
    assert_ne!(server.span_id, client.span_id);
    assert_eq!(server.parent_span_id, Some(client.span_id));
    let work = span(&spans, "00000000000000c2");
    assert_eq!(work.kind, SpanKind::Internal);
    assert_eq!(work.scope_name, "render-lib");
    let traces = group_into_traces(spans.clone());
    assert_eq!(traces.len(), 1);
    assert!(traces[0].shape().is_complete(), "{:?}", traces[0].shape());
}

#[test]
fn streamed_traces_are_the_whole_files_traces_in_every_format() {
    // Zipkin's `/api/v2/traces` shape: one array per trace.
    let other = ZIPKIN.replace(
        "\"traceId\": \"95b8f374e549297f\"",
        "\"traceId\": \"11112222\"",
    );
    let zipkin_traces = format!("[{ZIPKIN}, {other}]");
    for (name, text) in [
        ("j.json", JAEGER.to_owned()),
        ("z.json", ZIPKIN.to_owned()),
        ("zt.json", zipkin_traces),
    ] {
        let path = file(name, &text);
        let (spans, _) = trace_file::read_spans(&path).unwrap();
        let mut whole: Vec<_> = group_into_traces(spans)
            .into_iter()
            .map(|t| (t.trace_id, t.spans))
            .collect();
        let mut streamed = Vec::new();
        let summary =
            trace_file::stream_traces(&path, &mut |t| streamed.push((t.trace_id, t.spans)))
                .unwrap();
        whole.sort_by_key(|t| t.0);
        streamed.sort_by_key(|t| t.0);
        assert_eq!(streamed.len() as u64, summary.traces, "{name}");
        assert_eq!(streamed, whole, "{name}");
        assert_eq!(
            streamed.len(),
            if name == "j.json" {
                2
            } else if name == "z.json" {
                1
            } else {
                2
            }
        );
    }
}

#[test]
fn a_cut_document_keeps_what_came_before_the_cut() {
    // Cut inside the second trace of the Jaeger download, and inside the last Zipkin span.
    let at = JAEGER.find("\"process orders\"").unwrap();
    let (spans, summary) = trace_file::read_spans(&file("cut.json", &JAEGER[..at])).unwrap();
    assert_eq!(spans.len(), 4, "the first trace is whole");
    assert_eq!(summary.warnings.len(), 1);
    assert!(
        summary.warnings[0].contains("ends early"),
        "{:?}",
        summary.warnings
    );
    let at = ZIPKIN.rfind("\"render\"").unwrap();
    let (spans, summary) = trace_file::read_spans(&file("cut-z.json", &ZIPKIN[..at])).unwrap();
    assert_eq!(spans.len(), 3);
    assert!(summary.warnings[0].contains("the 3 spans before the cut were read"));
}

#[test]
fn a_bad_id_is_an_error_at_its_line_and_column() {
    let text = JAEGER.replace("\"00000000000000c1\"", "\"not-an-id\"");
    let path = file("bad.json", &text);
    let error = trace_file::read_spans(&path).unwrap_err();
    let TraceFileError::Invalid {
        line,
        column,
        ref message,
        format,
        ..
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(format, TraceFormat::JaegerJson);
    let expected_line = text[..text.find("not-an-id").unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert_eq!(line, expected_line);
    assert!(column > 0);
    assert!(
        message.contains("\"not-an-id\" is not a span id"),
        "{message}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: line {line}", path.display()))
    );
}
