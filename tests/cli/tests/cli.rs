//! The generated `runagent` command, run as a real process against a
//! `runagent-local` that each test starts on a free port with a throwaway
//! in-memory store. Output is read back as JSON (standard output is a pipe
//! here, so JSON is the default), exit codes are checked by class.
//!
//! Both binaries must be built first:
//! `cargo build -p runagent-cli -p runagent-local` (`cargo test --workspace`
//! builds every binary before running tests).

use assert_cmd::Command;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A binary of the workspace, from the target folder this test runs in.
fn binary(name: &str) -> PathBuf {
    let path = assert_cmd::cargo::cargo_bin(name);
    assert!(path.exists(), "{} is missing: run `cargo build -p runagent-cli -p runagent-local` first", path.display());
    path
}

/// A running `runagent-local`, killed when dropped.
struct Server {
    child: Child,
    base_url: String,
    key: String,
}

impl Server {
    /// Starts one that accepts the key `cli-test` at `tier`, with `extra`
    /// arguments.
    fn start(tier: &str, extra: &[&str]) -> Server {
        let key = "cli-test".to_owned();
        let mut child = std::process::Command::new(binary("runagent-local"))
            .args(["--port", "0", "--db", ":memory:", "--shutdown-timeout", "1"])
            .args(["--api-key", &format!("{key}:{tier}")])
            .args(extra)
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("runagent-local starts");
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
        let base_url = loop {
            let line = receiver.recv_timeout(Duration::from_secs(30)).expect("the server prints where it listens");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.to_owned();
            }
        };
        Server { child, base_url, key }
    }

    /// The command with this server's URL and key in the environment (as a
    /// user would set them) and nothing from the user's own configuration.
    fn cli(&self) -> Command {
        let mut command = Command::new(binary("runagent"));
        command
            .env("RUNAGENT_API_KEY", &self.key)
            .env("RUNAGENT_BASE_URL", &self.base_url)
            .env("XDG_CONFIG_HOME", "/nonexistent-runagent-cli-test")
            .env_remove("RUNAGENT_PROFILE")
            .env_remove("RUNAGENT_CONFIG")
            .timeout(Duration::from_secs(60));
        command
    }

    /// Runs the command, expects success, and parses each line of its
    /// output as JSON.
    fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let output = self.cli().args(args).output().unwrap();
        assert!(output.status.success(), "runagent {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect()
    }

    /// [`Server::json_lines`] for a command that prints one value.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut lines = self.json_lines(args);
        assert_eq!(lines.len(), 1, "one value from {args:?}: {lines:?}");
        lines.remove(0)
    }

    /// Creates and deploys an echo agent; returns its id.
    fn deployed_agent(&self, name: &str) -> String {
        let created = self.json(&["agents", "create", "--name", name, "--framework", "echo"]);
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        let operation = self.json(&["agents", "deploy", &id, "--wait"]);
        assert_eq!(operation["status"], "succeeded", "{operation}");
        id
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn create_deploy_and_get_print_json_a_program_can_read() {
    let server = Server::start("enterprise", &[]);
    let created =
        server.json(&["agents", "create", "--name", "hello", "--framework", "echo", "--tags", "a", "--tags", "b"]);
    assert_eq!(created["data"]["name"], "hello");
    assert_eq!(created["data"]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(created["data"]["status"], "created");
    let id = created["data"]["id"].as_str().unwrap();

    let operation = server.json(&["agents", "deploy", id, "--wait"]);
    assert_eq!(operation["kind"], "deploy");
    assert_eq!(operation["status"], "succeeded");

    let agent = server.json(&["agents", "get", id]);
    assert_eq!(agent["data"]["status"], "deployed");

    // Without --wait the accepted operation is printed, and it can be
    // fetched by id.
    let accepted = server.json(&["agents", "deploy", id]);
    let op = accepted["operation_id"].as_str().unwrap();
    let fetched = server.json(&["operations", "get", op]);
    assert_eq!(fetched["data"]["operation_id"], op, "{fetched}");
}

#[test]
fn invoke_answers_and_streams_chunk_by_chunk() {
    let server = Server::start("enterprise", &[]);
    let id = server.deployed_agent("echoer");

    let answer = server.json(&["invoke", &id, "Hello"]);
    assert_eq!(answer["data"]["result"], "Hello");

    let events = server.json_lines(&["invoke", &id, "Hello there", "--stream"]);
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"start"));
    assert_eq!(names.last(), Some(&"done"));
    let text: String =
        events.iter().filter(|e| e["event"] == "chunk").map(|e| e["data"]["text"].as_str().unwrap()).collect();
    assert_eq!(text, "Hello there");
}

