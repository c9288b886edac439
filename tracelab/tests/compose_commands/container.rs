//! One simulated container: the image laid out in a directory of its own, entered with a
//! `chroot` as the container's user, with a read-only root filesystem when the file asks for
//! one and only its volumes writable, its own address on a private loopback network, and the
//! `/etc/hosts` that resolves the other containers' names to theirs.
//!
//! `unshare --mount` gives each container a private mount namespace: the root directory is
//! bind-mounted onto itself and remounted read-only, `/dev` and `/proc` are mounted as a
//! container has them, volumes are bind-mounted over it, and
//! `unshare --root --wd --setuid --setgid` enters it as the user, clearing the supplementary
//! groups, before `execvp` finds the command on the container's own `PATH`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::image::{self, Image};

/// What the private mount namespace does before it enters the container.
const ENTER: &str = r#"set -e
root=$1 wd=$2 uid=$3 gid=$4 read_only=$5 count=$6
shift 6
mount --rbind "$root" "$root"
if [ "$read_only" = yes ]; then mount -o remount,bind,ro "$root"; fi
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
while [ "$count" -gt 0 ]; do
  mount --bind "$2" "$root$1"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$root$1"; fi
  shift 3
  count=$((count - 1))
done
exec unshare --root="$root" --wd="$wd" --setuid "$uid" --setgid "$gid" -- "$@"
"#;

/// A directory mounted into a container.
#[derive(Debug, Clone)]
pub struct Mount {
    /// The path inside the container.
    pub target: String,
    /// The directory on this machine.
    pub source: PathBuf,
    /// Whether the container may write to it.
    pub writable: bool,
}

/// A container, ready to run commands in.
#[derive(Debug, Clone)]
pub struct Container {
    /// The compose service or Kubernetes object it stands for.
    pub name: String,
    /// Its own address.
    pub ip: Ipv4Addr,
    /// The command: entrypoint and arguments, as the file and the image give them.
    pub argv: Vec<String>,
    /// The whole environment the process gets.
    pub env: Vec<(String, String)>,
    /// User and group id.
    pub user: (u32, u32),
    /// The working directory inside the container.
    pub workdir: String,
    /// Volumes and other mounts.
    pub mounts: Vec<Mount>,
    /// Whether everything but the mounts is read-only.
    pub read_only: bool,
    /// The container's directory on this machine: `root/`, volumes, logs.
    pub dir: PathBuf,
}

impl Container {
    /// The root directory of the container's filesystem on this machine.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Lays out the image and the mounts' targets and writes `/etc/hosts`: `localhost` and
    /// the container's own names are its address, `hosts` the other containers'.
    pub fn prepare(&self, image: &Image, own_names: &[String], hosts: &[(String, Ipv4Addr)]) {
        let root = self.root();
        std::fs::create_dir_all(&root).expect("creating the container's root");
        image.materialize(&root);
        let mut text = format!("{} localhost\n", self.ip);
        for name in own_names {
            text.push_str(&format!("{} {name}\n", self.ip));
        }
        for (name, ip) in hosts {
            text.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(root.join("etc/hosts"), text).expect("writing /etc/hosts");
        for dir in ["dev", "proc"] {
            std::fs::create_dir_all(root.join(dir)).expect("creating /dev and /proc");
        }
        for mount in &self.mounts {
            std::fs::create_dir_all(image::inside(&root, &mount.target))
                .expect("creating a mount point");
        }
    }

    /// The container's main process, started; its output goes to `<dir>/<name>.log`.
    pub fn start(&self) -> Child {
        self.spawn(&self.argv, &self.name)
    }

    /// Runs `argv` inside the running container, as `docker exec` would, and says whether
    /// it succeeded within `timeout`.
    pub fn exec(&self, argv: &[String], timeout: Duration) -> bool {
        let mut child = self.spawn(argv, &format!("{}-exec", self.name));
        wait(&mut child, timeout).is_some_and(|status| status.success())
    }

    /// What the container's process `label` printed.
    pub fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{label}.log"))).unwrap_or_default()
    }

    fn spawn(&self, argv: &[String], label: &str) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{label}.log"))).expect("log file");
        let mut command = Command::new(host_program("unshare"));
        command
            .args(["--mount", "--propagation", "private", "--"])
            .arg(host_program("sh"))
            .args(["-c", ENTER, "enter"])
            .arg(self.root())
            .arg(&self.workdir)
            .arg(self.user.0.to_string())
            .arg(self.user.1.to_string())
            .arg(if self.read_only { "yes" } else { "no" })
            .arg(self.mounts.len().to_string());
        for mount in &self.mounts {
            command
                .arg(&mount.target)
                .arg(&mount.source)
                .arg(if mount.writable { "rw" } else { "ro" });
        }
        command
            .args(argv)
            .env_clear()
            // Only `sh` and `mount` before the chroot read this; the container's own PATH
            // comes with its environment below and wins for the command itself.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        command.spawn().expect("unshare starts")
    }
}

/// Where this machine keeps `program`, looked up on the test's own `PATH`.
pub fn host_program(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not installed"))
}

/// Waits for `child` to exit within `timeout`; `None` when it did not (and it is killed).
pub fn wait(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, as `docker stop` and the kubelet send, and the exit status within 20 s.
pub fn terminate(child: &mut Child) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    wait(child, Duration::from_secs(20))
}

/// Whether the running simulation can work here: it needs root, to enter a chroot as
/// another user and to mount.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "the container simulation runs each container in a chroot as the image's user and \
         mounts its volumes, which needs root (CI and the development machines run as root)"
    );
}

/// A private loopback network for one simulated project: `127.X.Y.0/24`, different for each
/// test and process, so that two runs at once never meet.
pub fn subnet(salt: u8) -> [u8; 2] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let pid = std::process::id();
    // Each salt has its own range of third octets, so two tests of one process never share a
    // network; the process id and the clock keep two processes apart.
    [
        100 + u8::try_from(pid % 100).unwrap_or(0),
        u8::try_from(u32::from(salt % 5) * 50 + (nanos / 1000) % 50).unwrap_or(1),
    ]
}

/// `value` with the wildcard address `0.0.0.0` as the container's own address: a container
/// listening on all of its interfaces listens, here, on its own loopback address.
pub fn own_interfaces(value: &str, ip: Ipv4Addr) -> String {
    value.replace("0.0.0.0", &ip.to_string())
}

/// A temporary directory for a simulated project, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "tracelab-containers-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
