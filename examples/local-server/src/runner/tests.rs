//! The runner against the built-in echo and tiny shell scripts.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// An agents directory with `script` as `name`, and a runner for it.
fn with_script(name: &str, script: &str) -> (tempfile::TempDir, Runner, Program) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runner = Runner::new(dir.path());
    let program = Program {
        agent_id: "agt_test".into(),
        name: "test".into(),
        framework: Framework::Command,
        entrypoint: Some(name.into()),
        config: json!({"k": "v"}),
    };
    (dir, runner, program)
}

fn echo_program(config: Value) -> Program {
    Program { agent_id: "agt_echo".into(), name: "echo".into(), framework: Framework::Echo, entrypoint: None, config }
}

fn with_timeout(query: &str, seconds: u64) -> RunRequest {
    let mut request = RunRequest::new(query);
    request.parameters.insert("timeout_seconds".into(), json!(seconds));
    request
}

async fn stream(
    runner: &Runner,
    program: &Program,
    request: &RunRequest,
) -> (Vec<String>, Result<RunOutput, RunError>) {
    let mut chunks = Vec::new();
    let result = runner.run_streaming(program, request, &CancellationToken::new(), &mut |c| chunks.push(c)).await;
    (chunks, result)
}

fn agent_reason(error: &RunError) -> &'static str {
    match error {
        RunError::Agent { reason, .. } => reason,
        other => panic!("not an agent error: {other:?}"),
    }
}

/// Whether a process is gone (or a zombie waiting for its reaper).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn chunks_join_back_into_the_query() {
    assert_eq!(echo_chunks("Hello world"), ["Hello", " world"]);
    assert_eq!(echo_chunks("  a b  "), ["  a", " b  "]);
    assert_eq!(echo_chunks("one"), ["one"]);
    assert_eq!(echo_chunks("   "), ["   "]);
    for query in ["Hello world", "  a\tb\n c  ", "x", " "] {
        assert_eq!(echo_chunks(query).concat(), query);
    }
    assert_eq!(count_words("  a\tb\n c  "), 3);
}

#[test]
fn timeout_comes_from_parameters_or_the_default() {
    assert_eq!(RunRequest::new("q").timeout_seconds(), 30);
    assert_eq!(with_timeout("q", 5).timeout_seconds(), 5);
    assert_eq!(with_timeout("q", 0).timeout_seconds(), 30);
    assert_eq!(with_timeout("q", 301).timeout_seconds(), 30);
}

#[tokio::test]
async fn echo_answers_and_streams_word_by_word() {
    let runner = Runner::new("/nonexistent");
    let program = echo_program(json!({}));
    let output = runner.run(&program, &RunRequest::new("Hello big world"), &CancellationToken::new()).await.unwrap();
    assert_eq!(output.result, "Hello big world");
    assert_eq!(output.tokens_used, 3);
    let (chunks, output) = stream(&runner, &program, &RunRequest::new("Hello world")).await;
    assert_eq!(chunks, ["Hello", " world"]);
    assert_eq!(output.unwrap().tokens_used, 2);
}

