//! Tests of the whole docs output: RunAgent's docs keep every feature,
//! and the fixture specs' docs degrade (no section without content, no
//! dangling link, nothing about RunAgent).

use super::markdown::is_fence;
use super::overview::heading;
use super::*;
use crate::config::Config;
use crate::ir::ProseTopic;
use regex::Regex;

const SPEC: &str = include_str!("../../../../spec/openapi.yaml");

fn api() -> Api {
    crate::load(SPEC).expect("the spec loads")
}

/// The names `codegen.toml` gives RunAgent's output.
fn runagent_names(api: &Api) -> Names {
    Names::resolve(&Config { env_prefix: Some("RUNAGENT".into()), ..Config::default() }, api)
}

/// RunAgent's pages, named as `cargo xtask codegen` names them.
fn pages(api: &Api) -> BTreeMap<String, String> {
    pages_named(api, &runagent_names(api))
}

fn pages_named(api: &Api, names: &Names) -> BTreeMap<String, String> {
    let files = crate::emit::emit(api, names).expect("docs render");
    files
        .0
        .into_iter()
        .filter_map(|(path, file)| path.strip_prefix("docs/").map(|p| (p.to_owned(), file.contents)))
        .collect()
}

/// Writes the pages to /tmp/docs-out/ to read them:
/// `cargo test -p runagent-codegen -- --ignored write_docs_for_reading`.
#[test]
#[ignore]
fn write_docs_for_reading() {
    let out = std::path::Path::new("/tmp/docs-out");
    std::fs::create_dir_all(out).unwrap();
    for (name, text) in pages(&api()) {
        std::fs::write(out.join(name), text).unwrap();
    }
    // And the small fixture specs, each in its own folder.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    for entry in std::fs::read_dir(fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let dir = out.join(path.file_stem().unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            let api = crate::load(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for (name, text) in pages_named(&api, &Names::resolve(&Config::default(), &api)) {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
    }
}

