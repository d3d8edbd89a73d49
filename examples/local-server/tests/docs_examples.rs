//! Every curl example of the generated API reference (`generated/docs/*.md`)
//! runs against a real `runagent-local` and must succeed: curl exits 0, every
//! response status is 2xx, and a streaming example ends with its `done`
//! event. The examples are found by parsing the Markdown (fenced `bash` or
//! `sh` blocks that call curl), so that a newly documented operation is
//! covered without touching this test, and an operation documented without
//! an example fails it.
//!
//! The examples name made-up ids (`agt_7Hq2mP9xKd`, `op_123abc`). Before an
//! example runs, each id it names is replaced by a real one made for it: a
//! fresh, deployed `command` agent for an agent id, and a fresh, still
//! running asynchronous invocation for an operation id, so that every
//! operation's example (cancelling included) has the state it needs.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use runagent_client::Client;
use runagent_client::operations::InvokeAgentResponse;
use serde_json::{Value, json};
use support::{KEY, LocalServer};

/// Answers, streams, or hangs until cancelled when the query is "hang".
const AGENT_SCRIPT: &str = r#"#!/bin/sh
read -r request
case "$request" in
  *'"query":"hang"'*) exec sleep 30 ;;
  *'"stream":true'*) echo '{"text": "Hello "}'; echo '{"text": "there", "tokens_used": 2}' ;;
  *) echo '{"result": "Hello there", "tokens_used": 2}' ;;
esac
"#;

/// One curl example of the reference.
#[derive(Debug)]
struct Example {
    /// Where it is, for messages: `agents.md:139`.
    location: String,
    /// The operation whose section holds it.
    operation: String,
    script: String,
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../generated/docs")
}

/// The curl examples of one Markdown file, and the operations it documents
/// (from the `<a id="op-...">` anchors that open operation sections).
fn parse(name: &str, text: &str) -> (Vec<Example>, Vec<String>) {
    let (mut examples, mut operations) = (Vec::new(), Vec::new());
    let mut operation = None::<String>;
    let mut block: Option<(usize, bool, Vec<&str>)> = None;
    for (index, line) in text.lines().enumerate() {
        if let Some((start, shell, lines)) = &mut block {
            if line.trim_start().starts_with("```") {
                let script = lines.join("\n");
                if *shell && script.split_whitespace().any(|word| word == "curl") {
                    examples.push(Example {
                        location: format!("{name}:{}", *start + 1),
                        operation: operation.clone().unwrap_or_else(|| "(no operation)".into()),
                        script,
                    });
                }
                block = None;
            } else {
                lines.push(line);
            }
            continue;
        }
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            let language = fence.split_whitespace().next().unwrap_or_default();
            block = Some((index, matches!(language, "bash" | "sh" | "shell" | "console"), Vec::new()));
        } else if let Some(rest) = line.trim_start().strip_prefix("<a id=\"op-") {
            let id = rest.split('"').next().unwrap_or_default().to_owned();
            operations.push(id.clone());
            operation = Some(id);
        }
    }
    assert!(block.is_none(), "{name}: a code block is never closed");
    (examples, operations)
}

/// The made-up ids an example names: `agt_…` and `op_…` tokens.
fn example_ids(script: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let bytes = script.as_bytes();
    for prefix in ["agt_", "op_"] {
        let mut from = 0;
        while let Some(found) = script[from..].find(prefix) {
            let start = from + found;
            let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            let end = start
                + prefix.len()
                + script[start + prefix.len()..].bytes().take_while(u8::is_ascii_alphanumeric).count();
            if boundary && end > start + prefix.len() && !ids.contains(&script[start..end].to_owned()) {
                ids.push(script[start..end].to_owned());
            }
            from = end.max(start + 1);
        }
    }
    ids
}

/// Replaces whole id tokens only, so that one id that is the prefix of
/// another is not half-replaced.
fn substitute(script: &str, ids: &BTreeMap<String, String>) -> String {
    let mut out = script.to_owned();
    // Longest first, so that `op_1` never replaces the start of `op_12`.
    let mut ordered: Vec<_> = ids.iter().collect();
    ordered.sort_by_key(|(example, _)| std::cmp::Reverse(example.len()));
    for (example, real) in ordered {
        out = out.replace(example.as_str(), real);
    }
    out
}

struct Fixtures {
    client: Client,
    /// Operations started for examples, cancelled at the end so that no
    /// agent program outlives the test.
    operations: Vec<String>,
}

impl Fixtures {
    async fn agent(&self) -> String {
        let body = json!({"name": "docs-example", "framework": "command", "entrypoint": "agent.sh"});
        let agent = self.client.create_agent(serde_json::from_value(body).unwrap()).send().await.unwrap();
        let id = agent.into_body().data.id;
        self.client.deploy_agent(&id).send().await.unwrap().into_body().wait().await.unwrap();
        id
    }