#[tokio::test]
async fn a_slow_echo_times_out_and_can_be_cancelled() {
    let runner = Runner::new("/nonexistent");
    let program = echo_program(json!({"delay_ms": 700}));
    let error = runner.run(&program, &with_timeout("a b c", 1), &CancellationToken::new()).await.unwrap_err();
    assert_eq!(error, RunError::Timeout { seconds: 1 });
    assert_eq!(error.code(), "AGENT_TIMEOUT");
    assert_eq!(error.to_api_error("batch[2].")["details"]["field"], "batch[2].parameters.timeout_seconds");

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let error = runner.run(&program, &RunRequest::new("a b c"), &cancel).await.unwrap_err();
    assert_eq!(error, RunError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn command_reads_the_request_and_answers_json() {
    let (dir, runner, program) =
        with_script("agent.sh", r#"cat > request.json; printf '{"result": "hello from sh", "tokens_used": 7}'"#);
    let mut request = with_timeout("Hi there", 10);
    request.session_id = Some("sess_1".into());
    let output = runner.run(&program, &request, &CancellationToken::new()).await.unwrap();
    assert_eq!(output.result, "hello from sh");
    assert_eq!(output.tokens_used, 7);
    // The program ran in the agents directory and got the request.
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("request.json")).unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({
            "query": "Hi there",
            "parameters": {"timeout_seconds": 10},
            "session_id": "sess_1",
            "stream": false,
            "agent": {"id": "agt_test", "name": "test", "config": {"k": "v"}},
        })
    );
}

#[tokio::test]
async fn a_bare_json_string_is_an_answer_and_tokens_default_to_words() {
    let (_dir, runner, program) = with_script("agent.sh", r#"echo '"three little words"'"#);
    let output = runner.run(&program, &RunRequest::new("q"), &CancellationToken::new()).await.unwrap();
    assert_eq!(output.result, "three little words");
    assert_eq!(output.tokens_used, 3);
}

#[tokio::test]
async fn a_failing_program_is_an_agent_error_with_its_stderr() {
    let (_dir, runner, program) = with_script("agent.sh", "echo 'something broke' >&2; exit 3");
    let error = runner.run(&program, &RunRequest::new("q"), &CancellationToken::new()).await.unwrap_err();
    assert_eq!(error.code(), "AGENT_ERROR");
    assert_eq!(error.to_string(), "The agent's program exited with status 3.");
    let details = error.details("");
    assert_eq!(details["reason"], "exit_status");
    assert_eq!(details["exit_status"], 3);
    assert_eq!(details["stderr"], "something broke");
}

#[tokio::test]
async fn garbage_output_is_an_agent_error() {
    for (script, reason) in [
        ("echo 'this is not json'", "invalid_output"),
        ("echo '{\"answer\": 1}'", "invalid_output"),
        ("echo '{\"result\": \"x\", \"tokens_used\": -1}'", "invalid_output"),
        ("true", "invalid_output"),
        ("head -c 5000 /dev/zero | tr '\\0' 'a'", "output_too_large"),
    ] {
        let (_dir, runner, program) = with_script("agent.sh", script);
        let runner = runner.with_limits(Limits { max_output_bytes: 1000, max_stderr_bytes: 100 });
        let error = runner.run(&program, &RunRequest::new("q"), &CancellationToken::new()).await.unwrap_err();
        assert_eq!(agent_reason(&error), reason, "{script}: {error}");
    }
}

#[tokio::test]
async fn a_program_past_its_timeout_is_killed_with_its_children() {
    let (dir, runner, program) = with_script("agent.sh", "sleep 60 & echo $! > child.pid; wait");
    let started = Instant::now();
    let error = runner.run(&program, &with_timeout("q", 1), &CancellationToken::new()).await.unwrap_err();
    assert_eq!(error, RunError::Timeout { seconds: 1 });
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(dir.path().join("child.pid")).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(pid) {
        assert!(Instant::now() < deadline, "the program's child {pid} survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cancelling_kills_the_program() {
    let (dir, runner, program) = with_script("agent.sh", "echo $$ > self.pid; sleep 60");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let pid_file = dir.path().join("self.pid");
    let watcher = tokio::spawn(async move {
        while !pid_file.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.cancel();
    });
    let error = runner.run(&program, &RunRequest::new("q"), &cancel).await.unwrap_err();
    watcher.await.unwrap();
    assert_eq!(error, RunError::Cancelled);
    let pid: i32 = std::fs::read_to_string(dir.path().join("self.pid")).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(pid) {
        assert!(Instant::now() < deadline, "the program {pid} survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn streaming_reads_one_chunk_per_line() {
    let (_dir, runner, program) = with_script(
        "agent.sh",
        r#"read -r request
case "$request" in *'"stream":true'*) ;; *) exit 9 ;; esac
echo '{"text": "Hello"}'
echo
echo '" world"'
echo '{"text": "!", "tokens_used": 42}'"#,
    );
    let (chunks, output) = stream(&runner, &program, &RunRequest::new("q")).await;
    assert_eq!(chunks, ["Hello", " world", "!"]);
    let output = output.unwrap();
    assert_eq!(output.result, "Hello world!");
    assert_eq!(output.tokens_used, 42);
}

#[tokio::test]
async fn streaming_garbage_or_failure_after_chunks_is_an_error() {
    let (_dir, runner, program) = with_script("agent.sh", r#"echo '{"text": "ok"}'; echo 'oops'; sleep 60"#);
    let started = Instant::now();
    let (chunks, output) = stream(&runner, &program, &RunRequest::new("q")).await;
    assert_eq!(chunks, ["ok"]);
    assert_eq!(agent_reason(&output.unwrap_err()), "invalid_output");
    assert!(started.elapsed() < Duration::from_secs(10), "killed, not waited for");

    let (_dir, runner, program) = with_script("agent.sh", r#"echo '"partial"'; exit 1"#);
    let (chunks, output) = stream(&runner, &program, &RunRequest::new("q")).await;
    assert_eq!(chunks, ["partial"]);
    assert_eq!(agent_reason(&output.unwrap_err()), "exit_status");
}

#[tokio::test]
async fn an_unusable_entrypoint_is_an_agent_error() {
    let (_dir, runner, mut program) = with_script("agent.sh", "echo '\"x\"'");
    program.entrypoint = Some("missing.sh".into());
    let error = runner.run(&program, &RunRequest::new("q"), &CancellationToken::new()).await.unwrap_err();
    assert_eq!(agent_reason(&error), "not_found");
    assert!(!runner.is_available(&program));
    assert!(runner.is_available(&echo_program(json!({}))));
}

#[tokio::test]
async fn the_runner_keeps_serving_after_failures() {
    let (_dir, runner, program) = with_script("agent.sh", "exit 1");
    let runs = (0..8).map(|_| {
        let runner = runner.clone();
        let program = program.clone();
        async move { runner.run(&program, &RunRequest::new("q"), &CancellationToken::new()).await }
    });
    for result in futures::future::join_all(runs).await {
        assert_eq!(agent_reason(&result.unwrap_err()), "exit_status");
    }
    let echo =
        runner.run(&echo_program(json!({})), &RunRequest::new("still here"), &CancellationToken::new()).await.unwrap();
    assert_eq!(echo.result, "still here");
}
