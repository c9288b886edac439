//! The lab containers of `compose/docker-compose.yaml`, run for real on loopback: each lab
//! service's command line and environment, exactly as compose would start them, with only the
//! container hostnames and ports rewritten to 127.0.0.1. They must serve, call each other and
//! export to the OTLP endpoint their environment names.

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A lab container from the compose file.
struct LabContainer {
    name: String,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
}

fn lab_containers() -> Vec<LabContainer> {
    let text = std::fs::read_to_string(repo().join("compose/docker-compose.yaml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let services = doc["services"].as_object().unwrap();
    services
        .iter()
        .filter(|(_, s)| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("tracelab:"))
        })
        .map(|(name, s)| LabContainer {
            name: name.clone(),
            command: s["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
            environment: s["environment"]
                .as_object()
                .map(|env| {
                    env.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Rewrites `http://NAME:8080` to the loopback port the test gave NAME.
fn rewrite_url(url: &str, ports: &BTreeMap<String, u16>, otlp: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let host = rest.split(':').next().unwrap_or_default();
    if host == "otel-collector" {
        return otlp.to_string();
    }
    match ports.get(host) {
        Some(port) => format!("http://127.0.0.1:{port}"),
        None => url.to_string(),
    }
}

fn rewrite_args(args: &[String], ports: &BTreeMap<String, u16>, otlp: &str) -> Vec<String> {
    let scenarios = repo().join("scenarios");
    args.iter()
        .map(|a| {
            if let Some(file) = a.strip_prefix("/scenarios/") {
                scenarios.join(file).display().to_string()
            } else if let Some((name, url)) = a.split_once("=http://") {
                format!(
                    "{name}={}",
                    rewrite_url(&format!("http://{url}"), ports, otlp)
                )
            } else {
                a.clone()
            }
        })
        .collect()
}

struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, as `docker stop` sends: the service flushes its spans and exits.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("a lab service did not stop within 15 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lab_container_command_serves_and_exports() {
    let containers = lab_containers();
    let services: Vec<&LabContainer> = containers
        .iter()
        .filter(|c| c.command.first().map(String::as_str) == Some("svc"))
        .collect();
    assert!(
        services.len() >= 5,
        "the quickstart's services are in the compose file"
    );

    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .unwrap();
    let otlp = receiver.grpc_endpoint();
    let ports: BTreeMap<String, u16> = services
        .iter()
        .map(|c| (c.name.clone(), free_port()))
        .collect();

    let mut children = Children(Vec::new());
    for c in &services {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracelab"));
        cmd.args(rewrite_args(&c.command, &ports, &otlp))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for key in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_RESOURCE_ATTRIBUTES",
        ] {
            cmd.env_remove(key);
        }
        for (key, value) in &c.environment {
            let value = match key.as_str() {
                "TRACELAB_LISTEN" => format!("127.0.0.1:{}", ports[&c.name]),
                "TRACELAB_ADMIN_LISTEN" => "127.0.0.1:0".to_string(),
                k if k.starts_with("TRACELAB_PEER_") || k == "OTEL_EXPORTER_OTLP_ENDPOINT" => {
                    rewrite_url(value, &ports, &otlp)
                }
                _ => value.clone(),
            };
            cmd.env(key, value);
        }
        children.0.push((c.name.clone(), cmd.spawn().unwrap()));
    }

    // Every service answers its health check.
    let client = reqwest::Client::new();
    for (name, port) in &ports {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "{name} did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Traffic to every entry route of the scenario the compose file runs, with a sampled
    // traceparent so every hop records.
    let scenario = tracelab_scenario::parse(
        &std::fs::read_to_string(repo().join("scenarios/quickstart.yaml")).unwrap(),
        "quickstart.yaml",
    )
    .unwrap();
    let mut sent = 0;
    for entry in &scenario.load.entries {
        let method = &scenario.route(&entry.service, &entry.route).unwrap().method;
        for i in 0..5u32 {
            let trace_id = format!("{:032x}", 0x1000 + sent);
            let resp = client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("http://127.0.0.1:{}{}", ports[&entry.service], entry.route),
                )
                .header("traceparent", format!("00-{trace_id}-{:016x}-01", i + 1))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success() || resp.status().as_u16() >= 500);
            sent += 1;
        }
    }

    // The load generator container: its own command line, for two seconds instead of 30 min.
    let loadgen = containers
        .iter()
        .find(|c| c.command.first().map(String::as_str) == Some("load"))
        .expect("the compose file runs the load generator");
    let run_dir = std::env::temp_dir().join(format!(
        "tracelab-compose-load-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut args = rewrite_args(&loadgen.command, &ports, &otlp);
    if let Some(i) = args.iter().position(|a| a == "--duration") {
        args[i + 1] = "2s".to_string();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracelab"));
    cmd.args(&args).arg("--out").arg(&run_dir);
    for (key, value) in &loadgen.environment {
        let value = if key == "OTEL_EXPORTER_OTLP_ENDPOINT" {
            rewrite_url(value, &ports, &otlp)
        } else {
            value.clone()
        };
        cmd.env(key, value);
    }
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "tracelab load: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records = std::fs::read_to_string(run_dir.join("requests.jsonl")).unwrap();
    assert!(
        records.lines().count() >= 20,
        "the load generator sent its load"
    );

    for (_, child) in &mut children.0 {
        terminate(child);
    }
    let spans = store.spans();
    let services_seen: std::collections::BTreeSet<String> =
        spans.iter().map(|s| s.service_name.to_string()).collect();
    for c in &services {
        assert!(
            services_seen.contains(&c.name),
            "{} exported no span (saw {services_seen:?})",
            c.name
        );
    }
    // The resource carries what the compose environment set.
    let span = &spans[0];
    assert!(
        span.resource
            .iter()
            .any(|a| a.key == "deployment.environment.name" && a.value.as_str() == Some("compose")),
        "OTEL_RESOURCE_ATTRIBUTES reached the resource: {:?}",
        span.resource
    );
    // Each request the test sent is one trace whose only missing parent is its made-up
    // caller; each request of the load generator is one whole trace rooted in `loadgen`.
    let traces = store.traces();
    let (ours, generated): (Vec<_>, Vec<_>) = traces
        .iter()
        .partition(|t| t.spans.iter().all(|s| s.service_name.as_ref() != "loadgen"));
    assert_eq!(ours.len() as u32, sent);
    for trace in &ours {
        let shape = trace.shape();
        assert_eq!(shape.roots, 0, "the caller's span is not in the store");
        assert_eq!(
            shape.orphans, 1,
            "only the entry span points outside the store"
        );
    }
    assert_eq!(generated.len(), records.lines().count());
    for trace in &generated {
        assert!(
            trace.shape().is_complete(),
            "load generator traces are whole"
        );
        assert_eq!(trace.root().unwrap().service_name.as_ref(), "loadgen");
    }
    receiver.shutdown().await;
}
