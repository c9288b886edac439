//! OTLP/JSON files: the OpenTelemetry project's example and round trips of our own output.

#[path = "support/wire.rs"]
mod support;

use std::path::Path;

use tracelab_receiver::{DecodeError, otlp_json};
use tracelab_trace::{SpanKind, TraceId};

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/otel-proto-example-trace.json"
    ))
}

#[test]
fn the_opentelemetry_example_file_decodes() {
    let spans = otlp_json::read_file(fixture()).expect("the example decodes");
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(
        span.trace_id,
        TraceId([
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ])
    );
    assert_eq!(span.span_id.to_hex(), "eee19b7ec3c1b174");
    assert_eq!(
        span.parent_span_id.map(|p| p.to_hex()).as_deref(),
        Some("eee19b7ec3c1b173")
    );
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.start_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(&*span.service_name, "my.service");
    assert_eq!(
        span.attr("my.span.attr").and_then(|v| v.as_str()),
        Some("some value")
    );
}

#[test]
fn encoded_lines_decode_back_to_the_same_spans() {
    // `opentelemetry-proto`'s own JSON output of the rich request, read by our decoder, so the
    // spans carry everything the model holds.
    let foreign = serde_json::to_string(&support::rich_request()).unwrap();
    let spans = otlp_json::decode_lines(&foreign).unwrap();
    support::assert_rich_spans(&spans);

    let line = otlp_json::encode_request_line(&spans);
    assert!(!line.contains('\n'));
    let back = otlp_json::decode_lines(&line).unwrap();
    assert_eq!(back, spans);
    // Two resources in, two resources out.
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["resourceSpans"].as_array().unwrap().len(), 2);
    // The Collector's conventions: int64 as strings, enums as integers, lowercase hex ids.
    assert!(line.contains(r#""intValue":"-9007199254740993""#), "{line}");
    assert!(line.contains(r#""kind":2"#), "{line}");
    assert!(
        line.contains(r#""traceId":"5b8efff798038103d269b633813fc60c""#),
        "{line}"
    );
}

#[test]
fn file_errors_name_the_file_and_line() {
    let path = support::temp_path("broken.jsonl");
    let good = std::fs::read_to_string(fixture()).unwrap();
    let good_line: serde_json::Value = serde_json::from_str(&good).unwrap();
    std::fs::write(
        &path,
        format!("{good_line}\n{good_line}\n{{\"resourceSpans\": 7}}\n"),
    )
    .unwrap();
    let err = otlp_json::read_file(&path).unwrap_err();
    assert!(matches!(err, DecodeError::Otlp { line: 3, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("broken.jsonl: line 3"), "{message}");
    assert!(message.contains("resourceSpans"), "{message}");

    let missing = otlp_json::read_file(Path::new("/nonexistent/tracelab.jsonl")).unwrap_err();
    assert!(matches!(missing, DecodeError::Read { .. }));
    let _ = std::fs::remove_file(&path);
}