    async fn running_operation(&mut self) -> String {
        let agent = self.agent().await;
        let request = serde_json::from_value(json!({"query": "hang", "async": true})).unwrap();
        let accepted = self.client.invoke_agent(&agent, request).send().await.unwrap().into_body();
        let InvokeAgentResponse::Accepted(handle) = accepted else { panic!("expected 202 Accepted") };
        self.operations.push(handle.id().to_owned());
        handle.id().to_owned()
    }

    /// A real id for each made-up one, by its prefix.
    async fn ids_for(&mut self, example: &Example) -> BTreeMap<String, String> {
        let mut ids = BTreeMap::new();
        for id in example_ids(&example.script) {
            let real = if id.starts_with("agt_") { self.agent().await } else { self.running_operation().await };
            ids.insert(id, real);
        }
        ids
    }
}

/// What running one example gave.
struct Run {
    exit: Option<i32>,
    statuses: Vec<u16>,
    stdout: String,
    stderr: String,
}

/// Runs an example with bash, as a reader would paste it, with `curl`
/// wrapped to report each status on stderr and to give up after 30 s (a
/// stream that never ends fails instead of hanging the test).
fn run(script: &str, base_url: &str) -> Run {
    let prelude = "set -eo pipefail\n\
        curl() { command curl --max-time 30 --write-out '%{stderr}RUNAGENT_HTTP_STATUS=%{http_code}\\n' \"$@\"; }\n";
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .env("RUNAGENT_BASE_URL", base_url)
        .env("RUNAGENT_API_KEY", KEY)
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let statuses = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("RUNAGENT_HTTP_STATUS="))
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    Run { exit: output.status.code(), statuses, stdout: String::from_utf8_lossy(&output.stdout).into_owned(), stderr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_example_of_the_docs_succeeds() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .expect("generated/docs exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let (mut examples, mut operations) = (Vec::new(), Vec::new());
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (found, documented) = parse(&name, &std::fs::read_to_string(path).unwrap());
        examples.extend(found);
        operations.extend(documented);
    }
    assert!(!operations.is_empty(), "no operation sections found in {}", docs_dir().display());
    let without: Vec<&String> = operations.iter().filter(|op| !examples.iter().any(|e| &e.operation == *op)).collect();
    assert!(without.is_empty(), "operations documented without a curl example: {without:?}");

    let server = LocalServer::start(AGENT_SCRIPT);
    let client = Client::builder().api_key(KEY).base_url(&server.base_url).build().unwrap();
    let mut fixtures = Fixtures { client, operations: Vec::new() };
    let started = Instant::now();
    let mut executed = 0;
    let mut failures = Vec::new();
    for example in &examples {
        let ids = fixtures.ids_for(example).await;
        let script = substitute(&example.script, &ids);
        let result = run(&script, &server.base_url);
        executed += 1;
        let streaming = script.contains("text/event-stream");
        let problem = if result.exit != Some(0) {
            Some(format!("curl exited with {:?}", result.exit))
        } else if result.statuses.is_empty() || result.statuses.iter().any(|s| !(200..300).contains(s)) {
            Some(format!("statuses {:?}", result.statuses))
        } else if streaming && !result.stdout.contains("event: done") {
            Some("the stream ended without its done event".to_owned())
        } else if !streaming && serde_json::from_str::<Value>(&result.stdout).is_err() {
            Some("the response is not JSON".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{} ({}): {problem}\n--- script\n{script}\n--- stdout\n{}\n--- stderr\n{}",
                example.location, example.operation, result.stdout, result.stderr
            ));
        }
    }
    for operation in &fixtures.operations {
        // Most are still running; the cancel example's is already cancelled.
        let _ = fixtures.client.cancel_operation(operation).send().await;
    }
    println!(
        "docs curl examples executed: {executed} of {} ({} operations, {} files) in {:.1?}",
        examples.len(),
        operations.len(),
        files.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{} of {executed} examples failed:\n\n{}", failures.len(), failures.join("\n\n"));
    assert_eq!(executed, examples.len(), "every example found was run");
}

#[test]
fn the_parser_finds_examples_and_their_operations() {
    let text = "<a id=\"op-getThing\"></a>\n## GET /thing\n\n```bash\ncurl -sS \"$RUNAGENT_BASE_URL/things/agt_1\" \\\n  -H x\n```\n\n```json\n{\"curl\": 1}\n```\n\n<a id=\"op-other\"></a>\n```sh\necho no\n```\n";
    let (examples, operations) = parse("t.md", text);
    assert_eq!(operations, ["getThing", "other"]);
    assert_eq!(examples.len(), 1);
    assert_eq!(examples[0].operation, "getThing");
    assert_eq!(examples[0].location, "t.md:4");
    assert_eq!(example_ids(&examples[0].script), ["agt_1"]);
    assert_eq!(example_ids("a/op_12/x op_1 stop_3 op_"), ["op_12", "op_1"]);
    let ids = BTreeMap::from([("op_1".to_owned(), "op_A".to_owned()), ("op_12".to_owned(), "op_B".to_owned())]);
    assert_eq!(substitute("op_12 op_1", &ids), "op_B op_A");
}
