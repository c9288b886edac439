//! The lab's containers run as docker compose and a kubelet would run them, simulated on this
//! machine: every lab service of `compose/docker-compose.yaml` and every workload of
//! `tracelab render k8s`, with its command verbatim (the image's entrypoint from the
//! Dockerfile, then the file's command or args) and its environment as the file gives it, as
//! the image's user, from the image's working directory, in a chroot of the image as the
//! Dockerfile lays it out, where only the declared volumes are writable. Each container has
//! its own loopback address and an `/etc/hosts` that resolves the other containers' names, so
//! the URLs in the files are used as written; the one rewrite is a container's wildcard
//! address (`0.0.0.0`), which is its own address here. The embedded receiver listens where
//! the Collector would, and the whole tour must deliver complete traces there.
//!
//! Reverting the image's writable working directory (or the volumes over it) makes the load
//! generator fail here exactly as it fails in a real container: `Permission denied` or
//! `Read-only file system` when it creates its run directory.

#[path = "compose_commands/compose_file.rs"]
mod compose_file;
#[path = "compose_commands/container.rs"]
mod container;
#[path = "compose_commands/files.rs"]
mod files;
#[path = "compose_commands/image.rs"]
mod image;
#[path = "compose_commands/k8s_manifests.rs"]
mod k8s_manifests;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore};

use container::{Container, Scratch};
use files::{Workload, WorkloadKind};
use image::Image;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

fn lab_image() -> Image {
    let repo = repo();
    Image::from_dockerfile(
        &repo.join("Dockerfile"),
        &repo,
        Path::new(env!("CARGO_BIN_EXE_tracelab")),
    )
}

/// The receiver at the Collector's address of a simulated network.
async fn collector(ip: Ipv4Addr) -> (Receiver, Arc<TraceStore>) {
    let store = Arc::new(TraceStore::new());
    let config = ReceiverConfig {
        grpc_addr: SocketAddr::from((ip, 4317)),
        http_addr: SocketAddr::from((ip, 4318)),
        ..ReceiverConfig::ephemeral()
    };
    let receiver = Receiver::start(config, store.clone())
        .await
        .unwrap_or_else(|e| panic!("the Collector's place {ip}:4317 is taken: {e}"));
    (receiver, store)
}

/// Running containers, stopped (SIGTERM, then killed) when dropped.
struct Running(Vec<(Container, Child)>);

