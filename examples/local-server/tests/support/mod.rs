//! Starting the `runagent-local` binary for a test: a fresh in-memory
//! database, one enterprise key (so that no test is throttled) and an agents
//! directory holding the test's `command` agent.
#![allow(dead_code)]

pub mod pg;
pub mod scale;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const KEY: &str = "faults-key";

/// Starts the binary on a free port with `args` and waits for its
/// `listening on` line. Returns the child, the base URL it printed (ending
/// in `/v1`) and the lines printed before it (the development key, if any).
/// The server's log is quiet unless asked for, e.g. RUNAGENT_E2E_LOG=info.
pub fn spawn<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> (Child, String, Vec<String>) {
    spawn_logged(args, None)
}

/// [`spawn`], with the server's standard error (at `info`, or
/// `RUNAGENT_E2E_LOG`) written to `log` when given, for a test that reads
/// it (say, to prove nothing panicked).
pub fn spawn_logged<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
    args: I,
    log: Option<&Path>,
) -> (Child, String, Vec<String>) {
    let level = std::env::var("RUNAGENT_E2E_LOG").unwrap_or_else(|_| if log.is_some() { "info" } else { "off" }.into());
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("the log file")),
        None => Stdio::inherit(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_runagent-local"))
        .args(["--port", "0"])
        .args(args)
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut preamble = Vec::new();
    let base_url = loop {
        let line = receiver.recv_timeout(Duration::from_secs(30)).expect("the server prints its listening line");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_owned();
        }
        preamble.push(line);
    };
    (child, base_url, preamble)
}

/// A running `runagent-local`, killed when dropped.
pub struct LocalServer {
    child: Child,
    /// The base URL it printed, ending in `/v1`.
    pub base_url: String,
    dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts the binary with `script` as the agents directory's
    /// `agent.sh`.
    pub fn start(script: &str) -> LocalServer {
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("agents");
        std::fs::create_dir(&agents).unwrap();
        let path = agents.join("agent.sh");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = format!("{KEY}:enterprise");
        let args: [&OsStr; 8] = [
            "--shutdown-timeout".as_ref(),
            "1".as_ref(),
            "--db".as_ref(),
            ":memory:".as_ref(),
            "--api-key".as_ref(),
            key.as_ref(),
            "--agents-dir".as_ref(),
            agents.as_os_str(),
        ];
        let (child, base_url, _) = spawn(args);
        LocalServer { child, base_url, dir }
    }

    /// The directory `command` agents run in.
    pub fn agents_dir(&self) -> PathBuf {
        self.dir.path().join("agents")
    }

    /// The lines a file in the agents directory holds (0 when it is missing).
    pub fn lines_of(&self, name: &str) -> usize {
        read_lines(&self.agents_dir().join(name))
    }
}

fn read_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
