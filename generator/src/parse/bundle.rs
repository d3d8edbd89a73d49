//! Multi-file specs: `$ref`s to other files (`./schemas/agent.yaml#/Agent`)
//! are resolved into one document before anything else reads it.
//!
//! The generator stays pure: the caller hands it every document by its path
//! (relative, `/`-separated), and [`referenced_files`] tells the caller which
//! files a document needs, so it can load the closure. The bundle is built
//! the way hand-split specs are meant:
//!
//! - a schema from another file becomes a named schema in
//!   `components/schemas` (named after the last segment of its pointer, or
//!   the file's stem; a clash gets a number), and every `$ref` to it points
//!   there, so recursive schemas across files still work;
//! - anything else (a path item, a parameter, a response, a request body,
//!   a header) is inlined where it was referenced.
//!
//! A [`SourceMap`] remembers where each moved part came from, so a
//! diagnostic about it names the file and the pointer inside that file.

use crate::diagnostics::{Diagnostic, Diagnostics, Pointer};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How many references may be inlined inside each other; deeper is a loop.
const MAX_INLINE_DEPTH: usize = 32;

/// Where parts of the bundled document came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap(Vec<(String, String, String)>);

impl SourceMap {
    /// Rewrites a diagnostic about the bundle into one about the file the
    /// part came from (the longest matching moved part wins).
    pub fn locate(&self, d: &mut Diagnostic) {
        let best = self
            .0
            .iter()
            .filter(|(bundled, _, _)| d.pointer == *bundled || d.pointer.starts_with(&format!("{bundled}/")))
            .max_by_key(|(bundled, _, _)| bundled.len());
        if let Some((bundled, file, original)) = best {
            let rest = &d.pointer[bundled.len()..];
            d.pointer = format!("{original}{rest}");
            d.file = Some(file.clone());
        }
    }
}

/// A `$ref` split into its file (empty for the same document) and pointer.
fn split_ref(reference: &str) -> (&str, &str) {
    match reference.split_once('#') {
        Some((file, pointer)) => (file, pointer),
        None => (reference, ""),
    }
}

/// The path of `target` relative to the folder of `from`, normalized;
/// `None` when it climbs out of the spec's folder or is absolute or remote.
pub fn resolve_path(from: &str, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// The other files a document's `$ref`s name, resolved against its path.
pub fn referenced_files(name: &str, doc: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    collect_refs(doc, &mut |r| {
        let (file, _) = split_ref(r);
        if !file.is_empty()
            && let Some(path) = resolve_path(name, file)
        {
            out.insert(path);
        }
    });
    out.into_iter().collect()
}

fn collect_refs(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                f(r);
            }
            for (k, v) in map {
                if !k.starts_with("x-") {
                    collect_refs(v, f);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, f)),
        _ => {}
    }
}

/// Follows an RFC 6901 pointer (without its `#`) into a value.
fn follow<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() || pointer == "/" {
        return Some(value);
    }
    value.pointer(pointer)
}

