//! Tests of the whole docs output.

use super::markdown::is_fence;
use super::overview::Topic;
use super::*;
use crate::ir::TypeKind;
use regex::Regex;

const SPEC: &str = include_str!("../../../../spec/openapi.yaml");

fn api() -> Api {
    crate::load(SPEC).expect("the spec loads")
}

fn pages(api: &Api) -> BTreeMap<String, String> {
    let files = crate::emit::emit(api, &crate::config::Names::resolve(&Default::default(), api)).expect("docs render");
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
            for (name, text) in pages(&api) {
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

#[test]
fn every_link_resolves() {
    let api = api();
    let pages = pages(&api);
    let link = Regex::new(r"\]\(([A-Za-z0-9_.-]*)(?:#([^)\s]+))?\)").unwrap();
    let mut checked = 0;
    for (page, text) in &pages {
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
    op.body.as_mut().unwrap().example = Some(serde_json::json!({"query": "it's"}));
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
    let mut api = api();
    api.description = None;
    let index = &pages(&api)["index.md"];
    for heading in Topic::ALL.map(Topic::heading) {
        assert!(index.contains(&format!("\n## {heading}\n")), "{heading}");
    }
    // The generated error table, with meanings from ErrorCode's description.
    assert!(index.contains("| `AGENT_TIMEOUT` | 500 | The agent's program exceeded its timeout and was stopped. |"));
    assert!(index.contains("\"pagination\""), "a list envelope example");
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
