//! Headless Chromium for the tests that look at a page as a person would: the browser, a
//! proxy that counts every request the page makes, and helpers to read what it showed. See
//! `report_browser.rs` for how each property is observed.

#![allow(dead_code)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Hosts of Chromium's own background services (component updates, account sign-in, network
/// time, and the default search engine, which Chromium 148 preconnects to at start whatever
/// the flags). They are sent around the proxy and made unresolvable, so that only the page's
/// requests reach the proxy.
pub const BROWSER_SERVICE_HOSTS: &[&str] = &[
    "www.google.com",
    "update.googleapis.com",
    "accounts.google.com",
    "clients2.google.com",
    "clientservices.googleapis.com",
    "safebrowsing.googleapis.com",
    "content-autofill.googleapis.com",
    "optimizationguide-pa.googleapis.com",
    "redirector.gvt1.com",
    "edgedl.me.gvt1.com",
];

/// How long one browser run may take before the test gives up on it.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("TRACELAB_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TRACELAB_CHROMIUM={} is not a file",
            path.display()
        );
        return path;
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        if let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return found;
        }
    }
    panic!(
        "headless Chromium is needed to test report.html and was not found on PATH: run \
         `.ci/test` (it installs Debian's `chromium` when missing) or set TRACELAB_CHROMIUM to \
         a Chrome or Chromium binary"
    );
}

/// A fake HTTP proxy: it records the first line of every connection (`GET http://…` or
/// `CONNECT host:443`) and closes it.
pub struct CountingProxy {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        // The thread lives until the test process ends; it only ever blocks in accept.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = [0u8; 256];
                let n = stream.read(&mut head).unwrap_or(0);
                let text = String::from_utf8_lossy(&head[..n]);
                let line = text.lines().next().unwrap_or("(nothing sent)").to_string();
                seen.lock().unwrap().push(line);
            }
        });
        CountingProxy { port, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// What one headless browser run left behind.
pub struct BrowserRun {
    /// The DOM after load (only with `--dump-dom`).
    pub dom: String,
    /// Chromium's log, console messages included.
    pub log: String,
}

impl BrowserRun {
    pub fn console_lines(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .collect()
    }
}

pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "browser-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Opens `url` in a fresh headless Chromium profile with every request sent to `proxy`.
/// `action` is `--dump-dom` or `--screenshot=…`.
/// With `loopback_direct`, requests to 127.0.0.1 (a page served by a test's own server) go
/// straight there and the page's own requests finish before its DOM is read; otherwise they too go to `proxy`, so a `file://` page that fetches anything
/// at all is caught.
pub fn browse(
    url: &str,
    action: &str,
    proxy: &CountingProxy,
    window: &str,
    loopback_direct: bool,
) -> BrowserRun {
    let work = scratch_dir("chromium");
    let stdout_path = work.join("stdout.html");
    let stderr_path = work.join("stderr.log");
    let bypass = BROWSER_SERVICE_HOSTS.join(";");
    let unresolvable: Vec<String> = BROWSER_SERVICE_HOSTS
        .iter()
        .map(|h| format!("MAP {h} ~NOTFOUND"))
        .collect();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={window}"))
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
        .arg(if loopback_direct {
            format!("--proxy-bypass-list={bypass}")
        } else {
            format!("--proxy-bypass-list=<-loopback>;{bypass}")
        })
        .arg(format!("--host-resolver-rules={}", unresolvable.join(", ")))
        // A served page fetches after it loads: let its requests finish before the DOM is read.
        .args(loopback_direct.then_some("--virtual-time-budget=10000"))
        .arg(action)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium().display()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Chromium did not finish within {BROWSER_TIMEOUT:?}; its log: {}",
                stderr_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = BrowserRun {
        dom: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        log: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    };
    assert!(status.success(), "Chromium failed ({status}): {}", run.log);
    run
}

pub fn file_url(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).expect("page exists");
    format!("file://{}", absolute.display())
}

/// `target/test-artifacts`, where screenshots are kept after the test.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn assert_png(path: &Path) {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("screenshot {} missing: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    // A blank page compresses to a few kilobytes; a rendered report is far larger.
    assert!(
        bytes.len() > 20_000,
        "{} is suspiciously small ({} bytes)",
        path.display(),
        bytes.len()
    );
}

/// The element starting at the first occurrence of `needle`, up to the end of its start tag.
pub fn start_tag<'a>(dom: &'a str, needle: &str) -> Option<&'a str> {
    let at = dom.find(needle)?;
    let open = dom[..at].rfind('<')?;
    let close = at + dom[at..].find('>')?;
    Some(&dom[open..=close])
}
