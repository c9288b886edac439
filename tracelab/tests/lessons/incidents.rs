//! The incident timeline: a 20 s run with a 5 s latency incident.

use super::lab::{parse, run};

const SCENARIO: &str = r#"
# One fast service; from 8 s to 13 s its route is 200 ms slower.
name: timeline
seed: 11
services:
  shop:
    routes:
      /:
        latency: {constant: 5}
load:
  rate: 20
  duration: 20s
  entries:
    - {service: shop, route: /}
incidents:
  - at: 8s
    duration: 5s
    what: shop is slow
    fault:
      service: shop
      route: /
      kind: {latency: {add: 200ms}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_latency_incident_shows_in_the_timeline_inside_its_window_only() {
    let run = run(parse(SCENARIO), SCENARIO, "timeline").await;

    // The window is recorded in the run directory, where the scenario put it.
    let (start, end) = run.window();
    assert!((start - 8.0).abs() < 0.5, "starts at {start} s");
    assert!((end - start - 5.0).abs() < 0.5, "lasts {} s", end - start);
    let window = &run.incidents[0];
    assert_eq!(window["what"], "shop is slow");
    assert_eq!(window["service"], "shop");
    assert_eq!(window["source"], "timeline");
    assert_eq!(
        window["fault"]["kind"]["latency"]["add"]["constant"]["ms"],
        200.0
    );
    assert_eq!(run.report["incidents"], serde_json::json!(run.incidents));

    // The per-second timeline of report.json: slow inside the window, fast outside, with one
    // second of edge either side.
    let timeline = run.report["load"]["timeline"]
        .as_array()
        .expect("report.json has a per-second timeline");
    assert!(timeline.len() >= 19, "{} seconds", timeline.len());
    let (mut slow, mut fast) = (0, 0);
    for row in timeline {
        let second = row["second"].as_u64().unwrap() as f64;
        let p50 = row["p50_ms"].as_f64().unwrap();
        if row["completed"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        // Second `s` holds the requests that ended in [s, s + 1): inside are the seconds
        // wholly in the window, outside those a second or more away from it.
        if second >= start.ceil() && second + 1.0 <= end.floor() {
            assert!(
                p50 >= 150.0,
                "second {second} is inside the incident: p50 {p50} ms"
            );
            slow += 1;
        } else if second + 1.0 <= start - 1.0 || second >= end + 1.0 {
            assert!(
                p50 < 100.0,
                "second {second} is outside the incident: p50 {p50} ms"
            );
            fast += 1;
        }
    }
    assert!(
        slow >= 3 && fast >= 10,
        "{slow} slow and {fast} fast seconds checked"
    );

    // The traces record it as ground truth: injected spans only inside the window.
    for span in run.spans().filter(|s| s.service_name.as_ref() == "shop") {
        let injected = span.attr("tracelab.injected").is_some();
        match run.inside(span.start_unix_nano, 0.2) {
            Some(true) => assert!(injected, "a span inside the window is marked"),
            Some(false) => assert!(!injected, "a span outside the window is not"),
            None => {}
        }
    }
}

const HAND: &str = r#"
# One service; a fault is switched on by hand during the run.
name: by-hand
seed: 12
services:
  shop:
    routes:
      /:
        latency: {constant: 2}
load:
  rate: 20
  duration: 4s
  entries:
    - {service: shop, route: /}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_switched_on_by_hand_is_recorded_too() {
    let dir = std::env::temp_dir().join(format!("tracelab-by-hand-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = tracelab::run::RunOptions {
        scenario: parse(HAND),
        scenario_source: HAND.to_string(),
        scenario_file: "by-hand.yaml".into(),
        out: dir.clone(),
        protocol: tracelab_telemetry::OtlpProtocol::Grpc,
        receiver: tracelab_receiver::ReceiverConfig::ephemeral(),
        progress: false,
        settle_timeout: std::time::Duration::from_secs(15),
        keep_traces: true,
    };
    let running = tokio::spawn(tracelab::run::run_lab(
        options,
        tokio_util::sync::CancellationToken::new(),
    ));
    // The run directory says where the admin API is, before the load starts.
    let services = dir.join("services.json");
    let mut admin = None;
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&services)
            && let Ok(list) = serde_json::from_str::<serde_json::Value>(&text)
        {
            admin = list[0]["admin_url"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let admin = format!("{}/admin/faults", admin.expect("services.json"));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let client = reqwest::Client::new();
    let on = client
        .post(&admin)
        .body(r#"{"service": "shop", "kind": {"error": {"rate": 1.0, "status": 500}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(on.status().as_u16(), 201);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let off = client.delete(&admin).send().await.unwrap();
    assert_eq!(off.status().as_u16(), 200);
    let outcome = running.await.unwrap().expect("the run succeeds");

    let text = std::fs::read_to_string(dir.join("incidents.jsonl")).unwrap();
    let windows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(windows.len(), 1, "{text}");
    assert_eq!(windows[0]["source"], "api");
    assert_eq!(windows[0]["what"], "error 500 (rate 1) on shop");
    let start = windows[0]["start_unix_nano"].as_u64().unwrap();
    let end = windows[0]["end_unix_nano"].as_u64().unwrap();
    assert!((end - start) as f64 / 1e9 > 0.8 && (end - start) as f64 / 1e9 < 1.5);
    // Exactly the requests inside the window failed.
    let mut failed_inside = 0;
    for span in outcome.traces.iter().flat_map(|t| t.spans.iter()) {
        if span.service_name.as_ref() != "shop" {
            continue;
        }
        let inside = span.start_unix_nano > start && span.start_unix_nano < end;
        assert_eq!(span.is_error(), inside, "{span:?}");
        failed_inside += usize::from(inside);
    }
    assert!(failed_inside >= 10);
    let _ = std::fs::remove_dir_all(&dir);
}