impl Running {
    fn stop_all(&mut self) {
        for (container, child) in self.0.iter_mut().rev() {
            if container::terminate(child).is_none() {
                panic!(
                    "{} did not stop within 20 s of SIGTERM:\n{}",
                    container.name,
                    container.log(&container.name)
                );
            }
        }
        self.0.clear();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `workload` is ready: its health check passes (compose) or its readiness
/// probe's port accepts connections (Kubernetes).
fn wait_ready(workload: &Workload, container: &Container) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = match &workload.health {
            files::Health::Command(argv) => container.exec(argv, Duration::from_secs(5)),
            files::Health::TcpPort(port) => {
                std::net::TcpStream::connect((container.ip, *port)).is_ok()
            }
            files::Health::None => true,
        };
        if ready {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never became ready:\n{}",
            workload.name,
            container.log(&container.name)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every trace the load generator started is whole and rooted in it, every lab service took
/// part, and the resource carries the environment's attributes.
fn assert_complete_traces(store: &TraceStore, services: &[String], requests: usize, env: &str) {
    let traces = store.traces();
    let seen: BTreeSet<String> = traces
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| s.service_name.to_string()))
        .collect();
    for service in services {
        assert!(
            seen.contains(service),
            "{service} exported no span: {seen:?}"
        );
    }
    assert!(
        requests >= 20,
        "the load generator sent {requests} requests"
    );
    assert_eq!(traces.len(), requests, "one trace per request");
    for trace in &traces {
        assert!(
            trace.shape().is_complete(),
            "a broken trace: {:?}",
            trace.shape()
        );
        assert_eq!(
            trace.root().map(|s| s.service_name.to_string()).as_deref(),
            Some("loadgen")
        );
    }
    // The services' resources carry what their environment set. (`tracelab load` does not
    // read OTEL_RESOURCE_ATTRIBUTES yet, so the load generator's spans are not checked.)
    for span in traces
        .iter()
        .flat_map(|t| t.spans.iter())
        .filter(|s| s.service_name.as_ref() != "loadgen")
    {
        assert!(
            span.resource
                .iter()
                .any(|a| a.key == "deployment.environment.name" && a.value.as_str() == Some(env)),
            "OTEL_RESOURCE_ATTRIBUTES reached {}'s resource: {:?}",
            span.service_name,
            span.resource
        );
    }
}

/// The run directory `tracelab load` left in a volume: its `requests.jsonl` line count.
fn run_directory_requests(volume: &Path) -> usize {
    let runs = volume.join("runs");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("no run directory in the volume ({}): {e}", runs.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run directory: {dirs:?}");
    assert!(dirs[0].join("report.json").is_file(), "report.json written");
    std::fs::read_to_string(dirs[0].join("requests.jsonl"))
        .expect("requests.jsonl written")
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_runs_as_docker_compose_would() {
    container::require_root();
    let image = lab_image();
    let scratch = Scratch::new("compose");
    let compose_file = repo().join("compose/docker-compose.yaml");
    let project = compose_file::compose_project(&compose_file, &image);
    let [x, y] = container::subnet(1);
    let collector_ip = Ipv4Addr::new(127, x, y, 2);
    let (receiver, store) = collector(collector_ip).await;

    let containers = files::containers(&project, &image, scratch.path(), [x, y], collector_ip);
    let mut running = Running(Vec::new());
    let mut load = None;
    for (workload, container) in project.workloads.iter().zip(&containers) {
        for dependency in &workload.depends_on {
            let (dep, dep_container) = project
                .workloads
                .iter()
                .zip(&containers)
                .find(|(w, _)| &w.name == dependency)
                .expect("depends_on names a simulated service");
            wait_ready(dep, dep_container);
        }
        let child = container.start();
        match workload.kind {
            WorkloadKind::Service => running.0.push((container.clone(), child)),
            WorkloadKind::Load => load = Some((workload, container, child)),
            WorkloadKind::Init => unreachable!("compose has no init containers"),
        }
    }
    let (load_workload, load_container, mut load_child) =
        load.expect("the compose file runs the load generator");
    // The stack runs the load for 30 minutes; `docker compose stop` ends it early with
    // SIGTERM, and the load generator completes its run directory as it stops.
    std::thread::sleep(Duration::from_secs(4));
    if let Ok(Some(status)) = load_child.try_wait() {
        panic!(
            "{} exited early ({status}):\n{}",
            load_workload.name,
            load_container.log(&load_container.name)
        );
    }
    container::terminate(&mut load_child).expect("the load generator stops on SIGTERM");
    let volume = load_container
        .mounts
        .iter()
        .find(|m| m.writable)
        .expect("the load generator writes into a volume");
    let requests = run_directory_requests(&volume.source);
    running.stop_all();
    receiver.shutdown().await;

    let services: Vec<String> = project
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Service)
        // The service a workload is: a compose service, a Deployment's pod.
        .map(|w| w.pod.clone())
        .collect();
    assert!(
        services.len() >= 5,
        "the quickstart's services: {services:?}"
    );
    assert_complete_traces(&store, &services, requests, "compose");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_workloads_run_as_a_kubelet_would() {
    container::require_root();
    let image = lab_image();
    let scratch = Scratch::new("k8s");
    let rendered = std::process::Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .current_dir(repo())
        .args(["render", "k8s", "scenarios/quickstart.yaml"])
        .output()
        .expect("tracelab render k8s runs");
    assert!(rendered.status.success(), "tracelab render k8s failed");
    let project = k8s_manifests::k8s_project(&String::from_utf8_lossy(&rendered.stdout), &image);
    let [x, y] = container::subnet(2);
    let collector_ip = Ipv4Addr::new(127, x, y, 2);
    let (receiver, store) = collector(collector_ip).await;

    let containers = files::containers(&project, &image, scratch.path(), [x, y], collector_ip);
    let mut running = Running(Vec::new());
    let mut load_volume = None;
    for (workload, container) in project.workloads.iter().zip(&containers) {
        match workload.kind {
            WorkloadKind::Service => running.0.push((container.clone(), container.start())),
            // A pod's init containers and then its container run to the end, in order; the
            // init container waits for the entry services itself.
            WorkloadKind::Init | WorkloadKind::Load => {
                assert!(
                    container.exec(&container.argv, Duration::from_secs(90)),
                    "{} failed:\n{}",
                    workload.name,
                    container.log(&format!("{}-exec", container.name))
                );
                if workload.kind == WorkloadKind::Load {
                    load_volume = container.mounts.iter().find(|m| m.writable).cloned();
                }
            }
        }
    }
    for (workload, container) in project.workloads.iter().zip(&containers) {
        if workload.kind == WorkloadKind::Service {
            wait_ready(workload, container);
        }
    }
    let volume = load_volume.expect("the load Job writes into a volume");
    let requests = run_directory_requests(&volume.source);
    running.stop_all();
    receiver.shutdown().await;

    let services: Vec<String> = project
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Service)
        // The service a workload is: a compose service, a Deployment's pod.
        .map(|w| w.pod.clone())
        .collect();
    assert_complete_traces(&store, &services, requests, "kubernetes");
    // `$(K8S_POD_NAME)` was expanded from the downward API, as the kubelet does.
    let pods: BTreeSet<String> = store
        .spans()
        .iter()
        .filter_map(|s| {
            s.resource
                .iter()
                .find(|a| a.key == "k8s.pod.name")
                .and_then(|a| a.value.as_str().map(str::to_owned))
        })
        .collect();
    assert!(
        !pods.is_empty() && pods.iter().all(|p| !p.contains('$')),
        "{pods:?}"
    );
}

/// `compose/smoke.sh` needs a Docker engine; without one it says so and exits 2, having
/// started nothing. A `DOCKER_HOST` that leads nowhere stands for a machine without a daemon
/// (even one where a daemon runs), an empty `PATH` for one without the `docker` command.
#[test]
fn the_smoke_script_says_clearly_when_there_is_no_docker_engine() {
    let script = repo().join("compose/smoke.sh");
    let scratch = Scratch::new("smoke");
    let bash = container::host_program("bash");
    let cases = [
        (
            std::env::var("PATH").unwrap_or_default(),
            "docker cannot reach a Docker engine",
        ),
        (String::new(), "no docker command here"),
    ];
    for (path, message) in cases {
        if !path.is_empty() && !std::env::split_paths(&path).any(|d| d.join("docker").is_file()) {
            // Without a docker command the first case is the second one.
            continue;
        }
        let output = std::process::Command::new(&bash)
            .arg(&script)
            .env("PATH", &path)
            .env(
                "DOCKER_HOST",
                format!("unix://{}/no-engine.sock", scratch.path().display()),
            )
            .current_dir(scratch.path())
            .output()
            .expect("bash runs the script");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(stderr.contains("Nothing was started"), "{stderr}");
    }
}