/// Bundles `root` (the document named `root_name`) with the other
/// documents (already read into JSON by the caller) into one document.
pub fn bundle(
    root_name: &str,
    mut root: Value,
    docs: &BTreeMap<String, Value>,
) -> Result<(Value, SourceMap), Diagnostics> {
    let mut b = Bundler {
        root_name,
        docs,
        names: BTreeMap::new(),
        taken: root
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        hoisted: Vec::new(),
        map: SourceMap::default(),
        errors: Vec::new(),
    };
    // A named schema of the root that is just a ref to another file
    // (`Agent: {$ref: ./schemas/agent.yaml}`) keeps its name: it is where
    // that schema goes, and every other ref to it points there.
    if let Some(schemas) = root.pointer("/components/schemas").and_then(Value::as_object) {
        for (name, schema) in schemas {
            if let Some(Value::String(r)) = schema.get("$ref")
                && let (file, pointer) = split_ref(r)
                && !file.is_empty()
                && let Some(path) = resolve_path(root_name, file)
                && path != root_name
            {
                b.names.entry((path, pointer.to_owned())).or_insert_with(|| name.clone());
            }
        }
    }
    b.walk(&mut root, root_name, &Pointer::root(), &Pointer::root(), false, 0);
    // Hoisted schemas may refer to more files: keep going until none is new.
    let mut done = 0;
    while done < b.hoisted.len() {
        let (name, file, pointer, mut value) = b.hoisted[done].clone();
        let at = Pointer::root().push("components").push("schemas").push(&name);
        let origin = pointer_from(&pointer);
        b.walk(&mut value, &file, &at, &origin, true, 0);
        b.hoisted[done].3 = value;
        done += 1;
    }
    if !b.errors.is_empty() {
        return Err(Diagnostics(b.errors));
    }
    if !b.hoisted.is_empty() {
        let schemas = root.as_object_mut().and_then(|r| {
            r.entry("components")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()?
                .entry("schemas")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
        });
        if let Some(schemas) = schemas {
            for (name, file, pointer, value) in b.hoisted {
                b.map.0.push((format!("#/components/schemas/{}", escape(&name)), file, format!("#{pointer}")));
                schemas.insert(name, value);
            }
        }
    }
    Ok((root, b.map))
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A pointer (`/a/b~1c`) as a [`Pointer`] (`#/a/b~1c`), segments unescaped
/// and escaped again.
fn pointer_from(pointer: &str) -> Pointer {
    let mut p = Pointer::root();
    for segment in pointer.split('/').skip(1) {
        p = p.push(segment.replace("~1", "/").replace("~0", "~"));
    }
    p
}

struct Bundler<'a> {
    root_name: &'a str,
    docs: &'a BTreeMap<String, Value>,
    /// (file, pointer) of each hoisted schema → its name.
    names: BTreeMap<(String, String), String>,
    /// Schema names in use.
    taken: BTreeSet<String>,
    /// Hoisted schemas: name, file, pointer, value.
    hoisted: Vec<(String, String, String, Value)>,
    map: SourceMap,
    errors: Vec<Diagnostic>,
}

/// Keys whose values are schemas.
const SCHEMA_KEYS: &[&str] = &["schema", "items", "not", "additionalProperties"];
/// Keys whose values are lists of schemas (inside a schema).
const SCHEMA_LIST_KEYS: &[&str] = &["allOf", "anyOf", "oneOf"];

