//! Which command runs which operation: names people type, derived from the
//! spec's tags and operationIds, with `x-cli-*` hints where they need help.
//!
//! - A command lives in the group of its operation's first tag (`agents`)
//!   and is named after its operationId without the tag's word
//!   (`listAgents` is `agents list`). A group with one command becomes a
//!   command of its own (`getUsage` alone in `Usage` is `usage`).
//! - `x-cli-command: "agents deploy"` (group and name) or `"invoke"` (a
//!   top-level command) names it outright.
//! - `x-cli-positional: [query]` takes those body fields as positional
//!   arguments after the path parameters.
//! - `x-cli-file: queries` fills that body field (a list) from a JSON Lines
//!   file given with `--file`.
//! - `x-cli-stream-of: invokeAgent` on a streaming operation makes it the
//!   `--stream` form of that operation's command instead of a command of
//!   its own, when both take the same path parameters; otherwise the hint
//!   is ignored and the stream keeps its own command.

use crate::ir::{Api, Operation, ParamLocation};
use crate::naming::{Case, sanitize};
use std::collections::BTreeMap;

/// Command names the CLI uses itself, at the top level.
pub const RESERVED_COMMANDS: &[&str] = &["completions", "help"];

/// One command.
pub struct Command<'a> {
    /// The operation it sends.
    pub op: &'a Operation,
    /// Its group (kebab case), `None` at the top level.
    pub group: Option<String>,
    /// Its name (kebab case).
    pub name: String,
    /// Body fields (wire names) taken as positional arguments.
    pub positional: Vec<String>,
    /// A body field (wire name) read from a JSON Lines file.
    pub file_field: Option<String>,
    /// The streaming operation `--stream` sends instead.
    pub stream: Option<&'a Operation>,
}

/// A group of commands, or a lone command at the top level.
pub enum Entry<'a> {
    /// `name` and its commands, with the tag's description.
    Group { name: String, about: Option<String>, commands: Vec<Command<'a>> },
    /// A top-level command.
    Single(Command<'a>),
}

/// Kebab case for a command or flag name.
pub fn kebab(raw: &str) -> String {
    let snake = sanitize(raw, Case::Snake);
    snake.trim_matches('_').replace('_', "-")
}

fn hint_str<'o>(op: &'o Operation, key: &str) -> Option<&'o str> {
    op.cli_hints.get(key).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty())
}

fn hint_list(op: &Operation, key: &str) -> Vec<String> {
    match op.cli_hints.get(key) {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).map(str::to_owned).collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The operationId without the words of its tag (in the singular or the
/// plural), or whole when nothing would be left.
fn name_without_tag(op: &Operation, tag: &str) -> String {
    let tag_words: Vec<String> = kebab(tag).split('-').map(str::to_owned).collect();
    let words: Vec<&str> = op.name.split('_').filter(|w| !w.is_empty()).collect();
    let kept: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| {
            !tag_words
                .iter()
                .any(|t| t == w || *t == format!("{w}s") || *w == format!("{t}s") || *t == format!("{w}es"))
        })
        .collect();
    let kept = if kept.is_empty() { words } else { kept };
    kebab(&kept.join("_"))
}

fn path_params(op: &Operation) -> Vec<&str> {
    op.params_in(ParamLocation::Path).map(|p| p.name.as_str()).collect()
}

/// Every command of the API, grouped, in the order of the spec's tags and
/// operations.
pub fn plan(api: &Api) -> Vec<Entry<'_>> {
    // Streams folded into another operation's command.
    let mut folded: BTreeMap<&str, &Operation> = BTreeMap::new();
    for op in &api.operations {
        let Some(target) = hint_str(op, "stream-of") else { continue };
        let Some(main) = api.operations.iter().find(|o| o.id == target) else { continue };
        // The stream is sent with the main command's arguments, so it may
        // need nothing beyond them: the same path parameters, no other
        // required parameter, and the same kind of body (none, or one JSON
        // media type on both).
        let json_only = |o: &Operation| {
            o.body.as_ref().map(|b| b.contents.len() == 1 && b.primary().encoding == crate::ir::Encoding::Json)
        };
        let compatible = op.is_stream()
            && !main.is_stream()
            && path_params(op) == path_params(main)
            && op.parameters.iter().all(|p| p.location == ParamLocation::Path || !p.required)
            && json_only(op) == json_only(main)
            && json_only(op) != Some(false)
            && !folded.contains_key(main.id.as_str());
        if compatible {
            folded.insert(main.id.as_str(), op);
        }
    }
    let is_folded = |op: &Operation| folded.values().any(|f| f.id == op.id);

    let mut groups: Vec<(String, Option<String>, Vec<Command>)> = Vec::new();
    let mut top: Vec<Command> = Vec::new();
    for op in &api.operations {
        if is_folded(op) {
            continue;
        }
        let tag = op.tags.first();
        let (group, name) = match hint_str(op, "command") {
            Some(words) => {
                let words: Vec<String> = words.split_whitespace().map(kebab).collect();
                match words.as_slice() {
                    [name] => (None, name.clone()),
                    [group, rest @ ..] => (Some(group.clone()), rest.join("-")),
                    [] => (None, kebab(&op.name)),
                }
            }
            None => match tag {
                Some(tag) => (Some(kebab(tag)), name_without_tag(op, tag)),
                None => (None, kebab(&op.name)),
            },
        };
        let command = Command {
            op,
            group: group.clone(),
            name,
            positional: hint_list(op, "positional"),
            file_field: hint_str(op, "file").map(str::to_owned),
            stream: folded.get(op.id.as_str()).copied(),
        };
        match group {
            Some(g) => match groups.iter_mut().find(|(name, _, _)| *name == g) {
                Some((_, _, commands)) => commands.push(command),
                None => {
                    let about = api
                        .tags
                        .iter()
                        .find(|t| Some(kebab(&t.name)) == Some(g.clone()))
                        .and_then(|t| t.description.clone());
                    groups.push((g, about, vec![command]));
                }
            },
            None => top.push(command),
        }
    }

    // Names unique within each group, and at the top level (groups, lone
    // commands and the CLI's own commands together).
    let mut taken: Vec<String> = RESERVED_COMMANDS.iter().map(|s| (*s).to_owned()).collect();
    let mut entries = Vec::new();
    let unique = |name: &str, taken: &mut Vec<String>| {
        let mut candidate = name.to_owned();
        let mut n = 2;
        while taken.contains(&candidate) {
            candidate = format!("{name}-{n}");
            n += 1;
        }
        taken.push(candidate.clone());
        candidate
    };
    for (name, about, mut commands) in groups {
        if commands.len() == 1 {
            let mut command = commands.remove(0);
            command.name = unique(&name, &mut taken);
            command.group = None;
            entries.push(Entry::Single(command));
            continue;
        }
        let name = unique(&name, &mut taken);
        let mut inner: Vec<String> = vec!["help".to_owned()];
        for command in &mut commands {
            command.name = unique(&command.name, &mut inner);
            command.group = Some(name.clone());
        }
        entries.push(Entry::Group { name, about, commands });
    }
    for mut command in top {
        command.name = unique(&command.name, &mut taken);
        entries.push(Entry::Single(command));
    }
    entries
}

