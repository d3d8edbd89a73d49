//! Throwaway PostgreSQL servers for tests: `initdb` into a temporary
//! folder, `postgres` on a free loopback port (no Unix socket, no system
//! service), stopped when dropped (or, for the shared one, when the test
//! binary exits).
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then `initdb`
//! and `postgres` run as the unprivileged user `nobody`, which owns the
//! temporary folder. The binaries come from `RUNAGENT_PG_BIN` or the
//! newest `/usr/lib/postgresql/*/bin` (Debian's layout); `.ci/install-services`
//! installs them.
//!
//! Without the binaries, PostgreSQL tests are skipped with a loud message,
//! unless `CI` is set: then they fail, so that CI never passes by skipping.
//!
//! This file is shared by the crate's unit tests (through `#[path]`) and
//! the integration tests, so it uses nothing of the crate.
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the PostgreSQL binaries are, if anywhere.
pub fn binaries() -> Option<PathBuf> {
    let has_all = |dir: &Path| ["initdb", "postgres", "pg_isready"].iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("RUNAGENT_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_all(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The binaries, or `None` after a loud message when the tests should be
/// skipped. Panics when `CI` is set and there are none.
pub fn require() -> Option<PathBuf> {
    if let Some(bin) = binaries() {
        return Some(bin);
    }
    let hint = "install them with `.ci/install-services` (Debian's postgresql-15) or point RUNAGENT_PG_BIN at \
                a folder holding initdb, postgres and pg_isready";
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the PostgreSQL binaries are missing: {hint}");
    }
    eprintln!("\n!!! SKIPPED: this test needs PostgreSQL and its binaries are missing; {hint} !!!\n");
    None
}

/// The user and group to run PostgreSQL as: ourselves, unless we are root.
fn run_as() -> Option<(u32, u32)> {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let nobody = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"nobody") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    });
    Some(nobody.unwrap_or((65534, 65534)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running PostgreSQL server in a temporary folder.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    /// The loopback port it listens on (the same across restarts).
    pub port: u16,
    child: Mutex<Option<Child>>,
}

impl PgServer {
    /// Initializes a cluster and starts it; `None` (after the loud
    /// message) when the binaries are missing outside CI.
    pub fn start() -> Option<PgServer> {
        let bin = require()?;
        let dir = tempfile::tempdir().unwrap();
        let user = run_as();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .current_dir(dir.path())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        let output = initdb.output().expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let server = PgServer { dir, bin, user, port: free_port(), child: Mutex::new(None) };
        server.launch();
        Some(server)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn launch(&self) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("server.log")).unwrap();
        if let Some((uid, gid)) = self.user {
            let _ = std::os::unix::fs::chown(self.dir.path().join("server.log"), Some(uid), Some(gid));
        }
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .args(["-D", "data", "-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=32MB"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so that a Ctrl-C of the test run does
            // not reach it before the test stops it.
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().expect("postgres starts");
        *self.child.lock().unwrap() = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(child) = self.child.lock().unwrap().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("postgres exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "postgres did not become ready: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server with a fast shutdown (SIGINT: sessions are ended,
    /// everything committed is kept) and waits for it.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else { return };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// Creates a database with a fresh name and returns its URL.
    pub async fn create_database(&self) -> String {
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&self.url("postgres")).await.expect("connect to postgres");
        conn.execute(sqlx::raw_sql(&format!("CREATE DATABASE {name}"))).await.expect("create database");
        let _ = conn.close().await;
        self.url(&name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<Option<PgServer>> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(Some(server)) = SHARED.get() {
        server.stop();
        let _ = std::fs::remove_dir_all(server.dir.path());
    }
}

/// One server for the whole test binary, started on first use and stopped
/// when the binary exits; tests take a database of their own in it
/// ([`PgServer::create_database`]). `None` when the tests are skipped.
pub fn shared() -> Option<&'static PgServer> {
    SHARED
        .get_or_init(|| {
            let server = PgServer::start()?;
            // SAFETY: registers a plain function with no captured state;
            // statics are never dropped, so this is what stops the server.
            unsafe {
                libc::atexit(stop_shared);
            }
            Some(server)
        })
        .as_ref()
}