impl Bundler<'_> {
    /// Rewrites the refs in `value`, which lives in `file` at `origin` and
    /// in the bundle at `at`.
    fn walk(&mut self, value: &mut Value, file: &str, at: &Pointer, origin: &Pointer, in_schema: bool, depth: usize) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref").cloned() {
                    self.reference(value, &r, file, at, origin, in_schema, depth);
                    return;
                }
                for (key, child) in map.iter_mut() {
                    // Values, not schemas: a `$ref` key in an example or a
                    // default is data. Outside schemas, `default` is a
                    // response and `examples` may hold refs.
                    let data = matches!(key.as_str(), "example" | "examples" | "default" | "enum" | "const");
                    if key.starts_with("x-") || (in_schema && data) || key == "example" {
                        continue;
                    }
                    let (child_at, child_origin) = (at.push(key), origin.push(key));
                    if SCHEMA_KEYS.contains(&key.as_str()) || (in_schema && SCHEMA_LIST_KEYS.contains(&key.as_str())) {
                        self.walk(child, file, &child_at, &child_origin, true, depth);
                    } else if (in_schema && key == "properties") || key == "schemas" {
                        if let Value::Object(entries) = child {
                            for (name, schema) in entries.iter_mut() {
                                self.walk(schema, file, &child_at.push(name), &child_origin.push(name), true, depth);
                            }
                        }
                    } else {
                        self.walk(child, file, &child_at, &child_origin, false, depth);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item, file, &at.push(i), &origin.push(i), in_schema, depth);
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reference(
        &mut self,
        value: &mut Value,
        reference: &str,
        file: &str,
        at: &Pointer,
        origin: &Pointer,
        in_schema: bool,
        depth: usize,
    ) {
        let (target_file, pointer) = split_ref(reference);
        let target = if target_file.is_empty() {
            file.to_owned()
        } else {
            match resolve_path(file, target_file) {
                Some(path) => path,
                None => {
                    self.error(file, origin.push("$ref"), format!("`{reference}` is outside the spec's folder, absolute or remote; only relative files are read"));
                    return;
                }
            }
        };
        // Refs into the root document stay (or become) local refs.
        if target == self.root_name {
            if !target_file.is_empty() {
                *value = serde_json::json!({ "$ref": format!("#{pointer}") });
            }
            return;
        }
        let Some(doc) = self.docs.get(&target) else {
            self.error(
                file,
                origin.push("$ref"),
                format!("`{target}` was not found (refs are resolved against the file that holds them)"),
            );
            return;
        };
        let Some(found) = follow(doc, pointer).cloned() else {
            self.error(file, origin.push("$ref"), format!("`{reference}` points at nothing in `{target}`"));
            return;
        };
        let component = at.as_str().strip_prefix("#/components/schemas/").filter(|rest| !rest.contains('/'));
        if in_schema
            && depth == 0
            && component.is_some_and(|c| {
                self.names.get(&(target.clone(), pointer.to_owned())).map(|n| escape(n)) == Some(c.to_owned())
            })
        {
            // The root's own entry for this schema: the content goes here.
            *value = found;
            self.map.0.push((at.to_string(), target.clone(), format!("#{pointer}")));
            self.walk(value, &target, at, &pointer_from(pointer), true, depth + 1);
            return;
        }
        if in_schema {
            let key = (target.clone(), pointer.to_owned());
            let name = match self.names.get(&key) {
                Some(name) => name.clone(),
                None => {
                    let name = self.name_for(&target, pointer);
                    self.names.insert(key, name.clone());
                    self.hoisted.push((name.clone(), target.clone(), pointer.to_owned(), found));
                    name
                }
            };
            *value = serde_json::json!({ "$ref": format!("#/components/schemas/{}", escape(&name)) });
            return;
        }
        if depth >= MAX_INLINE_DEPTH {
            self.error(
                file,
                origin.push("$ref"),
                format!("`{reference}` is part of a loop of references to other files"),
            );
            return;
        }
        *value = found;
        self.map.0.push((at.to_string(), target.clone(), format!("#{pointer}")));
        self.walk(value, &target, at, &pointer_from(pointer), false, depth + 1);
    }

    /// A schema name from the pointer's last segment or the file's stem.
    fn name_for(&mut self, file: &str, pointer: &str) -> String {
        let last =
            pointer.rsplit('/').next().filter(|s| !s.is_empty()).map(|s| s.replace("~1", "/").replace("~0", "~"));
        let stem = || {
            let base = file.rsplit('/').next().unwrap_or(file);
            base.split('.').next().unwrap_or(base).to_owned()
        };
        let base = last.unwrap_or_else(stem);
        let mut name = base.clone();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn error(&mut self, file: &str, at: Pointer, message: String) {
        let mut d = at.error(message);
        if file != self.root_name {
            d.file = Some(file.to_owned());
        }
        self.errors.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_referencing_file() {
        assert_eq!(resolve_path("openapi.yaml", "./schemas/a.yaml").as_deref(), Some("schemas/a.yaml"));
        assert_eq!(resolve_path("paths/agents.yaml", "../schemas/a.yaml").as_deref(), Some("schemas/a.yaml"));
        assert_eq!(resolve_path("openapi.yaml", "../secret.yaml"), None);
        assert_eq!(resolve_path("openapi.yaml", "https://example.com/a.yaml"), None);
    }
}
