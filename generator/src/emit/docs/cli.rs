//! The command-line form of each operation's example: the same request as
//! the curl example, sent by the generated command (`runagent agents
//! create ...`), with the key and base URL from the same variables.

use super::Ctx;
use super::curl::plain;
use crate::emit::cli::plan::kebab;
use crate::ir::{Encoding, Operation, ParamLocation};
use serde_json::Value;

/// A word for the shell: as it is when it is plain, else in single quotes.
fn word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '+' | ','));
    if plain { text.to_owned() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

/// The command line for `op` (`None` when the command line cannot send it).
pub(super) fn cli(cx: &Ctx<'_>, op: &Operation) -> Option<String> {
    let words = cx.cli_lines.get(&op.id)?;
    let value_of = |p: &crate::ir::Parameter| {
        p.example.clone().or_else(|| p.default.clone()).unwrap_or_else(|| cx.example(&p.shape, 0))
    };
    let mut parts = vec![cx.names.cli_binary.clone()];
    let (words, stream) = match words.strip_suffix(" --stream") {
        Some(words) => (words, true),
        None => (words.as_str(), false),
    };
    parts.push(words.to_owned());
    // A stream folded into another command takes that command's hints.
    let hints = match stream {
        true => cx
            .cli_lines
            .iter()
            .find(|(_, w)| w.as_str() == words)
            .and_then(|(id, _)| cx.api.operations.iter().find(|o| o.id == *id))
            .map_or(&op.cli_hints, |main| &main.cli_hints),
        false => &op.cli_hints,
    };
    for p in op.params_in(ParamLocation::Path) {
        parts.push(word(&plain(&value_of(p))));
    }
    for p in op.parameters.iter().filter(|p| p.location != ParamLocation::Path && p.required) {
        let flag = kebab(&p.api_name);
        match value_of(p) {
            Value::Array(items) => parts.extend(items.iter().map(|v| format!("--{flag} {}", word(&plain(v))))),
            v => parts.push(format!("--{flag} {}", word(&plain(&v)))),
        }
    }
    if let Some(body) = &op.body {
        let json = body
            .contents
            .iter()
            .find(|c| c.encoding == Encoding::Json)
            .or_else(|| body.contents.iter().find(|c| c.encoding == Encoding::Form));
        let raw = body.contents.iter().any(|c| matches!(c.encoding, Encoding::Text | Encoding::Binary));
        match json {
            Some(content) => {
                let mut example = content.example.clone().unwrap_or_else(|| cx.example(&content.shape, 0));
                let positional: Vec<String> = match hints.get("positional") {
                    Some(Value::Array(names)) => names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                };
                let file = hints.get("file").and_then(Value::as_str);
                if let Value::Object(map) = &mut example {
                    for name in &positional {
                        if let Some(value) = map.remove(name) {
                            parts.push(word(&plain(&value)));
                        }
                    }
                    if let Some(file) = file
                        && map.remove(file).is_some()
                    {
                        parts.push(format!("--file {file}.jsonl"));
                    }
                }
                // Plain fields read best as flags, unless a flag of that name
                // is taken (then the command line names it otherwise).
                if let Value::Object(map) = &mut example {
                    let taken = |flag: &str| {
                        crate::emit::cli::TAKEN_FLAGS.contains(&flag)
                            || op.parameters.iter().any(|p| kebab(&p.api_name) == flag)
                    };
                    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
                    let flags: Vec<String> = map
                        .iter()
                        .filter(|(k, v)| {
                            !taken(&kebab(k))
                                && (scalar(v) || matches!(v, Value::Array(items) if !items.is_empty() && items.iter().all(scalar)))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in flags {
                        let flag = kebab(&key);
                        match map.remove(&key) {
                            Some(Value::Array(items)) => {
                                parts.extend(items.iter().map(|v| format!("--{flag} {}", word(&plain(v)))))
                            }
                            Some(v) => parts.push(format!("--{flag} {}", word(&plain(&v)))),
                            None => {}
                        }
                    }
                }
                let empty = matches!(&example, Value::Object(map) if map.is_empty());
                if !empty && (body.required || !positional.is_empty() || content.example.is_some()) {
                    parts.push(format!("--body {}", word(&example.to_string())));
                }
            }
            None if raw && body.required => parts.push("--body @body".to_owned()),
            None if body.required => return None,
            None => {}
        }
    }
    if stream {
        parts.push("--stream".to_owned());
    }
    // An operation that starts long-running work is shown waiting for it,
    // as a person at a shell usually wants.
    // (Not one that may also answer at once, like an invocation that runs
    // in the background only when asked.)
    let plan = crate::emit::client::Plan::new(cx.api, cx.names);
    if matches!(plan.success_kind(op), crate::emit::client::Success::Single { handle: true, .. }) {
        parts.push("--wait".to_owned());
    }
    Some(parts.join(" "))
}
