//! One set of traces in three formats imports as one scenario. The traces come from a real
//! lab run (quickstart: parallel calls, a cache, a database, errors, two entry routes); the
//! test writes them as OTLP/JSON lines, as a Jaeger "Download JSON" document and as a Zipkin
//! v2 span list, each writer following its format's description (Jaeger's `model/json`,
//! Zipkin's `zipkin2-api.yaml`, and OpenTelemetry's mapping to each: kinds and statuses as
//! tags, the resource as Jaeger process tags and as Zipkin span tags). Zipkin and Jaeger keep
//! microseconds, so the traces are cut to microseconds first, as such an export would hold
//! them. `tracelab import` must write the same scenario from each (and with `--anonymize`, one
//! with none of the traces' names), and `tracelab report` and `tracelab diff` must read all
//! three.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tracelab_receiver::otlp_json;
use tracelab_trace::{AttrValue, Attribute, Span, SpanKind, StatusCode, Trace, group_into_traces};

fn tracelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracelab"))
}

fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("import-formats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Microseconds, as Jaeger and Zipkin keep times.
fn micros(span: &mut Span) {
    let start = span.start_unix_nano / 1000;
    let duration = (span.end_unix_nano - span.start_unix_nano) / 1000;
    span.start_unix_nano = start * 1000;
    span.end_unix_nano = (start + duration) * 1000;
    for event in &mut span.events {
        event.time_unix_nano = event.time_unix_nano / 1000 * 1000;
    }
}

fn kind_tag(kind: SpanKind) -> Option<&'static str> {
    match kind {
        SpanKind::Server => Some("server"),
        SpanKind::Client => Some("client"),
        SpanKind::Producer => Some("producer"),
        SpanKind::Consumer => Some("consumer"),
        _ => None,
    }
}

