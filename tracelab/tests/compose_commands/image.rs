//! The lab image as the repository's Dockerfile builds it, laid out in a directory.
//!
//! The final stage is read instruction by instruction: its users and groups, the directories
//! it makes and who owns them, the files it copies (the `tracelab` binary under test for the
//! one copied from the build stage), its working directory, user, volumes, environment and
//! entrypoint. A change to the Dockerfile changes what the simulated containers see; an
//! instruction or a `RUN` command this model does not know fails the test, so nothing is
//! silently left out. The base image (`debian:trixie-slim`) is modelled by this machine's own
//! Debian libraries and the few programs the lab's commands call (bash, sh, sleep).

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Programs of the base image the lab's commands and health checks use.
const BASE_PROGRAMS: [&str; 3] = ["/usr/bin/bash", "/usr/bin/sh", "/usr/bin/sleep"];

/// Docker's `PATH` for an image that sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A user of the image, from `useradd` or the base image.
#[derive(Debug, Clone)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
    shell: String,
}

/// What the final stage does to the filesystem, in order.
#[derive(Debug, Clone)]
enum Step {
    Mkdir(String),
    Chown {
        path: String,
        uid: u32,
        gid: u32,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    /// The `tracelab` binary, copied from the build stage.
    CopyBinary(String),
    /// A file or directory of the build context.
    CopyContext {
        source: PathBuf,
        dest: String,
    },
}

/// The image configuration and how to lay out its filesystem.
#[derive(Debug, Clone)]
pub struct Image {
    /// `ENTRYPOINT`, exec form.
    pub entrypoint: Vec<String>,
    /// `CMD`, exec form.
    pub cmd: Vec<String>,
    /// `WORKDIR`, `/` when none.
    pub workdir: String,
    /// `ENV`, in order.
    pub env: Vec<(String, String)>,
    /// `VOLUME`s.
    pub volumes: Vec<String>,
    user: Option<String>,
    users: Vec<User>,
    groups: Vec<(String, u32)>,
    steps: Vec<Step>,
    binary: PathBuf,
}

impl Image {
    /// Reads the final stage of `dockerfile`; `context` is the build context and `binary` the
    /// `tracelab` the build stage would have produced.
    pub fn from_dockerfile(dockerfile: &Path, context: &Path, binary: &Path) -> Image {
        let text = std::fs::read_to_string(dockerfile).expect("the Dockerfile is readable");
        let instructions = instructions(&text);
        let last_from = instructions
            .iter()
            .rposition(|(keyword, _)| keyword == "FROM")
            .expect("the Dockerfile has a FROM");
        let mut image = Image {
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            workdir: "/".into(),
            env: Vec::new(),
            volumes: Vec::new(),
            user: None,
            users: vec![
                User {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                    home: "/root".into(),
                    shell: "/bin/bash".into(),
                },
                User {
                    name: "nobody".into(),
                    uid: 65534,
                    gid: 65534,
                    home: "/nonexistent".into(),
                    shell: "/usr/sbin/nologin".into(),
                },
            ],
            groups: vec![("root".into(), 0), ("nogroup".into(), 65534)],
            steps: Vec::new(),
            binary: binary.to_path_buf(),
        };
        for (keyword, rest) in &instructions[last_from + 1..] {
            match keyword.as_str() {
                "RUN" => image.run(rest),
                "COPY" => image.copy(rest, context),
                "WORKDIR" => {
                    let dir = absolute(&image.workdir, rest.trim());
                    image.steps.push(Step::Mkdir(dir.clone()));
                    image.workdir = dir;
                }
                "USER" => image.user = Some(rest.trim().to_owned()),
                "ENV" => image.env.extend(env_pairs(rest)),
                "VOLUME" => image.volumes.extend(words_or_json(rest)),
                "ENTRYPOINT" => image.entrypoint = exec_form(keyword, rest),
                "CMD" => image.cmd = exec_form(keyword, rest),
                "EXPOSE" | "LABEL" | "ARG" | "STOPSIGNAL" | "HEALTHCHECK" => {}
                other => panic!(
                    "the container simulation does not know the Dockerfile instruction {other}; \
                     teach tracelab/tests/compose_commands/image.rs what it does"
                ),
            }
        }
        image
    }

    /// The user and group ids of `spec` (`uid[:gid]` or names), or of the image's `USER`.
    pub fn ids(&self, spec: Option<&str>) -> (u32, u32) {
        let Some(spec) = spec.or(self.user.as_deref()) else {
            return (0, 0);
        };
        let (user, group) = match spec.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (spec, None),
        };
        let uid = self.uid(user);
        let gid = match group {
            Some(group) => self.gid(group),
            None => self
                .users
                .iter()
                .find(|u| u.uid == uid)
                .map(|u| u.gid)
                .unwrap_or(0),
        };
        (uid, gid)
    }

    /// The `HOME` docker gives a process running as `uid`.
    pub fn home(&self, uid: u32) -> String {
        self.users
            .iter()
            .find(|u| u.uid == uid)
            .map(|u| u.home.clone())
            .unwrap_or_else(|| "/".into())
    }