/// The command line that sends each operation (`agents list`), by
/// operationId, for the docs: the stream folded into another command is
/// that command with `--stream`.
pub fn command_lines(api: &Api) -> BTreeMap<String, String> {
    let mut lines = BTreeMap::new();
    for entry in plan(api) {
        let commands = match entry {
            Entry::Group { commands, .. } => commands,
            Entry::Single(command) => vec![command],
        };
        for c in commands {
            let words = match &c.group {
                Some(g) => format!("{g} {}", c.name),
                None => c.name.clone(),
            };
            if let Some(stream) = c.stream {
                lines.insert(stream.id.clone(), format!("{words} --stream"));
            }
            lines.insert(c.op.id.clone(), words);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(spec: &str) -> Vec<(String, String)> {
        let api = crate::load(spec).expect("the spec loads");
        command_lines(&api).into_iter().collect()
    }

    #[test]
    fn runagent_commands_read_as_the_issue_asks() {
        let got = lines(include_str!("../../../../spec/openapi.yaml"));
        let want = [
            ("batchInvoke", "batch"),
            ("cancelOperation", "operations cancel"),
            ("createAgent", "agents create"),
            ("deleteAgent", "agents delete"),
            ("deployAgent", "agents deploy"),
            ("getAgent", "agents get"),
            ("getAgentHealth", "agents health"),
            ("getAgentStatus", "agents status"),
            ("getHealth", "health"),
            ("getOperation", "operations get"),
            ("getUsage", "usage"),
            ("invokeAgent", "invoke"),
            ("listAgents", "agents list"),
            ("streamAgent", "invoke --stream"),
            ("streamAgentGet", "stream"),
            ("updateAgent", "agents update"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn names_come_from_tags_and_operation_ids_and_stay_unique() {
        let spec = r#"
openapi: 3.0.3
info: {title: Pets, version: '1'}
paths:
  /pets:
    get: {operationId: listPets, tags: [pets], responses: {'204': {description: ok}}}
    post: {operationId: pets, tags: [pets], responses: {'204': {description: ok}}}
  /pets/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get: {operationId: getPet, tags: [pets], responses: {'204': {description: ok}}}
    put:
      operationId: replacePet
      tags: [pets]
      x-cli-command: pets get
      responses: {'204': {description: ok}}
  /events:
    get:
      operationId: watch
      x-cli-stream-of: listPets
      responses:
        '200':
          description: events
          content: {text/event-stream: {schema: {type: object}}}
  /store:
    get: {operationId: getInventory, tags: [store], responses: {'204': {description: ok}}}
  /help:
    get: {operationId: help, responses: {'204': {description: ok}}}
"#;
        let got = lines(spec);
        let get = |id: &str| got.iter().find(|(i, _)| i == id).map(|(_, l)| l.as_str());
        assert_eq!(get("listPets"), Some("pets list"));
        // Nothing is left of `pets` without its tag: the whole name stays.
        assert_eq!(get("pets"), Some("pets pets"));
        assert_eq!(get("getPet"), Some("pets get"));
        assert_eq!(get("replacePet"), Some("pets get-2"));
        // The stream's path parameters match, so it folds into `pets list`.
        assert_eq!(get("watch"), Some("pets list --stream"));
        // A group of one is a command; the CLI's own `help` is taken.
        assert_eq!(get("getInventory"), Some("store"));
        assert_eq!(get("help"), Some("help-2"));
    }
}
