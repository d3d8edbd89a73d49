//! What the scale-out suite runs on: a throwaway `redis-server` and an
//! `haproxy` in round robin, each on free loopback ports in a temporary
//! folder, stopped when dropped. Both come from Debian
//! (`.ci/install-services`); a missing binary skips the tests loudly, or
//! fails them when `CI` is set, like the PostgreSQL ones.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `binary` runs; `false` after a loud message outside CI, a panic
/// in CI.
pub fn require(binary: &str, version_flag: &str) -> bool {
    let found = Command::new(binary).arg(version_flag).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if found {
        return true;
    }
    let hint = format!("install it with `.ci/install-services` (Debian's {binary})");
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but `{binary}` is missing: {hint}");
    }
    eprintln!("\n!!! SKIPPED: this test needs `{binary}`, which is missing; {hint} !!!\n");
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` with an append-only file written on every command, as
/// a deployment that relies on its idempotency records keeps them: a
/// restart loses nothing acknowledged.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        if !require("redis-server", "--version") {
            return None;
        }
        let mut server = RedisServer { port: free_port(), dir: tempfile::tempdir().unwrap(), child: None };
        server.launch();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn launch(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--dir", self.dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        wait_for_port(self.port, "redis-server", &mut child);
        self.child = Some(child);
    }

    /// The keys whose names match `pattern`, read with `redis-cli`: what
    /// proves the instances keep their state here.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--scan", "--pattern", pattern])
            .output()
            .expect("redis-cli runs");
        // Idempotency scopes hold a newline, which redis-cli prints as is:
        // the lines that do not start like the pattern are such tails.
        let start = pattern.split('*').next().unwrap_or_default();
        String::from_utf8_lossy(&output.stdout).lines().filter(|l| l.starts_with(start)).map(str::to_owned).collect()
    }

    /// Stops it with SIGTERM (it finishes writing its file) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and file.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `haproxy` balancing HTTP requests over `backends` in round robin, each
/// request on its own (no stickiness), naming the instance that answered
/// in `X-Served-By`.
pub struct Haproxy {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Haproxy {
    /// `backends` are `(name, port)` of instances on 127.0.0.1.
    pub fn start(backends: &[(&str, u16)]) -> Option<Haproxy> {
        if !require("haproxy", "-v") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "global\n  maxconn 2048\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n\
             \x20 timeout http-keep-alive 10s\n  retries 0\n\
             frontend api\n  bind 127.0.0.1:{port}\n  default_backend instances\n\
             backend instances\n  balance roundrobin\n\
             \x20 http-response set-header X-Served-By %[srv_name]\n"
        );
        for (name, backend) in backends {
            config.push_str(&format!("  server {name} 127.0.0.1:{backend}\n"));
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("haproxy starts");
        wait_for_port(port, "haproxy", &mut child);
        Some(Haproxy { port, _dir: dir, child })
    }

    /// The API's base URL through the proxy.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