    /// Lays the image's filesystem out under `root`, as root owns it unless the Dockerfile
    /// says otherwise.
    pub fn materialize(&self, root: &Path) {
        for dir in [
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "usr/lib64",
            "usr/local/bin",
            "etc",
        ] {
            std::fs::create_dir_all(root.join(dir)).expect("creating the image's directories");
        }
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            std::os::unix::fs::symlink(target, root.join(link)).expect("merged /usr links");
        }
        for (dir, mode) in [
            ("tmp", 0o1777),
            ("root", 0o700),
            ("var", 0o755),
            ("", 0o755),
        ] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).expect("creating a base directory");
            set_mode(&path, mode);
        }
        for program in BASE_PROGRAMS {
            install_program(root, Path::new(program), program);
        }
        std::fs::write(
            root.join("etc/nsswitch.conf"),
            "passwd: files\ngroup: files\nhosts: files\n",
        )
        .expect("nsswitch.conf");
        for step in &self.steps {
            match step {
                Step::Mkdir(dir) => {
                    std::fs::create_dir_all(inside(root, dir)).expect("mkdir in the image");
                }
                Step::Chown { path, uid, gid } => {
                    chown(inside(root, path), Some(*uid), Some(*gid)).expect("chown in the image")
                }
                Step::Chmod { path, mode } => set_mode(&inside(root, path), *mode),
                Step::CopyBinary(dest) => {
                    let dest = if dest.ends_with('/') {
                        format!("{dest}tracelab")
                    } else {
                        dest.clone()
                    };
                    install_program(root, &self.binary, &dest);
                }
                Step::CopyContext { source, dest } => copy_tree(source, &inside(root, dest)),
            }
        }
        let passwd: String = self
            .users
            .iter()
            .map(|u| format!("{}:x:{}:{}::{}:{}\n", u.name, u.uid, u.gid, u.home, u.shell))
            .collect();
        let group: String = self
            .groups
            .iter()
            .map(|(name, gid)| format!("{name}:x:{gid}:\n"))
            .collect();
        std::fs::write(root.join("etc/passwd"), passwd).expect("/etc/passwd");
        std::fs::write(root.join("etc/group"), group).expect("/etc/group");
    }

    fn run(&mut self, script: &str) {
        for command in script.split("&&") {
            let words: Vec<&str> = command.split_whitespace().collect();
            assert!(
                !command.contains(['"', '\'', '|', ';', '$', '>', '<']),
                "the container simulation reads RUN commands word by word; `{}` needs a shell",
                command.trim()
            );
            let Some((program, args)) = words.split_first() else {
                continue;
            };
            let (flags, operands) = split_flags(args);
            let flag = |name: &str| flags.iter().find(|(f, _)| f == name).map(|(_, v)| v);
            match *program {
                "groupadd" => {
                    let gid = flag("--gid")
                        .and_then(|v| v.parse().ok())
                        .expect("groupadd --gid N");
                    self.groups.push((operands[0].to_owned(), gid));
                }
                "useradd" => {
                    let uid = flag("--uid")
                        .and_then(|v| v.parse().ok())
                        .expect("useradd --uid N");
                    let gid = flag("--gid").map(|g| self.gid(g)).unwrap_or(uid);
                    let name = operands[0].to_owned();
                    let home = flag("--home-dir")
                        .cloned()
                        .unwrap_or_else(|| format!("/home/{name}"));
                    if flags.iter().any(|(f, _)| f == "--create-home") {
                        self.steps.push(Step::Mkdir(home.clone()));
                        self.steps.push(Step::Chown {
                            path: home.clone(),
                            uid,
                            gid,
                        });
                    }
                    let shell = flag("--shell").cloned().unwrap_or_else(|| "/bin/sh".into());
                    self.users.push(User {
                        name,
                        uid,
                        gid,
                        home,
                        shell,
                    });
                }
                "mkdir" => {
                    for dir in operands {
                        self.steps.push(Step::Mkdir(absolute(&self.workdir, dir)));
                    }
                }
                "chown" => {
                    let (owner, paths) = operands.split_first().expect("chown OWNER PATH...");
                    let (uid, gid) = self.ids(Some(owner));
                    for path in paths {
                        self.steps.push(Step::Chown {
                            path: absolute(&self.workdir, path),
                            uid,
                            gid,
                        });
                    }
                }
                "chmod" => {
                    let (mode, paths) = operands.split_first().expect("chmod MODE PATH...");
                    let mode = u32::from_str_radix(mode, 8).expect("chmod takes an octal mode");
                    for path in paths {
                        self.steps.push(Step::Chmod {
                            path: absolute(&self.workdir, path),
                            mode,
                        });
                    }
                }
                other => panic!(
                    "the container simulation cannot run `{other}` from the Dockerfile; teach \
                     tracelab/tests/compose_commands/image.rs what it does"
                ),
            }
        }
    }

    fn copy(&mut self, rest: &str, context: &Path) {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (flags, operands) = split_flags(&words);
        let (dest, sources) = operands.split_last().expect("COPY SRC... DEST");
        let dest = absolute(&self.workdir, dest);
        let from = flags.iter().find(|(f, _)| f == "--from").map(|(_, v)| v);
        for source in sources {
            match from {
                Some(_) if source.rsplit('/').next() == Some("tracelab") => {
                    self.steps.push(Step::CopyBinary(dest.clone()));
                }
                Some(stage) => panic!(
                    "the container simulation only knows the tracelab binary from stage \
                     {stage}, not {source}"
                ),
                None => self.steps.push(Step::CopyContext {
                    source: context.join(source),
                    dest: dest.clone(),
                }),
            }
        }
        for (flag, value) in &flags {
            match flag.as_str() {
                "--from" => {}
                "--chown" => {
                    let (uid, gid) = self.ids(Some(value));
                    self.steps.push(Step::Chown {
                        path: dest.clone(),
                        uid,
                        gid,
                    });
                }
                other => panic!("the container simulation does not know COPY {other}"),
            }
        }
    }

    fn uid(&self, user: &str) -> u32 {
        user.parse().unwrap_or_else(|_| {
            self.users
                .iter()
                .find(|u| u.name == user)
                .map(|u| u.uid)
                .unwrap_or_else(|| panic!("the image has no user {user}"))
        })
    }

    fn gid(&self, group: &str) -> u32 {
        group.parse().unwrap_or_else(|_| {
            self.groups
                .iter()
                .find(|(name, _)| name == group)
                .map(|(_, gid)| *gid)
                .unwrap_or_else(|| panic!("the image has no group {group}"))
        })
    }
}

