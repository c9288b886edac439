//! The lab's workloads as the container runtimes see them: which processes run, with which
//! command, environment, user, working directory, volumes, health check and start order
//! (read from the files by `compose_file` and `k8s_manifests`), and the containers they
//! become. Nothing here changes a command: a workload's `argv` is the image's entrypoint
//! followed by the file's command (compose) or the container's `command` and `args`
//! (Kubernetes, with `$(VAR)` expanded as the kubelet expands it).

use std::net::Ipv4Addr;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::container::{self, Container, Mount};
use super::image::{self, DEFAULT_PATH, Image};

/// What a workload is for the tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// A lab service: runs until stopped.
    Service,
    /// A Kubernetes init container: runs to the end before its pod's container.
    Init,
    /// The load generator.
    Load,
}

/// How the runtime knows a workload is ready.
#[derive(Debug, Clone)]
pub enum Health {
    /// A command in the container (compose `healthcheck`).
    Command(Vec<String>),
    /// A port accepting connections (a Kubernetes `tcpSocket` readiness probe).
    TcpPort(u16),
    /// Started is ready.
    None,
}

/// A volume, as the runtime fills it.
#[derive(Debug, Clone)]
pub enum Volume {
    /// A volume that starts as a copy of the image's content at its target (a compose named
    /// volume under `key`, or an anonymous volume for the image's `VOLUME`).
    FromImage { key: String },
    /// An empty directory anyone may write (a Kubernetes `emptyDir`).
    Empty { key: String },
    /// Files, read-only (a Kubernetes ConfigMap).
    Files(Vec<(String, String)>),
}

/// One process of the lab, as its file declares it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The compose service, or the Kubernetes object and container.
    pub name: String,
    /// Service, init container or load generator.
    pub kind: WorkloadKind,
    /// The pod (or compose service) it belongs to: its address and volumes are the pod's.
    pub pod: String,
    /// The names that resolve to its address.
    pub names: Vec<String>,
    /// The command: entrypoint and arguments.
    pub argv: Vec<String>,
    /// The environment, as the runtime sets it.
    pub env: Vec<(String, String)>,
    /// User and group id.
    pub user: (u32, u32),
    /// The working directory.
    pub workdir: String,
    /// Whether the root filesystem is read-only.
    pub read_only: bool,
    /// Mounts: target, volume, writable.
    pub volumes: Vec<(String, Volume, bool)>,
    /// How readiness is known.
    pub health: Health,
    /// The workloads whose health this one waits for.
    pub depends_on: Vec<String>,
}

/// The simulated workloads, in start order, and where the Collector is reached.
#[derive(Debug)]
pub struct Project {
    /// In start order.
    pub workloads: Vec<Workload>,
    /// Names that resolve to the Collector (the embedded receiver).
    pub collector_names: Vec<String>,
}

/// A YAML list (or a string split at whitespace) as strings.
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A YAML scalar as text.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The image's environment with what the runtime adds (`PATH` when the image sets none,
/// `HOSTNAME`, `HOME`), before the file's own variables.
pub fn base_env(image: &Image, hostname: &str, uid: u32) -> Vec<(String, String)> {
    let mut env = image.env.clone();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    env.push(("HOSTNAME".into(), hostname.into()));
    env.push(("HOME".into(), image.home(uid)));
    env
}

/// Sets `key`, replacing an earlier value.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value));
}

/// The host part of an `http://host:port` endpoint.
pub fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split([':', '/']).next().unwrap_or_default().to_owned()
}

/// The containers of `project`, laid out under `dir` on the network `127.X.Y.0/24`: each pod
/// its own address, the Collector's names at `collector`.
pub fn containers(
    project: &Project,
    image: &Image,
    dir: &Path,
    [x, y]: [u8; 2],
    collector: Ipv4Addr,
) -> Vec<Container> {
    let mut pods: Vec<&str> = Vec::new();
    for workload in &project.workloads {
        if !pods.contains(&workload.pod.as_str()) {
            pods.push(&workload.pod);
        }
    }
    let ip_of = |pod: &str| {
        let index = pods.iter().position(|p| *p == pod).unwrap_or(0);
        Ipv4Addr::new(
            127,
            x,
            y,
            10 + u8::try_from(index).expect("fewer than 240 pods"),
        )
    };
    let mut hosts: Vec<(String, Ipv4Addr)> = project
        .collector_names
        .iter()
        .map(|name| (name.clone(), collector))
        .collect();
    for workload in &project.workloads {
        for name in &workload.names {
            hosts.push((name.clone(), ip_of(&workload.pod)));
        }
    }
    // The image as built, for volumes that start as a copy of its content.
    let seed = dir.join("image");
    image.materialize(&seed);
    project
        .workloads
        .iter()
        .map(|workload| {
            let ip = ip_of(&workload.pod);
            let mounts = workload
                .volumes
                .iter()
                .map(|(target, volume, writable)| Mount {
                    target: target.clone(),
                    source: volume_dir(dir, &seed, target, volume),
                    writable: *writable,
                })
                .collect();
            let container = Container {
                name: workload.name.clone(),
                ip,
                argv: workload.argv.clone(),
                env: workload
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), container::own_interfaces(v, ip)))
                    .collect(),
                user: workload.user,
                workdir: workload.workdir.clone(),
                mounts,
                read_only: workload.read_only,
                dir: dir.join(&workload.name),
            };
            container.prepare(image, &workload.names, &hosts);
            container
        })
        .collect()
}

/// The directory on this machine behind a volume, made and filled on first use.
fn volume_dir(dir: &Path, seed: &Path, target: &str, volume: &Volume) -> PathBuf {
    match volume {
        Volume::FromImage { key } => {
            let path = dir.join("volumes").join(key);
            if !path.exists() {
                // Docker fills a new volume with the image's content at the mount point,
                // owners and modes included.
                let content = image::inside(seed, target);
                std::fs::create_dir_all(&path).expect("a volume directory");
                if content.is_dir() {
                    let status = std::process::Command::new("cp")
                        .arg("-a")
                        .arg(content.join("."))
                        .arg(&path)
                        .status()
                        .expect("cp runs");
                    assert!(
                        status.success(),
                        "copying the image's content into a volume"
                    );
                    let meta = std::fs::metadata(&content).expect("the image's directory");
                    use std::os::unix::fs::MetadataExt;
                    chown(&path, Some(meta.uid()), Some(meta.gid())).expect("chown");
                    std::fs::set_permissions(&path, meta.permissions()).expect("chmod");
                }
            }
            path
        }
        Volume::Empty { key } => {
            let path = dir.join("volumes").join(key);
            std::fs::create_dir_all(&path).expect("an emptyDir");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
            path
        }
        Volume::Files(files) => {
            let path = dir
                .join("volumes")
                .join(format!("files{}", target.replace('/', "-")));
            std::fs::create_dir_all(&path).expect("a ConfigMap volume");
            for (name, text) in files {
                std::fs::write(path.join(name), text).expect("a ConfigMap file");
            }
            path
        }
    }
}
