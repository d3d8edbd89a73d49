//! The documents mutated (the real spec and the fixture specs) and the
//! small tree operations the mutations are made of.

use proptest::sample::Index;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

/// One document to start from: its file name, its text and its tree.
pub struct Seed {
    pub name: String,
    pub text: String,
    pub value: Value,
}

/// `spec/openapi.yaml` followed by `tests/fixtures/*.yaml`, read once.
pub fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut paths = vec![root.join("spec/openapi.yaml")];
        let mut fixtures: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures"))
            .expect("tests/fixtures exists")
            .map(|e| e.expect("read tests/fixtures").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        fixtures.sort();
        paths.extend(fixtures);
        // The public corpus: specs nobody here wrote. The largest (OpenAI's,
        // 1.4 MB) is left out: a mutation case of it takes seconds, and the
        // others already bring every construct it has.
        let mut corpus: Vec<PathBuf> = std::fs::read_dir(root.join("tests/corpus"))
            .expect("tests/corpus exists")
            .map(|e| e.expect("read tests/corpus").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 200_000))
            .collect();
        corpus.sort();
        paths.extend(corpus);
        paths
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("read a seed spec");
                let value = serde_yaml_ng::from_str(&text).expect("a seed spec is valid YAML");
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                Seed { name, text, value }
            })
            .collect()
    })
}

/// The seed an index picks.
pub fn seed(pick: &Index) -> &'static Seed {
    pick.get(seeds())
}

/// How a mutated tree is written out: the generator reads both.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Yaml,
    Json,
}

pub fn render(value: &Value, format: Format) -> String {
    match format {
        Format::Yaml => serde_yaml_ng::to_string(value).expect("a JSON value is always valid YAML"),
        Format::Json => serde_json::to_string_pretty(value).expect("a JSON value serializes"),
    }
}

/// One step from a node to a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

pub type Path = Vec<Step>;

/// The path an index picks from a list of paths.
pub fn pick<'p>(index: &Index, paths: &'p [Path]) -> &'p Path {
    index.get(paths)
}

/// Every node of the tree, root first, in document order.
pub fn nodes(value: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut |path, _| out.push(path.to_vec()));
    out
}

/// Every node that satisfies `keep`.
pub fn nodes_where(value: &Value, keep: impl Fn(&[Step], &Value) -> bool) -> Vec<Path> {
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut |path, node| {
        if keep(path, node) {
            out.push(path.to_vec())
        }
    });
    out
}

/// Every key of every mapping, as the path of the mapping and the key.
pub fn entries(value: &Value) -> Vec<(Path, String)> {
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut |path, node| {
        if let Value::Object(map) = node {
            out.extend(map.keys().map(|k| (path.to_vec(), k.clone())));
        }
    });
    out
}

fn walk(value: &Value, path: &mut Path, visit: &mut impl FnMut(&[Step], &Value)) {
    visit(path, value);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Step::Key(k.clone()));
                walk(v, path, visit);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(v, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The node at `path`, which must exist.
pub fn node_mut<'v>(value: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(value, |node, step| match (step, node) {
        (Step::Key(k), Value::Object(map)) => map.get_mut(k).expect("the path exists"),
        (Step::Index(i), Value::Array(items)) => &mut items[*i],
        _ => panic!("the path does not fit the tree"),
    })
}

/// Removes a key, keeping the order of the others.
pub fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.shift_remove(key);
}

/// Renames a key in place. A rename onto a sibling's name replaces the
/// sibling, as a YAML duplicate key would be rejected and a JSON one
/// overwritten.
pub fn rename_key(map: &mut Map<String, Value>, key: &str, new_key: &str) {
    let old = std::mem::take(map);
    for (k, v) in old {
        if k == key {
            map.insert(new_key.to_owned(), v);
        } else if k != new_key {
            map.insert(k, v);
        }
    }
}

/// The names of the components of one kind (`schemas`, `parameters`, ...).
pub fn component_names(value: &Value, kind: &str) -> Vec<String> {
    value
        .pointer(&format!("/components/{kind}"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The component a path lies in, as `(kind, name)`.
pub fn enclosing_component(path: &[Step]) -> Option<(String, String)> {
    match path {
        [Step::Key(c), Step::Key(kind), Step::Key(name), ..] if c == "components" => Some((kind.clone(), name.clone())),
        _ => None,
    }
}

/// A `$ref` to a component.
pub fn component_ref(kind: &str, name: &str) -> String {
    format!("#/components/{kind}/{}", escape(name))
}

/// A JSON pointer segment, escaped as RFC 6901 asks.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The operation objects: `paths/<path>/<method>`.
pub fn operations(value: &Value) -> Vec<Path> {
    const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    nodes_where(value, |path, node| {
        node.is_object()
            && matches!(path, [Step::Key(p), Step::Key(_), Step::Key(m)] if p == "paths" && METHODS.contains(&m.as_str()))
    })
}

/// A minimal valid document with no operations yet, to build synthetic
/// documents on.
pub fn skeleton() -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("openapi".into(), "3.0.3".into());
    doc.insert("info".into(), serde_json::json!({"title": "Synthetic", "version": "1"}));
    doc
}