/// The Dockerfile's instructions, continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut result = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
                result.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    result
}

/// `--flag=value` (or a bare `--flag`, or `--flag value` for the few that take one) apart
/// from the operands.
fn split_flags<'a>(words: &[&'a str]) -> (Vec<(String, String)>, Vec<&'a str>) {
    const TAKES_VALUE: [&str; 6] = ["--uid", "--gid", "--home-dir", "--shell", "-u", "-g"];
    let mut flags = Vec::new();
    let mut operands = Vec::new();
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if let Some((flag, value)) = word.split_once('=').filter(|_| word.starts_with("--")) {
            flags.push((flag.to_owned(), value.to_owned()));
        } else if TAKES_VALUE.contains(word) {
            let value = iter.next().map(|v| (*v).to_owned()).unwrap_or_default();
            flags.push(((*word).to_owned(), value));
        } else if word.starts_with('-') {
            flags.push(((*word).to_owned(), String::new()));
        } else {
            operands.push(*word);
        }
    }
    (flags, operands)
}

fn exec_form(keyword: &str, rest: &str) -> Vec<String> {
    serde_json::from_str(rest).unwrap_or_else(|_| {
        panic!("{keyword} must use the exec form (a JSON array) for the simulation: {rest}")
    })
}

fn words_or_json(rest: &str) -> Vec<String> {
    serde_json::from_str(rest)
        .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect())
}

fn env_pairs(rest: &str) -> Vec<(String, String)> {
    if !rest.contains('=') {
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        return vec![(key.to_owned(), value.trim().to_owned())];
    }
    rest.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// `path` made absolute against the working directory, as the Dockerfile resolves it.
fn absolute(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", workdir.trim_end_matches('/'))
    }
}

/// Where the image path `path` lies under `root`.
pub fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Puts `program` at `dest` in the image with the shared libraries it loads, at the paths the
/// dynamic loader looks for them.
fn install_program(root: &Path, program: &Path, dest: &str) {
    let target = inside(root, dest);
    std::fs::create_dir_all(target.parent().expect("a file has a parent")).expect("mkdir");
    link_or_copy(program, &target);
    let ldd = Command::new("ldd")
        .arg(program)
        .output()
        .expect("ldd is installed");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let Some(library) = line.split_whitespace().find(|word| word.starts_with('/')) else {
            continue;
        };
        let target = inside(root, library);
        if target.exists() {
            continue;
        }
        std::fs::create_dir_all(target.parent().expect("a library has a parent")).expect("mkdir");
        link_or_copy(Path::new(library), &target);
    }
}

/// A hard link where the file system allows one (a binary of a hundred megabytes is not
/// copied for every container), else a copy.
fn link_or_copy(source: &Path, target: &Path) {
    let source = std::fs::canonicalize(source).expect("the source exists");
    if std::fs::hard_link(&source, target).is_err() {
        std::fs::copy(&source, target).expect("copying into the image");
    }
}

/// `COPY dir/ dest/`: the directory's contents into `dest`, owned by root.
fn copy_tree(source: &Path, dest: &Path) {
    if source.is_dir() {
        std::fs::create_dir_all(dest).expect("mkdir");
        for entry in std::fs::read_dir(source).expect("reading the build context") {
            let entry = entry.expect("a directory entry");
            copy_tree(&entry.path(), &dest.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(dest.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::copy(source, dest).expect("copying from the build context");
    }
}