#[test]
fn batch_reads_its_queries_from_a_json_lines_file() {
    let server = Server::start("enterprise", &[]);
    let id = server.deployed_agent("batcher");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queries.jsonl");
    std::fs::write(&file, "{\"query\": \"one\"}\n\n{\"query\": \"two\"}\n").unwrap();
    let answer = server.json(&["batch", &id, "--file", file.to_str().unwrap()]);
    let results: Vec<&str> =
        answer["data"].as_array().unwrap().iter().map(|item| item["data"]["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["one", "two"]);
}

#[test]
fn a_body_from_standard_input_and_every_page_with_all() {
    let server = Server::start("enterprise", &[]);
    for n in 0..5 {
        let body = format!("{{\"name\": \"stdin-{n}\", \"framework\": \"echo\"}}");
        server.cli().args(["agents", "create", "--body", "-"]).write_stdin(body).assert().success();
    }
    // A flag is set on top of the body it was given.
    let created =
        server.json(&["agents", "create", "--body", r#"{"name": "x", "framework": "echo"}"#, "--name", "flagged"]);
    assert_eq!(created["data"]["name"], "flagged");

    let one_page = server.json_lines(&["agents", "list", "--limit", "2"]);
    assert_eq!(one_page.len(), 2);
    let every = server.json_lines(&["agents", "list", "--limit", "2", "--all"]);
    let names: Vec<&str> = every.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["stdin-0", "stdin-1", "stdin-2", "stdin-3", "stdin-4", "flagged"]);
}

#[test]
fn failures_print_the_code_and_request_id_and_exit_by_class() {
    let server = Server::start("enterprise", &[]);
    let missing = server.cli().args(["agents", "get", "agt_nope"]).assert().code(4);
    let stderr = String::from_utf8(missing.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("NOT_FOUND") && stderr.contains("request id: req_"), "{stderr}");

    server.cli().args(["--api-key", "wrong", "usage"]).assert().code(3);
    let no_key = server.cli().env_remove("RUNAGENT_API_KEY").arg("usage").assert().code(3);
    let stderr = String::from_utf8(no_key.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("RUNAGENT_API_KEY"), "{stderr}");
    server.cli().args(["agents", "list", "--status", "bogus"]).assert().code(2);
    server.cli().args(["agents", "create", "--body", "{not json"]).assert().code(2);
    // The key is never printed, even in a failure.
    let refused = server.cli().args(["--api-key", "sk-secret-value", "agents", "get", "agt_nope"]).assert().code(3);
    let output = refused.get_output();
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!all.contains("sk-secret-value"), "{all}");
}

#[test]
fn rate_limited_exits_5_with_the_reset_time() {
    let server = Server::start("free", &["--rate-limit", "free=2"]);
    server.cli().arg("usage").assert().success();
    server.cli().arg("usage").assert().success();
    let limited = server.cli().args(["--retries", "0", "usage"]).assert().code(5);
    let stderr = String::from_utf8(limited.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("RATE_LIMITED") && stderr.contains("resets at"), "{stderr}");
}

#[test]
fn profiles_of_the_configuration_file_and_other_formats() {
    let server = Server::start("enterprise", &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runagent").join("config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "default_profile = \"local\"\n[profiles.local]\napi_key = \"{}\"\nbase_url = \"{}\"\n",
            server.key, server.base_url
        ),
    )
    .unwrap();
    let yaml = server
        .cli()
        .env_remove("RUNAGENT_API_KEY")
        .env_remove("RUNAGENT_BASE_URL")
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["usage", "--output", "yaml"])
        .assert()
        .success();
    let text = String::from_utf8(yaml.get_output().stdout.clone()).unwrap();
    assert!(text.contains("tier: enterprise"), "{text}");
    server.cli().env("XDG_CONFIG_HOME", dir.path()).args(["--profile", "nope", "usage"]).assert().code(2);

    let table = server.cli().args(["usage", "-o", "table"]).assert().success();
    let text = String::from_utf8(table.get_output().stdout.clone()).unwrap();
    assert!(text.lines().any(|l| l.starts_with("tier") && l.ends_with("enterprise")), "{text}");
}

#[test]
fn completions_and_help_come_from_the_spec() {
    let completions = Command::new(binary("runagent")).args(["completions", "bash"]).assert().success();
    let script = String::from_utf8(completions.get_output().stdout.clone()).unwrap();
    assert!(script.contains("runagent__agents__deploy") || script.contains("agents"), "{}", &script[..200]);
    let help = Command::new(binary("runagent")).args(["agents", "list", "--help"]).assert().success();
    let text = String::from_utf8(help.get_output().stdout.clone()).unwrap();
    assert!(text.contains("Only list agents in this status") && text.contains("--all"), "{text}");
    assert!(text.contains("[possible values: created, deploying, deployed, failed]"), "{text}");
}