fn text_of(value: &AttrValue) -> String {
    match value {
        AttrValue::Str(s) => s.clone(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// A Jaeger tag: `{"key", "type", "value"}` with the value's own JSON type.
fn jaeger_tag(key: &str, value: &AttrValue) -> Value {
    let (kind, value) = match value {
        AttrValue::Bool(b) => ("bool", json!(b)),
        AttrValue::Int(i) => ("int64", json!(i)),
        AttrValue::Double(d) => ("float64", json!(d)),
        other => ("string", json!(text_of(other))),
    };
    json!({"key": key, "type": kind, "value": value})
}

fn str_tag(key: &str, value: &str) -> Value {
    json!({"key": key, "type": "string", "value": value})
}

/// What OpenTelemetry's mapping adds as tags: kind, status, scope.
fn otel_tags(span: &Span) -> Vec<(String, AttrValue)> {
    let mut tags: Vec<(String, AttrValue)> = span
        .attributes
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    match span.status.code {
        StatusCode::Error => {
            tags.push(("otel.status_code".into(), AttrValue::Str("ERROR".into())));
            tags.push(("error".into(), AttrValue::Bool(true)));
            if !span.status.message.is_empty() {
                tags.push((
                    "otel.status_description".into(),
                    AttrValue::Str(span.status.message.clone()),
                ));
            }
        }
        StatusCode::Ok => tags.push(("otel.status_code".into(), AttrValue::Str("OK".into()))),
        _ => {}
    }
    if !span.scope_name.is_empty() {
        tags.push((
            "otel.scope.name".into(),
            AttrValue::Str(span.scope_name.clone()),
        ));
    }
    tags
}

fn jaeger(traces: &[Trace]) -> Value {
    let data: Vec<Value> = traces
        .iter()
        .map(|trace| {
            let mut processes = serde_json::Map::new();
            let spans: Vec<Value> = trace
                .spans
                .iter()
                .map(|span| {
                    let process = format!("p-{}", span.service_name);
                    processes.entry(process.clone()).or_insert_with(|| {
                        let tags: Vec<Value> = span
                            .resource
                            .iter()
                            .filter(|a| a.key != "service.name")
                            .map(|a| jaeger_tag(&a.key, &a.value))
                            .collect();
                        json!({"serviceName": &*span.service_name, "tags": tags})
                    });
                    let mut references: Vec<Value> = span
                        .parent_span_id
                        .iter()
                        .map(|p| {
                            json!({"refType": "CHILD_OF", "traceID": span.trace_id.to_hex(),
                                   "spanID": p.to_hex()})
                        })
                        .collect();
                    references.extend(span.links.iter().map(|l| {
                        json!({"refType": "FOLLOWS_FROM", "traceID": l.trace_id.to_hex(),
                               "spanID": l.span_id.to_hex()})
                    }));
                    let mut tags: Vec<Value> = otel_tags(span)
                        .iter()
                        .map(|(k, v)| jaeger_tag(k, v))
                        .collect();
                    if let Some(kind) = kind_tag(span.kind) {
                        tags.push(str_tag("span.kind", kind));
                    }
                    let logs: Vec<Value> = span
                        .events
                        .iter()
                        .map(|e| {
                            let mut fields = vec![str_tag("event", &e.name)];
                            fields
                                .extend(e.attributes.iter().map(|a| jaeger_tag(&a.key, &a.value)));
                            json!({"timestamp": e.time_unix_nano / 1000, "fields": fields})
                        })
                        .collect();
                    json!({
                        "traceID": span.trace_id.to_hex(),
                        "spanID": span.span_id.to_hex(),
                        "flags": span.flags,
                        "operationName": span.name,
                        "references": references,
                        "startTime": span.start_unix_nano / 1000,
                        "duration": span.duration_nanos() / 1000,
                        "tags": tags,
                        "logs": logs,
                        "processID": process,
                        "warnings": null,
                    })
                })
                .collect();
            json!({"traceID": trace.trace_id.to_hex(), "spans": spans, "processes": processes,
                   "warnings": null})
        })
        .collect();
    json!({"data": data, "total": 0, "limit": 0, "offset": 0, "errors": null})
}

fn zipkin(traces: &[Trace]) -> Value {
    let mut spans = Vec::new();
    for span in traces.iter().flat_map(|t| &t.spans) {
        let mut tags = serde_json::Map::new();
        let resource = span.resource.iter().filter(|a| a.key != "service.name");
        let own = otel_tags(span);
        for (key, value) in resource
            .map(|a: &Attribute| (a.key.clone(), a.value.clone()))
            .chain(own)
        {
            // Zipkin's `error` tag holds the message, or "true".
            let text = match (key.as_str(), value) {
                ("error", _) if !span.status.message.is_empty() => span.status.message.clone(),
                (_, value) => text_of(&value),
            };
            tags.insert(key, json!(text));
        }
        let mut out = json!({
            "traceId": span.trace_id.to_hex(),
            "id": span.span_id.to_hex(),
            "name": span.name,
            "timestamp": span.start_unix_nano / 1000,
            "duration": span.duration_nanos() / 1000,
            "localEndpoint": {"serviceName": &*span.service_name},
            "tags": tags,
            "annotations": span.events.iter()
                .map(|e| json!({"timestamp": e.time_unix_nano / 1000, "value": e.name}))
                .collect::<Vec<_>>(),
        });
        if let Some(parent) = span.parent_span_id {
            out["parentId"] = json!(parent.to_hex());
        }
        if let Some(kind) = kind_tag(span.kind) {
            out["kind"] = json!(kind.to_ascii_uppercase());
        }
        spans.push(out);
    }
    Value::Array(spans)
}

fn import(input: &Path, out: &Path) -> String {
    let output = tracelab()
        .arg("import")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--name", "formats"])
        .output()
        .expect("tracelab import");
    assert!(
        output.status.success(),
        "import {}: {}",
        input.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out).unwrap();
    // The header names the file and its format, and where the scenario was written.
    text.lines()
        .filter(|l| !l.starts_with("# Imported by") && !l.starts_with("#   tracelab run"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn jaeger_and_zipkin_import_as_the_same_scenario_as_otlp() {
    let dir = scratch();
    let run = dir.join("run");
    let output = tracelab()
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.yaml"))
        .args(["--rate", "200", "--duration", "3s", "--out"])
        .arg(&run)
        .args(["--no-progress", "--otlp-grpc", "127.0.0.1:0"])
        .args(["--otlp-http", "127.0.0.1:0", "--json"])
        .output()
        .expect("tracelab run");
    assert!(
        run.join("spans.otlp.jsonl").exists(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let spans = otlp_json::read_file(&run.join("spans.otlp.jsonl")).unwrap();
    let mut traces = group_into_traces(spans);
    assert!(traces.len() >= 500, "{} traces", traces.len());
    for trace in &mut traces {
        trace.spans.iter_mut().for_each(micros);
    }

    let otlp = dir.join("traces.otlp.jsonl");
    let lines: String = traces
        .iter()
        .map(|t| format!("{}\n", otlp_json::encode_request_line(&t.spans)))
        .collect();
    std::fs::write(&otlp, lines).unwrap();
    let jaeger_file = dir.join("traces.jaeger.json");
    std::fs::write(
        &jaeger_file,
        serde_json::to_string_pretty(&jaeger(&traces)).unwrap(),
    )
    .unwrap();
    let zipkin_file = dir.join("traces.zipkin.json");
    std::fs::write(
        &zipkin_file,
        serde_json::to_string(&zipkin(&traces)).unwrap(),
    )
    .unwrap();

    let from_otlp = import(&otlp, &dir.join("otlp.yaml"));
    let from_jaeger = import(&jaeger_file, &dir.join("jaeger.yaml"));
    let from_zipkin = import(&zipkin_file, &dir.join("zipkin.yaml"));
    // The scenario is a real one: the entry routes, their calls and their errors are there.
    for needle in ["/checkout", "/products", "errors:", "parallel:", "cache"] {
        assert!(from_otlp.contains(needle), "{needle}:\n{from_otlp}");
    }
    assert_eq!(from_jaeger, from_otlp, "Jaeger JSON imports differently");
    assert_eq!(from_zipkin, from_otlp, "Zipkin v2 JSON imports differently");

    // --anonymize: no name from the traces is left, and the scenario still passes check.
    let anonymous = dir.join("anonymous.yaml");
    let output = tracelab()
        .arg("import")
        .arg(&otlp)
        .arg("-o")
        .arg(&anonymous)
        .arg("--anonymize")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = std::fs::read_to_string(&anonymous).unwrap();
    for name in [
        "frontend", "checkout", "payment", "catalog", "/cart", "products", "2.1.0",
    ] {
        assert!(!text.contains(name), "{name} left in:\n{text}");
    }
    assert!(
        text.contains("service-1") && text.contains("/route-1"),
        "{text}"
    );
    let check = tracelab().arg("check").arg(&anonymous).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // report and diff read them too, and see the same traces.
    for file in [&jaeger_file, &zipkin_file] {
        let output = tracelab()
            .arg("diff")
            .arg(&otlp)
            .arg(file)
            .arg("--json")
            .output()
            .unwrap();
        let diff: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        assert_eq!(diff["before"]["traces"], diff["after"]["traces"]);
        assert_eq!(diff["before"]["spans"], diff["after"]["spans"]);
        assert_eq!(
            diff["before"]["failed_traces"],
            diff["after"]["failed_traces"]
        );
        let output = tracelab()
            .arg("report")
            .arg(file)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