fn anchors(text: &str) -> Vec<String> {
    let re = Regex::new(r#"<a id="([^"]+)"></a>"#).unwrap();
    re.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

/// The fenced ```bash blocks of a page.
fn bash_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == "```bash" => current = Some(Vec::new()),
            Some(lines) if line.trim() == "```" => {
                out.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    out
}

fn curl_of(pages: &BTreeMap<String, String>, op_id: &str) -> String {
    let (_, text) = pages
        .iter()
        .find(|(_, t)| t.contains(&format!("<a id=\"op-{op_id}\"></a>")))
        .expect("a page documents the operation");
    let start = text.find(&format!("<a id=\"op-{op_id}\"></a>")).unwrap();
    let rest = &text[start + 1..];
    let section = &rest[..rest.find("<a id=\"op-").unwrap_or(rest.len())];
    let blocks = bash_blocks(section);
    assert_eq!(blocks.len(), 1, "{op_id} has one curl example");
    blocks[0].clone()
}

#[test]
fn pages_are_the_index_one_per_tag_and_the_models() {
    let api = api();
    let pages = pages(&api);
    let mut expected: Vec<String> = vec!["index.md".into(), "models.md".into()];
    for tag in &api.tags {
        if api.operations.iter().any(|op| op.tags.contains(&tag.name)) {
            expected.push(format!("{}.md", tag.slug));
        }
    }
    expected.sort();
    assert_eq!(pages.keys().cloned().collect::<Vec<_>>(), expected);
    for text in pages.values() {
        assert!(text.starts_with("<!-- @generated"), "the header comes first");
    }
}

#[test]
fn every_operation_has_exactly_one_anchor() {
    let api = api();
    let pages = pages(&api);
    let all: Vec<String> = pages.values().flat_map(|t| anchors(t)).collect();
    for op in &api.operations {
        let anchor = format!("op-{}", op.id);
        assert_eq!(all.iter().filter(|a| **a == anchor).count(), 1, "{anchor}");
        let page = format!("{}.md", api.tags.iter().find(|t| Some(&t.name) == op.tags.first()).unwrap().slug);
        assert!(anchors(&pages[&page]).contains(&anchor), "{anchor} is on {page}");
    }
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "no anchor is defined twice");
}

#[test]
fn every_model_has_an_anchor() {
    let api = api();
    let pages = pages(&api);
    let models = anchors(&pages["models.md"]);
    for def in api.types.values() {
        let anchor = format!("model-{}", anchor_text(&def.api_name));
        assert!(models.contains(&anchor), "{anchor}");
    }
}

/// Checks that every relative link of the pages leads to a page and an
/// anchor on it; returns how many it checked.
fn check_links(pages: &BTreeMap<String, String>) -> usize {
    let link = Regex::new(r"\]\(([A-Za-z0-9_.-]*)(?:#([^)\s]+))?\)").unwrap();
    let mut checked = 0;
    for (page, text) in pages {
        // Links inside code blocks are not links.
        let mut prose = String::new();
        let mut in_fence = false;
        for line in text.lines() {
            if is_fence(line) {
                in_fence = !in_fence;
            } else if !in_fence {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        for c in link.captures_iter(&prose) {
            let file = if c[1].is_empty() { page.as_str() } else { &c[1] };
            if file.starts_with("http") {
                continue;
            }
            let target = pages.get(file).unwrap_or_else(|| panic!("{page}: link to missing page {file}"));
            if let Some(anchor) = c.get(2) {
                assert!(
                    anchors(target).iter().any(|a| a == anchor.as_str()),
                    "{page}: link to {file}#{} that does not exist",
                    anchor.as_str()
                );
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_link_resolves() {
    let api = api();
    let pages = pages(&api);
    let checked = check_links(&pages);
    assert!(checked > 100, "the pages link a lot ({checked})");
    // The kinds of links the brief names are among them.
    assert!(pages["index.md"].contains("](agents.md#op-listAgents)"));
    assert!(pages["agents.md"].contains("](models.md#model-agentlistresponse)"));
}

#[test]
fn curl_examples_are_single_runnable_commands() {
    let api = api();
    let pages = pages(&api);
    let health = curl_of(&pages, "getHealth");
    assert!(!health.contains("Authorization"), "{health}");
    assert_eq!(health, "curl -sS \"$RUNAGENT_BASE_URL/health\"");
    let list = curl_of(&pages, "listAgents");
    assert!(list.contains("-H \"Authorization: Bearer $RUNAGENT_API_KEY\""), "{list}");
    assert!(
        list.starts_with("curl -sS \"$RUNAGENT_BASE_URL/agents\""),
        "optional query parameters are left out: {list}"
    );
    let get = curl_of(&pages, "getAgent");
    assert!(get.contains("\"$RUNAGENT_BASE_URL/agents/agt_7Hq2mP9xKd\""), "{get}");
    let create = curl_of(&pages, "createAgent");
    assert!(create.contains("-X POST"), "{create}");
    assert!(create.contains("-H \"Content-Type: application/json\""), "{create}");
    assert!(create.contains("-d '{\"name\":\"echo-test\",\"framework\":\"echo\"}'"), "{create}");
    let stream = curl_of(&pages, "streamAgentGet");
    assert!(stream.contains(" -N"), "{stream}");
    assert!(stream.contains("-H \"Accept: text/event-stream\""), "{stream}");
    assert!(stream.contains("/stream?query=Hello\""), "required query parameters are in: {stream}");
    assert!(!stream.contains("session_id"), "{stream}");
    for op in &api.operations {
        let curl = curl_of(&pages, &op.id);
        let lines: Vec<&str> = curl.lines().collect();
        assert!(lines[0].starts_with("curl "), "{curl}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line.ends_with(" \\"), i + 1 < lines.len(), "continuations: {curl}");
        }
        assert_eq!(curl.contains("Authorization"), op.secured, "{curl}");
        assert!(!curl.contains('{') || curl.contains("-d '"), "path templates are filled in: {curl}");
    }
}

#[test]
fn single_quotes_in_bodies_are_escaped() {
    let mut api = api();
    let op = api.operations.iter_mut().find(|op| op.id == "invokeAgent").unwrap();
    op.body.as_mut().unwrap().contents[0].example = Some(serde_json::json!({"query": "it's"}));
    let pages = pages(&api);
    let curl = curl_of(&pages, "invokeAgent");
    assert!(curl.ends_with(r#"-d '{"query":"it'\''s"}'"#), "{curl}");
}

#[test]
fn deprecated_operations_show_their_sunset() {
    let api = api();
    let pages = pages(&api);
    let op = api.operations.iter().find(|op| op.deprecated).expect("the spec deprecates one operation");
    let sunset = op.sunset.as_deref().unwrap();
    let page = &pages["agents.md"];
    let at = page.find(&format!("<a id=\"op-{}\"></a>", op.id)).unwrap();
    let section = &page[at..at + 1200.min(page.len() - at)];
    assert!(section.contains("**Deprecated.**") && section.contains(sunset), "{section}");
    let index = &pages["index.md"];
    assert!(index.contains(&format!("`{sunset}`")), "the index lists the sunset date");
}

#[test]
fn index_covers_every_topic() {
    let api = api();
    let index = &pages(&api)["index.md"];
    for needle in [
        "## Base URLs",
        "https://api.run-agent.ai/v1",
        "## Authentication",
        "## Envelopes",
        "## Errors",
        "## Rate limits",
        "X-RateLimit-Remaining",
        "Retry-After",
        "## Pagination",
        "## Async operations",
        "## Streaming",
        "Last-Event-ID",
        "## Batch operations",
        "## Versioning and deprecation",
        "## Operations",
    ] {
        assert!(index.contains(needle), "{needle}");
    }
    // The description is rendered once, not repeated.
    assert_eq!(index.matches("## Errors").count(), 1);
    let TypeKind::Enum(codes) = &api.types["ErrorCode"].kind else { panic!() };
    for v in &codes.variants {
        assert!(index.contains(&format!("`{}`", v.api_name)), "{}", v.api_name);
    }
}

#[test]
fn index_without_a_description_still_covers_every_topic() {
    // The spec without `info.description`, so that neither the overview nor
    // the table of codes can come from it.
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(SPEC).unwrap();
    doc["info"].as_object_mut().unwrap().remove("description");
    let api = crate::load(&doc.to_string()).expect("the spec loads without its description");
    assert!(api.prose.sections.is_empty());
    let index = &pages(&api)["index.md"];
    for heading in ProseTopic::ALL.map(heading) {
        assert!(index.contains(&format!("\n## {heading}\n")), "{heading}");
    }
    // The generated error table, with meanings from ErrorCode's description.
    assert!(index.contains("| `AGENT_TIMEOUT` | 500 | The agent's program exceeded its timeout and was stopped. |"));
    assert!(index.contains("\"pagination\""), "a list envelope example");
    // What the conventions say, in the generated sections.
    for needle in [
        "JSON responses are wrapped in an envelope whose `status` says which kind it is, except those listed",
        "An error is answered with [`ErrorResponse`](models.md#model-errorresponse), whose `error.code` says what went wrong and `error.message` explains it.",
        "wait as long as `Retry-After` says",
        "A request that carries an `Idempotency-Key` header",
        "Poll it with [`getOperation`](operations.md#op-getOperation) until `status` is `succeeded`, `failed` or `cancelled`; cancel it with [`cancelOperation`](operations.md#op-cancelOperation).",
        "A stream ends with `done`, or with `error` when it fails.",
        "Batch operations: [`batchInvoke`](invocations.md#op-batchInvoke)",
        "The API is versioned in the URL path (`v1` in the base URL). Deprecated operations keep working",
    ] {
        assert!(index.contains(needle), "{needle}\n{index}");
    }
    check_links(&pages(&api));
}

#[test]
fn tables_are_well_formed() {
    let cells = |line: &str| {
        let unescaped = line.replace("\\|", "");
        unescaped.matches('|').count()
    };
    for (page, text) in pages(&api()) {
        let mut in_fence = false;
        let mut columns: Option<usize> = None;
        for line in text.lines() {
            if is_fence(line) {
                in_fence = !in_fence;
            }
            if in_fence || !line.starts_with('|') {
                columns = None;
                continue;
            }
            match columns {
                None => columns = Some(cells(line)),
                Some(n) => assert_eq!(cells(line), n, "{page}: {line}"),
            }
        }
    }
}

#[test]
fn stream_pages_show_events_and_a_raw_stream() {
    let pages = pages(&api());
    let page = &pages["invocations.md"];
    assert!(page.contains("| `chunk` | [`StreamChunk`](models.md#model-streamchunk) |"));
    assert!(page.contains("event: start\nid: str_9fK2pQ:0\ndata: {\"stream_id\":\"str_9fK2pQ\""), "{page}");
    assert!(page.contains("event: done\nid: str_9fK2pQ:2\ndata: {\"result\":"), "{page}");
    assert!(!page.contains("event: error\n"), "the success stream has no error event");
    assert!(page.contains(
        "ends with an `error` event (its `data` is a [`StreamError`](models.md#model-streamerror)) in place of `done`"
    ));
}

#[test]
fn models_show_constraints_and_uses() {
    let pages = pages(&api());
    let models = &pages["models.md"];
    assert!(models.contains("| `name` | string | yes | no | 1–64 chars, pattern `^[A-Za-z0-9][A-Za-z0-9_-]*$` |"));
    assert!(models.contains("items 1–100"));
    assert!(models.contains("the error responses of every operation"));
    assert!(models.contains("[`createAgent`](agents.md#op-createAgent) (request body)"));
}

#[test]
fn output_is_deterministic() {
    let api = api();
    assert_eq!(pages(&api), pages(&api));
}

#[test]
fn anchors_are_lower_case_words() {
    assert_eq!(anchor_text("Stream event.X"), "stream-event-x");
}

/// The `##` headings of a page, outside code, that have nothing under them
/// before the next heading of the same or a higher level.
fn empty_sections(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut in_fence = false;
    for (i, line) in lines.iter().enumerate() {
        if is_fence(line) {
            in_fence = !in_fence;
        }
        if in_fence || !line.starts_with("## ") {
            continue;
        }
        let content = lines[i + 1..]
            .iter()
            .take_while(|l| !(l.starts_with("## ") || l.starts_with("# ") || **l == "---"))
            .any(|l| !l.trim().is_empty());
        if !content {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn fixture_docs_degrade() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    for name in ["minimal", "naming", "nullable", "refs"] {
        let text = std::fs::read_to_string(fixtures.join(format!("{name}.yaml"))).unwrap();
        let api = crate::load(&text).unwrap();
        let names = Names::resolve(&Config::default(), &api);
        let pages = pages_named(&api, &names);
        check_links(&pages);
        let secured = api.operations.iter().any(|op| op.secured);
        for (page, text) in &pages {
            assert!(!text.to_lowercase().contains("runagent"), "{name}/{page} names RunAgent:\n{text}");
            assert_eq!(empty_sections(text), Vec::<String>::new(), "{name}/{page}:\n{text}");
            assert!(text.contains(&names.base_url_env()) || page != "index.md", "{name}/{page}");
            assert_eq!(text.contains(&names.api_key_env()), secured && page != "models.md", "{name}/{page}:\n{text}");
        }
        let index = &pages["index.md"];
        // None of these fixtures has an error envelope, long-running
        // operations, streams, paged lists or rate limits.
        for missing in [
            "## Envelopes",
            "## Errors",
            "## Rate limits",
            "## Pagination",
            "## Async",
            "## Streaming",
            "## Batch",
            "## Idempotent",
        ] {
            assert!(!index.contains(missing), "{name}: {missing}\n{index}");
        }
        assert_eq!(index.contains("## Authentication"), secured, "{name}");
    }
}

#[test]
fn names_come_from_the_config() {
    let api = api();
    let names = Names::resolve(&Config { env_prefix: Some("agents".into()), ..Config::default() }, &api);
    let pages = pages_named(&api, &names);
    for (page, text) in &pages {
        assert!(!text.contains("RUNAGENT_"), "{page}");
    }
    assert!(
        pages["index.md"]
            .contains("export AGENTS_BASE_URL=https://api.run-agent.ai/v1\nexport AGENTS_API_KEY=YOUR_API_KEY\n")
    );
    assert!(curl_of(&pages, "listAgents").contains("\"$AGENTS_BASE_URL/agents\""));
}

#[test]
fn a_public_api_needs_no_key() {
    let text = include_str!("../../../../tests/fixtures/minimal.yaml");
    let api = crate::load(text).unwrap();
    let index = &pages_named(&api, &Names::resolve(&Config::default(), &api))["index.md"];
    assert!(
        index.contains(
            "read the base URL from an environment variable:\n\n```sh\nexport MINIMAL_BASE_URL=http://localhost\n```"
        ),
        "{index}"
    );
    assert!(!index.contains("## Versioning"), "no version in a path, nothing deprecated: {index}");
}

/// A small API that follows some conventions differently from RunAgent: a
/// flat error object with a string code, a job polled by id, a stream that
/// ends without a failure event, one rate-limit header and no key.
const JOBS: &str = r#"
openapi: 3.0.3
info: {title: Jobs, version: '2'}
servers: [{url: 'https://jobs.example.com'}]
paths:
  /jobs:
    post:
      operationId: startJob
      responses:
        '202':
          description: Started.
          headers:
            X-RateLimit-Limit: {schema: {type: integer}}
          content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}
        '400':
          description: Bad.
          content: {application/json: {schema: {$ref: '#/components/schemas/Problem'}}}
  /jobs/{job_id}:
    get:
      operationId: getJob
      parameters: [{name: job_id, in: path, required: true, schema: {type: string}}]
      responses:
        '200': {description: The job., content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
        default: {description: Failed., content: {application/json: {schema: {$ref: '#/components/schemas/Problem'}}}}
  /jobs/{job_id}/log:
    get:
      operationId: tailLog
      parameters: [{name: job_id, in: path, required: true, schema: {type: string}}]
      responses:
        '200':
          description: The log.
          content:
            text/event-stream:
              schema: {$ref: '#/components/schemas/Frame'}
              x-sse-events:
                line: {$ref: '#/components/schemas/Line'}
                end: {$ref: '#/components/schemas/Line'}
components:
  schemas:
    Problem: {type: object, required: [code, message], properties: {code: {type: string}, message: {type: string}}}
    Job:
      type: object
      required: [job_id, status]
      properties: {job_id: {type: string}, status: {type: string, enum: [queued, done, failed]}}
    Frame: {type: object, required: [event, data], properties: {event: {type: string}, data: {type: string}}}
    Line: {type: object, required: [text], properties: {text: {type: string}}}
"#;

#[test]
fn another_apis_conventions_are_documented_as_it_follows_them() {
    let api = crate::load(JOBS).unwrap();
    let pages = pages_named(&api, &Names::resolve(&Config::default(), &api));
    check_links(&pages);
    for (page, text) in &pages {
        assert_eq!(empty_sections(text), Vec::<String>::new(), "{page}:\n{text}");
        assert!(!text.to_lowercase().contains("runagent"), "{page}");
        assert!(!text.contains("API_KEY") && !text.contains("Authentication"), "nothing is secured: {page}\n{text}");
    }
    let index = &pages["index.md"];
    for needle in [
        "## Errors\n\nAn error is answered with [`Problem`](models.md#model-problem), whose `code` says what went wrong and `message` explains it.\n",
        "Requests are rate limited. Responses carry the state of the current window in the headers below.\n",
        "Not rate limited: [`getJob`](other.md#op-getJob), [`tailLog`](other.md#op-tailLog).",
        "Poll it with [`getJob`](other.md#op-getJob) until `status` is `done` or `failed`.\n",
        "- [`startJob`](other.md#op-startJob), answering [`Job`](models.md#model-job)",
        "A stream ends with `end`.",
    ] {
        assert!(index.contains(needle), "{needle}\n{index}");
    }
    // No envelope discriminator, no codes, no key, no pages, no batches.
    for missing in [
        "## Envelopes",
        "| Code |",
        "The codes are",
        "## Idempotent",
        "## Pagination",
        "## Batch",
        "## Versioning",
        "Retry-After",
        "Last-Event-ID",
    ] {
        assert!(!index.contains(missing), "{missing}\n{index}");
    }
    let page = &pages["other.md"];
    assert!(page.contains("event: line\nid: 0\ndata: {\"text\":\"string\"}\n\nevent: end\nid: 1\n"), "{page}");
    assert!(!page.contains("A stream that fails"), "{page}");
}

#[test]
fn curl_examples_send_each_scheme_where_it_goes() {
    let text = include_str!("../../../../tests/fixtures/security.yaml");
    let api = crate::load(text).unwrap();
    let pages = pages_named(&api, &Names::resolve(&Config::default(), &api));
    let key = "$SECURITY_FIXTURE_API_KEY";
    let cases = [
        ("getBearer", format!("-H \"Authorization: Bearer {key}\"")),
        ("getOauth", format!("-H \"Authorization: Bearer {key}\"")),
        ("getBasic", format!("-u \"{key}\"")),
        ("getHeaderKey", format!("-H \"X-Api-Key: {key}\"")),
        ("getQueryKey", format!("/query-key?api_key={key}\"")),
        ("getCookieKey", format!("-b \"session={key}\"")),
        ("getEither", format!("-u \"{key}\"")),
    ];
    for (op, wanted) in cases {
        let curl = curl_of(&pages, op);
        assert!(curl.contains(&wanted), "{op}: {curl}");
    }
    let optional = curl_of(&pages, "getOptional");
    assert!(!optional.contains(key), "{optional}");
}
