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
