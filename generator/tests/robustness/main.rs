//! Robustness: whatever text the generator is given (a mutated copy of the
//! real spec or of a fixture spec, random YAML, corrupted bytes, a huge or a
//! deeply nested document) it answers with output or with diagnostics. It
//! never panics, never hangs, and every diagnostic has a message and a
//! pointer into the document.
//!
//! Each test below is one kind of mutation. Cases come from proptest with a
//! fixed seed, so every run sees the same documents; `RUNAGENT_FUZZ_CASES`
//! sets how many each test runs (6 by default, so that the plain
//! `cargo test` stays within seconds; `huge_documents` runs a quarter).
//!
//! CI runs a bounded campaign in the debug build, which `cargo test
//! --workspace` has already compiled (a release build of the generator's
//! dependencies would cost more than the whole budget), about two minutes
//! on two cores:
//!
//! ```text
//! RUNAGENT_FUZZ_CASES=400 cargo test -p runagent-codegen --test robustness -- --nocapture
//! ```
//!
//! A long run, in release (three to five times the cases per second), with
//! a seed of its own so that it explores documents CI does not; 20,000
//! cases a test take about half an hour on two cores, and the count scales
//! linearly:
//!
//! ```text
//! RUNAGENT_FUZZ_CASES=20000 RUNAGENT_FUZZ_SEED=1 cargo test -p runagent-codegen --release --test robustness -- --nocapture
//! ```
//!
//! `RUNAGENT_FUZZ_TIMEOUT_SECS` changes the per-case deadline (10 s). A
//! failing case's document is written to
//! `target/tmp/robustness/<test>.failure.yaml`, and the one being run to
//! `<test>.current.yaml` (what is left after a crash that aborts the
//! process, such as a stack overflow). Failures are not persisted by
//! proptest: a crash found here is fixed in the generator and kept as a
//! fixture under `tests/fixtures/broken/` or as a test in `regressions.rs`.

mod doc;
mod harness;
mod regressions;

use doc::{Format, Path, Step};
use harness::{cases, fuzz};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value, json};

/// Writes most mutated trees as YAML, some as JSON (which is YAML too).
fn format() -> impl Strategy<Value = Format> {
    prop::bool::weighted(0.2).prop_map(|json| if json { Format::Json } else { Format::Yaml })
}

/// The unmutated seeds generate: otherwise every mutation of them would
/// only test the path that reports the seed's own problem.
#[test]
fn every_seed_generates() {
    for seed in doc::seeds() {
        if let Err(e) = runagent_codegen::generate(&seed.text) {
            panic!("{} does not generate:\n{e}", seed.name);
        }
    }
}

// --- Deleting keys ---------------------------------------------------------

#[derive(Debug, Clone)]
struct DeleteKeys {
    seed: Index,
    keys: Vec<Index>,
    format: Format,
}

/// Any key of any mapping can go missing: required fields, whole sections,
/// the targets of `$ref`s.
#[test]
fn deleting_keys() {
    let plans = (any::<Index>(), prop::collection::vec(any::<Index>(), 1..=3), format())
        .prop_map(|(seed, keys, format)| DeleteKeys { seed, keys, format });
    fuzz("deleting_keys", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for pick in &plan.keys {
            let entries = doc::entries(&value);
            if entries.is_empty() {
                break;
            }
            let (path, key) = pick.get(&entries);
            if let Value::Object(map) = doc::node_mut(&mut value, path) {
                doc::remove_key(map, key);
            }
        }
        doc::render(&value, plan.format)
    });
}

// --- Changing the type of values -------------------------------------------

/// The six JSON kinds, in the order [`kind_of`] numbers them.
const KINDS: usize = 6;

fn kind_of(value: &Value) -> usize {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A value of the given kind, picked from values that tend to sit on edges:
/// empty, huge, reserved words, pointer-like, not-quite-numbers.
fn value_of_kind(kind: usize, variant: usize) -> Value {
    let strings: &[&str] = &[
        "",
        " ",
        "x",
        "3.0.3",
        "3.1.0",
        "string",
        "object",
        "array",
        "integer",
        "#/components/schemas/Agent",
        "#",
        "/",
        "/a/{id}",
        "{",
        "~1",
        "application/json",
        "text/event-stream",
        "default",
        "2XX",
        "type",
        "self",
        "ÿ名前\u{202e}",
        "a\nb",
        "null",
        "-1",
        ".inf",
    ];
    let numbers = [
        json!(0),
        json!(1),
        json!(-1),
        json!(200),
        json!(1.5),
        json!(-0.5),
        json!(1e300),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(4_294_967_296u64),
    ];
    let arrays = [json!([]), json!([null]), json!(["x"]), json!([1, "a", true]), json!([{}]), json!([[]])];
    let objects = [
        json!({}),
        json!({"x": null}),
        json!({"$ref": "#/components/schemas/Missing"}),
        json!({"type": "string"}),
        json!({"type": "object", "properties": {}}),
        json!({"x-extension": 1}),
        json!({"200": {"description": "ok"}}),
    ];
    match kind {
        0 => Value::Null,
        1 => Value::Bool(variant.is_multiple_of(2)),
        2 => numbers[variant % numbers.len()].clone(),
        3 => Value::from(strings[variant % strings.len()]),
        4 => arrays[variant % arrays.len()].clone(),
        _ => objects[variant % objects.len()].clone(),
    }
}

#[derive(Debug, Clone)]
struct ChangeType {
    node: Index,
    /// Added to the node's kind (mod 6), so the new kind always differs.
    kind_offset: usize,
    variant: usize,
}

#[derive(Debug, Clone)]
struct ChangeTypes {
    seed: Index,
    changes: Vec<ChangeType>,
    format: Format,
}

/// Any value can turn into a value of another kind: a string where a
/// mapping belongs, a list where a number belongs, `null` anywhere.
#[test]
fn changing_the_type_of_values() {
    let change = (any::<Index>(), 1..KINDS, 0..64usize).prop_map(|(node, kind_offset, variant)| ChangeType {
        node,
        kind_offset,
        variant,
    });
    let plans = (any::<Index>(), prop::collection::vec(change, 1..=3), format())
        .prop_map(|(seed, changes, format)| ChangeTypes { seed, changes, format });
    fuzz("changing_the_type_of_values", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for change in &plan.changes {
            let nodes = doc::nodes(&value);
            let node = doc::node_mut(&mut value, doc::pick(&change.node, &nodes));
            *node = value_of_kind((kind_of(node) + change.kind_offset) % KINDS, change.variant);
        }
        doc::render(&value, plan.format)
    });
}

// --- Breaking $refs --------------------------------------------------------

/// Every kind of component a `$ref` can name.
const COMPONENT_KINDS: &[&str] =
    &["schemas", "parameters", "responses", "requestBodies", "headers", "securitySchemes", "links", "examples"];

#[derive(Debug, Clone)]
enum RefBreak {
    /// Names a component that does not exist.
    Dangling,
    /// Names the component the `$ref` is written in.
    PointAtEnclosingComponent,
    /// The component the `$ref` names becomes a `$ref` to itself.
    TargetRefersToItself,
    /// The component the `$ref` names and another of its kind refer to each
    /// other.
    TwoComponentCycle(Index),
    /// Names a component of another kind.
    WrongKind(Index, Index),
    /// Names another document.
    Remote(usize),
    /// Is not a pointer into the components at all.
    Malformed(usize),
    /// Gets keys next to it, which OpenAPI 3.0 says to ignore.
    WithSiblings(usize),
    /// Any mapping of the document is replaced by a `$ref` to any
    /// component, so refs appear where none was and of any kind.
    ReplaceNodeWithRef { node: Index, kind: Index, name: Index },
}

#[derive(Debug, Clone)]
struct BreakRefs {
    seed: Index,
    breaks: Vec<(Index, RefBreak)>,
    format: Format,
}

fn ref_break() -> impl Strategy<Value = RefBreak> {
    prop_oneof![
        Just(RefBreak::Dangling),
        Just(RefBreak::PointAtEnclosingComponent),
        Just(RefBreak::TargetRefersToItself),
        any::<Index>().prop_map(RefBreak::TwoComponentCycle),
        (any::<Index>(), any::<Index>()).prop_map(|(k, n)| RefBreak::WrongKind(k, n)),
        (0..8usize).prop_map(RefBreak::Remote),
        (0..16usize).prop_map(RefBreak::Malformed),
        (0..8usize).prop_map(RefBreak::WithSiblings),
        (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(node, kind, name)| RefBreak::ReplaceNodeWithRef {
            node,
            kind,
            name
        }),
    ]
}

/// The `(kind, name)` a local component `$ref` names.
fn ref_target(reference: &str) -> Option<(String, String)> {
    let rest = reference.strip_prefix("#/components/")?;
    let (kind, name) = rest.split_once('/')?;
    Some((kind.to_owned(), name.replace("~1", "/").replace("~0", "~")))
}

/// Puts a component in place, creating `components` and its kind if needed.
fn set_component(value: &mut Value, kind: &str, name: &str, component: Value) {
    let Value::Object(root) = value else { return };
    let Value::Object(components) = root.entry("components").or_insert_with(|| json!({})) else { return };
    let Value::Object(of_kind) = components.entry(kind).or_insert_with(|| json!({})) else { return };
    of_kind.insert(name.to_owned(), component);
}

fn break_ref(value: &mut Value, pick: &Index, how: &RefBreak) {
    let refs: Vec<Path> = doc::nodes_where(value, |path, node| {
        node.is_string() && matches!(path.last(), Some(Step::Key(k)) if k == "$ref")
    });
    if let RefBreak::ReplaceNodeWithRef { node, kind, name } = how {
        let objects = doc::nodes_where(value, |path, node| node.is_object() && !path.is_empty());
        if objects.is_empty() {
            return;
        }
        let kind = *kind.get(COMPONENT_KINDS);
        let names = doc::component_names(value, kind);
        let name = if names.is_empty() { "Missing".to_owned() } else { name.get(&names).clone() };
        *doc::node_mut(value, doc::pick(node, &objects)) = json!({ "$ref": doc::component_ref(kind, &name) });
        return;
    }
    if refs.is_empty() {
        return;
    }
    let path = pick.get(&refs).clone();
    let current = doc::node_mut(value, &path).as_str().unwrap_or_default().to_owned();
    let target = ref_target(&current);
    let kind = target.as_ref().map_or("schemas".to_owned(), |(k, _)| k.clone());
    let new_ref = match how {
        RefBreak::Dangling => doc::component_ref(&kind, "DoesNotExist"),
        RefBreak::PointAtEnclosingComponent => match doc::enclosing_component(&path) {
            Some((k, n)) => doc::component_ref(&k, &n),
            // Outside the components, the place itself: not a component.
            None => {
                let parts: Vec<String> = path[..path.len() - 1]
                    .iter()
                    .map(|s| match s {
                        Step::Key(k) => doc::escape(k),
                        Step::Index(i) => i.to_string(),
                    })
                    .collect();
                format!("#/{}", parts.join("/"))
            }
        },
        RefBreak::TargetRefersToItself => {
            if let Some((k, n)) = &target {
                set_component(value, k, n, json!({ "$ref": current }));
            }
            return;
        }
        RefBreak::TwoComponentCycle(other) => {
            let Some((k, n)) = &target else { return };
            let names = doc::component_names(value, k);
            let other = if names.is_empty() { n.clone() } else { other.get(&names).clone() };
            set_component(value, k, n, json!({ "$ref": doc::component_ref(k, &other) }));
            set_component(value, k, &other, json!({ "$ref": doc::component_ref(k, n) }));
            return;
        }
        RefBreak::WrongKind(other_kind, name) => {
            let kinds: Vec<&str> = COMPONENT_KINDS.iter().copied().filter(|k| *k != kind).collect();
            let other_kind = *other_kind.get(&kinds);
            let names = doc::component_names(value, other_kind);
            let name = if names.is_empty() { "Agent".to_owned() } else { name.get(&names).clone() };
            doc::component_ref(other_kind, &name)
        }
        RefBreak::Remote(i) => {
            let remote = [
                format!("other.yaml{current}"),
                "other.yaml".to_owned(),
                format!("https://example.com/openapi.yaml{current}"),
                format!("//example.com/{current}"),
                "file:///dev/zero".to_owned(),
                format!("./{current}"),
                format!("#{current}"),
                format!("{current}#"),
            ];
            remote[i % remote.len()].clone()
        }
        RefBreak::Malformed(i) => {
            let malformed = [
                "",
                "#",
                "#/",
                "#//",
                "#/components",
                "#/components/schemas",
                "#/components/schemas/",
                "#/components/schemas/Agent/properties/id",
                "#/components/schemas/~",
                "#/components/schemas/~2",
                "#/components//Agent",
                "#/info",
                "#/paths/~1agents",
                "components/schemas/Agent",
                "#/components/schemas/%7BAgent%7D",
                "#/components/schemas/Agent#",
            ];
            malformed[i % malformed.len()].to_owned()
        }
        RefBreak::WithSiblings(i) => {
            let siblings = [
                ("type", json!("string")),
                ("nullable", json!(true)),
                ("description", json!("next to a $ref")),
                ("properties", json!({"x": {"type": "string"}})),
                ("allOf", json!([{"type": "string"}])),
                ("required", json!(true)),
                ("name", json!("q")),
                ("$ref ", json!("#/components/schemas/Missing")),
            ];
            let (key, sibling) = siblings[i % siblings.len()].clone();
            if let Value::Object(map) = doc::node_mut(value, &path[..path.len() - 1]) {
                map.insert(key.to_owned(), sibling);
            }
            return;
        }
        RefBreak::ReplaceNodeWithRef { .. } => unreachable!("handled above"),
    };
    *doc::node_mut(value, &path) = Value::from(new_ref);
}

/// `$ref`s that dangle, refer to themselves, loop, name the wrong kind of
/// component, another document, or nothing one can parse.
#[test]
fn breaking_refs() {
    let plans = (any::<Index>(), prop::collection::vec((any::<Index>(), ref_break()), 1..=3), format())
        .prop_map(|(seed, breaks, format)| BreakRefs { seed, breaks, format });
    fuzz("breaking_refs", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for (pick, how) in &plan.breaks {
            break_ref(&mut value, pick, how);
        }
        doc::render(&value, plan.format)
    });
}

// --- Duplicating and renaming operationIds ---------------------------------

#[derive(Debug, Clone)]
enum OperationIdChange {
    /// Takes the operationId of another (or the same) operation.
    CopyFrom(Index),
    /// Takes an id that is awkward as a Rust name.
    Rename(usize),
    /// Takes another operation's id, spelled so that it differs but
    /// sanitizes to the same Rust name.
    CollideAfterSanitizing(Index, usize),
    Remove,
}

#[derive(Debug, Clone)]
struct ChangeOperationIds {
    seed: Index,
    changes: Vec<(Index, OperationIdChange)>,
    format: Format,
}

fn awkward_operation_id(i: usize) -> String {
    let ids = [
        "",
        " ",
        "type",
        "self",
        "Self",
        "crate",
        "1st",
        "-",
        "a-b",
        "a.b",
        "ÿ",
        "名前",
        "send",
        "into_stream",
        "new",
        "client",
        "Client",
        "Error",
        "Result",
        "Option",
        "default",
        "r#type",
        "handle",
        "router",
        "_",
        "__",
    ];
    if i == ids.len() {
        return "x".repeat(300);
    }
    ids[i % ids.len()].to_owned()
}

/// The same name spelled differently: the generator's sanitizing maps all of
/// these to the same identifier.
fn respell(id: &str, how: usize) -> String {
    match how % 5 {
        0 => id.chars().fold(String::new(), |mut s, c| {
            if c.is_uppercase() {
                s.push('_');
            }
            s.extend(c.to_lowercase());
            s
        }),
        1 => id.to_uppercase(),
        2 => id.chars().map(|c| c.to_string()).collect::<Vec<_>>().join("-"),
        3 => format!(" {id} "),
        _ => format!("{id}!"),
    }
}

/// operationIds name methods, types and handlers, so duplicates, ids that
/// collide once sanitized, keywords and missing ids all reach the naming
/// code.
#[test]
fn duplicating_and_renaming_operation_ids() {
    let change = prop_oneof![
        any::<Index>().prop_map(OperationIdChange::CopyFrom),
        (0..27usize).prop_map(OperationIdChange::Rename),
        (any::<Index>(), 0..5usize).prop_map(|(o, h)| OperationIdChange::CollideAfterSanitizing(o, h)),
        Just(OperationIdChange::Remove),
    ];
    let plans = (any::<Index>(), prop::collection::vec((any::<Index>(), change), 1..=3), format())
        .prop_map(|(seed, changes, format)| ChangeOperationIds { seed, changes, format });
    fuzz("duplicating_and_renaming_operation_ids", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for (pick, change) in &plan.changes {
            let operations = doc::operations(&value);
            if operations.is_empty() {
                break;
            }
            let id_of = |value: &mut Value, path: &[Step]| {
                doc::node_mut(value, path).get("operationId").and_then(Value::as_str).unwrap_or("op").to_owned()
            };
            let new_id = match change {
                OperationIdChange::CopyFrom(other) => Some(id_of(&mut value, doc::pick(other, &operations))),
                OperationIdChange::Rename(i) => Some(awkward_operation_id(*i)),
                OperationIdChange::CollideAfterSanitizing(other, how) => {
                    Some(respell(&id_of(&mut value, doc::pick(other, &operations)), *how))
                }
                OperationIdChange::Remove => None,
            };
            if let Value::Object(op) = doc::node_mut(&mut value, doc::pick(pick, &operations)) {
                match new_id {
                    Some(id) => op.insert("operationId".into(), Value::from(id)),
                    None => op.shift_remove("operationId"),
                };
            }
        }
        doc::render(&value, plan.format)
    });
}

// --- Renaming keys ---------------------------------------------------------

fn awkward_key(i: usize) -> &'static str {
    const KEYS: &[&str] = &[
        "",
        "/",
        "//",
        "{",
        "}",
        "/a/{",
        "/a/{}",
        "/a/{id}/{id}",
        "/a/{id}{id}",
        "no-slash",
        "x-",
        "x-extension",
        "200",
        "2XX",
        "600",
        "099",
        "default",
        "$ref",
        "type",
        "get",
        "head",
        "ÿ",
        "a b",
        "~1",
        "application/xml",
        "application/problem+json",
        "text/event-stream",
        "*/*",
    ];
    KEYS[i % KEYS.len()]
}

#[derive(Debug, Clone)]
struct RenameKeys {
    seed: Index,
    renames: Vec<(Index, usize)>,
    format: Format,
}

/// Keys are names too: paths without a slash or with broken templates,
/// status codes that are not codes, media types nobody supports, a
/// property named `$ref`.
#[test]
fn renaming_keys() {
    let plans = (any::<Index>(), prop::collection::vec((any::<Index>(), 0..64usize), 1..=2), format())
        .prop_map(|(seed, renames, format)| RenameKeys { seed, renames, format });
    fuzz("renaming_keys", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for (pick, name) in &plan.renames {
            let entries = doc::entries(&value);
            if entries.is_empty() {
                break;
            }
            let (path, key) = pick.get(&entries);
            if let Value::Object(map) = doc::node_mut(&mut value, path) {
                doc::rename_key(map, key, awkward_key(*name));
            }
        }
        doc::render(&value, plan.format)
    });
}

// --- Setting schema keywords to edge values --------------------------------

/// Schema keywords and values for them that are valid OpenAPI but sit on
/// edges: defaults and examples of the wrong type or out of range, bounds
/// at the ends of the number line, patterns the regex crate refuses.
fn schema_keyword(keyword: usize, variant: usize) -> (&'static str, Value) {
    let pick = |values: Vec<Value>| values[variant % values.len()].clone();
    match keyword % 14 {
        0 => (
            "default",
            pick(vec![
                json!(0),
                json!(-1),
                json!(u64::MAX),
                json!(i64::MIN),
                json!(1e300),
                json!(-0.5),
                json!(""),
                json!("not-an-enum-value"),
                json!(null),
                json!(true),
                json!([1]),
                json!({"a": 1}),
            ]),
        ),
        1 => (
            "example",
            pick(vec![
                json!("\"#"),
                json!("*/"),
                json!({"a": [null, {"\"": "\\"}]}),
                json!(u64::MAX),
                json!(-1e300),
                json!(null),
                json!("\u{0}\r\n"),
            ]),
        ),
        2 => (
            "minimum",
            pick(vec![json!(i64::MIN), json!(i64::MAX), json!(u64::MAX), json!(-1e300), json!(0.1), json!(1e300)]),
        ),
        3 => (
            "maximum",
            pick(vec![json!(i64::MIN), json!(i64::MAX), json!(u64::MAX), json!(-1e300), json!(-0.1), json!(1e300)]),
        ),
        4 => ("exclusiveMinimum", json!(variant.is_multiple_of(2))),
        5 => ("exclusiveMaximum", json!(variant.is_multiple_of(2))),
        6 => ("minLength", pick(vec![json!(0), json!(u64::MAX), json!(10)])),
        7 => ("maxLength", pick(vec![json!(0), json!(u64::MAX), json!(1)])),
        8 => (
            "pattern",
            pick(vec![
                json!(""),
                json!("("),
                json!("\\"),
                json!("(?=x)"),
                json!("\\1"),
                json!("[[:alpha:]]"),
                json!("\\p{L}+"),
                json!("^\"#*/$"),
                json!("a{1000000}"),
            ]),
        ),
        9 => (
            "format",
            pick(vec![
                json!(""),
                json!("int32"),
                json!("int64"),
                json!("date-time"),
                json!("uuid"),
                json!("binary"),
                json!("unknown-format"),
            ]),
        ),
        10 => (
            "enum",
            pick(vec![
                json!([]),
                json!([null]),
                json!(["a", "a"]),
                json!(["", " ", "-"]),
                json!(["type", "Self", "1"]),
                json!([1, 2]),
                json!([true]),
            ]),
        ),
        11 => ("nullable", json!(variant.is_multiple_of(2))),
        12 => ("minItems", pick(vec![json!(0), json!(u64::MAX)])),
        _ => ("maxItems", pick(vec![json!(0), json!(u64::MAX)])),
    }
}

#[derive(Debug, Clone)]
struct SetKeywords {
    seed: Index,
    edits: Vec<(Index, usize, usize)>,
    format: Format,
}

/// Keywords the emitters turn into code (defaults, bounds, patterns,
/// enums) set to edge values on any schema of the seed.
#[test]
fn setting_schema_keywords() {
    let plans = (any::<Index>(), prop::collection::vec((any::<Index>(), 0..14usize, 0..16usize), 1..=3), format())
        .prop_map(|(seed, edits, format)| SetKeywords { seed, edits, format });
    fuzz("setting_schema_keywords", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for (pick, keyword, variant) in &plan.edits {
            // A schema is a mapping with a `type`, or any value of `properties`.
            let schemas = doc::nodes_where(&value, |path, node| {
                node.get("type").is_some_and(Value::is_string)
                    || matches!(path, [.., Step::Key(p), Step::Key(_)] if p == "properties")
            });
            if schemas.is_empty() {
                break;
            }
            let (key, new) = schema_keyword(*keyword, *variant);
            if let Value::Object(schema) = doc::node_mut(&mut value, doc::pick(pick, &schemas)) {
                schema.insert(key.to_owned(), new);
            }
        }
        doc::render(&value, plan.format)
    });
}

// --- Replacing strings -----------------------------------------------------

/// Text that is hard to carry into generated code and Markdown: quotes,
/// raw-string ends, comment ends, template and Markdown syntax, control
/// characters, right-to-left marks, astral characters.
const AWKWARD_STRINGS: &[&str] = &[
    "\"",
    "\\",
    "\"#",
    "\"##",
    "r#\"",
    "*/",
    "/*",
    "//",
    "///",
    "#[doc = \"x\"]",
    "{{ x }}",
    "{% if %}",
    "{{",
    "}}",
    "<!--",
    "-->",
    "<script>",
    "`",
    "```",
    "|",
    "\n\n# Heading\n",
    "\r\n",
    "\r",
    "\t",
    "\u{0}",
    "\u{7f}",
    "\u{202e}",
    "\u{feff}",
    "😀",
    "ÿ",
    "$",
    "${x}",
    "%s",
    "{}",
    "{0}",
    "'",
];

#[derive(Debug, Clone)]
struct ReplaceStrings {
    seed: Index,
    replacements: Vec<(Index, usize, bool)>,
    format: Format,
}

/// Any string value (a description, a title, a name, an enum value, an
/// example, a server URL) replaced by, or suffixed with, awkward text.
#[test]
fn replacing_strings() {
    let plans = (any::<Index>(), prop::collection::vec((any::<Index>(), 0..64usize, any::<bool>()), 1..=4), format())
        .prop_map(|(seed, replacements, format)| ReplaceStrings { seed, replacements, format });
    fuzz("replacing_strings", cases(), plans, |plan| {
        let mut value = doc::seed(&plan.seed).value.clone();
        for (pick, i, append) in &plan.replacements {
            let strings = doc::nodes_where(&value, |_, node| node.is_string());
            if strings.is_empty() {
                break;
            }
            let node = doc::node_mut(&mut value, doc::pick(pick, &strings));
            let awkward = AWKWARD_STRINGS[i % AWKWARD_STRINGS.len()];
            let new =
                if *append { format!("{}{awkward}", node.as_str().unwrap_or_default()) } else { awkward.to_owned() };
            *node = Value::from(new);
        }
        doc::render(&value, plan.format)
    });
}

// --- Random YAML text ------------------------------------------------------

/// Pieces of YAML syntax, so that random text hits the parser's corners
/// (anchors, tags, directives, block scalars) more often than random
/// characters would.
const YAML_TOKENS: &[&str] = &[
    "openapi: 3.0.3\n",
    "info: {title: t, version: '1'}\n",
    "paths:\n",
    "  /a:\n",
    "    get:\n",
    "      operationId: x\n",
    "      responses:\n",
    "        '200': {description: ok}\n",
    "components:\n",
    "  schemas:\n",
    "    A: {$ref: '#/components/schemas/A'}\n",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "!tag ",
    "!!map ",
    "<<: ",
    "? ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "#",
    "\n",
    "  ",
    "\t",
    "\\",
    "\u{feff}",
    "\0",
    "x",
    "1e9999",
    ".nan",
    "~",
];

#[derive(Debug, Clone)]
enum RandomText {
    /// Printable ASCII, optionally after a valid version line.
    Ascii(String),
    /// Any Unicode.
    Unicode(String),
    /// A sequence of YAML syntax pieces.
    Tokens(Vec<&'static str>),
}

/// Random text, from plain characters to soups of YAML syntax.
#[test]
fn random_yaml_text() {
    let plans = prop_oneof![
        "(openapi: 3\\.0\\.3\n)?[ -~\n\t]{0,400}".prop_map(RandomText::Ascii),
        "(?s).{0,200}".prop_map(RandomText::Unicode),
        prop::collection::vec(select(YAML_TOKENS), 0..120).prop_map(RandomText::Tokens),
    ];
    fuzz("random_yaml_text", cases(), plans, |plan| match plan {
        RandomText::Ascii(s) | RandomText::Unicode(s) => s.clone(),
        RandomText::Tokens(tokens) => tokens.concat(),
    });
}

// --- Random OpenAPI-shaped documents ---------------------------------------

/// Keys and strings of OpenAPI, so random trees look enough like a spec to
/// get past the first checks and into lowering.
const OPENAPI_WORDS: &[&str] = &[
    "paths",
    "/a",
    "/a/{id}",
    "id",
    "get",
    "post",
    "delete",
    "operationId",
    "parameters",
    "name",
    "in",
    "path",
    "query",
    "header",
    "required",
    "schema",
    "type",
    "string",
    "integer",
    "number",
    "boolean",
    "object",
    "array",
    "items",
    "properties",
    "additionalProperties",
    "enum",
    "nullable",
    "format",
    "int32",
    "date-time",
    "pattern",
    "minimum",
    "allOf",
    "oneOf",
    "anyOf",
    "discriminator",
    "requestBody",
    "responses",
    "200",
    "201",
    "default",
    "description",
    "content",
    "application/json",
    "text/event-stream",
    "x-sse-events",
    "headers",
    "links",
    "security",
    "components",
    "schemas",
    "A",
    "B",
    "$ref",
    "#/components/schemas/A",
    "#/components/schemas/B",
    "#/components/parameters/A",
    "#/components/responses/A",
];

fn openapi_shaped_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..300).prop_map(Value::from),
        select(OPENAPI_WORDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((select(OPENAPI_WORDS), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

#[derive(Debug, Clone)]
struct ShapedDocument {
    paths: Value,
    components: Value,
    format: Format,
}

/// Random trees built from OpenAPI's vocabulary under a valid header: most
/// are wrong in some deep place rather than at the top.
#[test]
fn random_openapi_shaped_documents() {
    let plans = (openapi_shaped_value(), openapi_shaped_value(), format())
        .prop_map(|(paths, components, format)| ShapedDocument { paths, components, format });
    fuzz("random_openapi_shaped_documents", cases(), plans, |plan| {
        let mut root = doc::skeleton();
        root.insert("paths".into(), plan.paths.clone());
        root.insert("components".into(), plan.components.clone());
        doc::render(&Value::Object(root), plan.format)
    });
}

// --- Corrupting bytes ------------------------------------------------------

#[derive(Debug, Clone)]
enum ByteEdit {
    FlipBit(u8),
    Set(u8),
    Insert(u8),
    Delete(usize),
    Duplicate(usize),
}

#[derive(Debug, Clone)]
struct CorruptBytes {
    seed: Index,
    edits: Vec<(Index, ByteEdit)>,
}

/// Bit flips, stray, missing and repeated bytes in the seed's text. The
/// generator takes `&str`, so invalid UTF-8 is replaced, as a caller reading
/// a file lossily would.
#[test]
fn corrupting_bytes() {
    let edit = prop_oneof![
        (0..8u8).prop_map(ByteEdit::FlipBit),
        any::<u8>().prop_map(ByteEdit::Set),
        any::<u8>().prop_map(ByteEdit::Insert),
        (1..32usize).prop_map(ByteEdit::Delete),
        (1..256usize).prop_map(ByteEdit::Duplicate),
    ];
    let plans = (any::<Index>(), prop::collection::vec((any::<Index>(), edit), 1..=8))
        .prop_map(|(seed, edits)| CorruptBytes { seed, edits });
    fuzz("corrupting_bytes", cases(), plans, |plan| {
        let mut bytes = doc::seed(&plan.seed).text.clone().into_bytes();
        for (at, edit) in &plan.edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match *edit {
                ByteEdit::FlipBit(bit) => bytes[i] ^= 1 << bit,
                ByteEdit::Set(b) => bytes[i] = b,
                ByteEdit::Insert(b) => bytes.insert(i, b),
                ByteEdit::Delete(n) => drop(bytes.drain(i..(i + n).min(bytes.len()))),
                ByteEdit::Duplicate(n) => {
                    let copy = bytes[i..(i + n).min(bytes.len())].to_vec();
                    bytes.splice(i..i, copy);
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    });
}

// --- Truncating ------------------------------------------------------------

#[derive(Debug, Clone)]
struct Truncate {
    seed: Index,
    at: Index,
    /// Cut at the end of a line rather than anywhere.
    at_line_end: bool,
}

/// A file cut short, as by an interrupted download or write.
#[test]
fn truncating() {
    let plans = (any::<Index>(), any::<Index>(), any::<bool>()).prop_map(|(seed, at, at_line_end)| Truncate {
        seed,
        at,
        at_line_end,
    });
    fuzz("truncating", cases(), plans, |plan| {
        let text = &doc::seed(&plan.seed).text;
        let mut cut = plan.at.index(text.len() + 1);
        if plan.at_line_end {
            cut = text[cut..].find('\n').map_or(text.len(), |i| cut + i + 1);
        }
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text[..cut].to_owned()
    });
}

// --- Huge documents --------------------------------------------------------

#[derive(Debug, Clone)]
enum Huge {
    /// Many operations and schemas, the schemas referring to one another.
    ManyPathsAndSchemas { paths: usize, schemas: usize, fields: usize, refs: usize },
    /// The real spec with every path repeated under new prefixes.
    RealSpecRepeated(usize),
    /// YAML aliases that expand exponentially ("billion laughs").
    AliasBomb { levels: usize, width: usize },
    /// One string value of the seed made very long.
    LongString { seed: Index, node: Index, len: usize, piece: usize },
    /// Thousands of schemas each referring to several others, and no
    /// operation: the generator stops after lowering, so the size tests the
    /// lowering's complexity without paying for the emitters.
    DenseReferences { schemas: usize, refs: usize },
    /// Many names that all sanitize to the same identifier.
    NamesThatSanitizeAlike { count: usize, place: NamePlace },
}

/// Where [`Huge::NamesThatSanitizeAlike`] puts its names.
#[derive(Debug, Clone, Copy)]
enum NamePlace {
    Properties,
    EnumValues,
    Schemas,
    OperationIds,
}

/// Distinct names made only of symbols, so all sanitize to `unnamed`.
fn symbol_name(i: usize) -> String {
    const SYMBOLS: [char; 10] = ['!', '@', '#', '$', '%', '^', '&', '*', '(', ')'];
    i.to_string().bytes().map(|d| SYMBOLS[usize::from(d - b'0')]).chain(['?']).collect()
}

fn names_that_sanitize_alike(count: usize, place: NamePlace) -> Value {
    let ok = |schema: Value| json!({"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}});
    let string = json!({"type": "string"});
    let mut root = doc::skeleton();
    let (paths, schemas) = match place {
        NamePlace::Properties => {
            let properties: Map<String, Value> = (0..count).map(|i| (symbol_name(i), string.clone())).collect();
            let a = json!({"type": "object", "properties": properties});
            (
                json!({"/a": {"get": {"operationId": "a", "responses": ok(json!({"$ref": "#/components/schemas/A"}))}}}),
                json!({"A": a}),
            )
        }
        NamePlace::EnumValues => {
            let values: Vec<String> = (0..count).map(symbol_name).collect();
            let e = json!({"type": "string", "enum": values});
            (
                json!({"/a": {"get": {"operationId": "a", "responses": ok(json!({"$ref": "#/components/schemas/E"}))}}}),
                json!({"E": e}),
            )
        }
        NamePlace::Schemas => {
            let schemas: Map<String, Value> =
                (0..count).map(|i| (symbol_name(i), json!({"type": "object", "properties": {"x": string}}))).collect();
            (json!({"/a": {"get": {"operationId": "a", "responses": ok(string.clone())}}}), Value::Object(schemas))
        }
        NamePlace::OperationIds => {
            let paths: Map<String, Value> = (0..count)
                .map(|i| {
                    (format!("/a{i}"), json!({"get": {"operationId": symbol_name(i), "responses": ok(string.clone())}}))
                })
                .collect();
            (Value::Object(paths), json!({}))
        }
    };
    root.insert("paths".into(), paths);
    root.insert("components".into(), json!({ "schemas": schemas }));
    Value::Object(root)
}

fn many_paths_and_schemas(paths: usize, schemas: usize, fields: usize, refs: usize) -> Value {
    let mut components = Map::new();
    for i in 0..schemas {
        let mut properties = Map::new();
        for k in 0..fields {
            let target = format!("#/components/schemas/S{}", (i * 7 + k * 13 + 1) % schemas);
            let property = if k < refs {
                if k % 2 == 0 { json!({"$ref": target}) } else { json!({"type": "array", "items": {"$ref": target}}) }
            } else {
                match k % 4 {
                    0 => json!({"type": "string"}),
                    1 => json!({"type": "integer", "format": "int32"}),
                    2 => json!({"type": "string", "enum": ["a", "b"]}),
                    _ => json!({"type": "object", "properties": {"x": {"type": "boolean"}}}),
                }
            };
            properties.insert(format!("f{k}"), property);
        }
        components.insert(format!("S{i}"), json!({"type": "object", "properties": properties}));
    }
    let mut path_items = Map::new();
    for i in 0..paths {
        let schema = json!({"$ref": format!("#/components/schemas/S{}", i % schemas)});
        let ok = json!({"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}});
        path_items.insert(
            format!("/r{i}/{{id}}"),
            json!({
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"operationId": format!("get{i}"), "responses": ok},
                "post": {
                    "operationId": format!("post{i}"),
                    "requestBody": {"content": {"application/json": {"schema": schema}}},
                    "responses": ok,
                },
            }),
        );
    }
    let mut root = doc::skeleton();
    root.insert("paths".into(), Value::Object(path_items));
    root.insert("components".into(), json!({ "schemas": components }));
    Value::Object(root)
}

fn real_spec_repeated(copies: usize) -> Value {
    let mut value = doc::seeds()[0].value.clone();
    let paths = value["paths"].as_object().cloned().unwrap_or_default();
    let mut repeated = Map::new();
    for copy in 0..copies {
        for (path, item) in &paths {
            let mut item = item.clone();
            for (_, op) in item.as_object_mut().into_iter().flatten() {
                if let Some(id) = op.get_mut("operationId") {
                    *id = Value::from(format!("{}Copy{copy}", id.as_str().unwrap_or("op")));
                }
            }
            repeated.insert(format!("/copy{copy}{path}"), item);
        }
    }
    value["paths"] = Value::Object(repeated);
    value
}

fn alias_bomb(levels: usize, width: usize) -> String {
    let mut text = String::from("openapi: 3.0.3\ninfo: {title: t, version: '1'}\nx-bomb:\n");
    text.push_str(&format!("  l0: &l0 [{}]\n", vec!["lol"; width].join(", ")));
    for level in 1..=levels {
        let previous = format!("*l{}", level - 1);
        text.push_str(&format!("  l{level}: &l{level} [{}]\n", vec![previous.as_str(); width].join(", ")));
    }
    text.push_str("paths: {}\n");
    text
}

/// Documents far bigger than the real spec: thousands of operations and
/// schemas, dense references between schemas, alias bombs, megabyte
/// strings. Sizes stay below [`harness::MAX_INPUT_BYTES`] so a case tests
/// the generator's complexity, not the machine's memory.
#[test]
fn huge_documents() {
    let plans = prop_oneof![
        (0..=120usize, 1..=200usize, 0..=12usize, 0..=6usize)
            .prop_map(|(paths, schemas, fields, refs)| { Huge::ManyPathsAndSchemas { paths, schemas, fields, refs } }),
        (1..=4usize).prop_map(Huge::RealSpecRepeated),
        (1..=12usize, 2..=10usize).prop_map(|(levels, width)| Huge::AliasBomb { levels, width }),
        (any::<Index>(), any::<Index>(), 1..=1_000_000usize, 0..4usize)
            .prop_map(|(seed, node, len, piece)| Huge::LongString { seed, node, len, piece }),
        (1..=3000usize, 1..=6usize).prop_map(|(schemas, refs)| Huge::DenseReferences { schemas, refs }),
        prop_oneof![
            (1..=6000usize, Just(NamePlace::Properties)),
            (1..=6000usize, Just(NamePlace::EnumValues)),
            (1..=500usize, Just(NamePlace::Schemas)),
            (1..=300usize, Just(NamePlace::OperationIds)),
        ]
        .prop_map(|(count, place)| Huge::NamesThatSanitizeAlike { count, place }),
    ];
    // A huge document costs as much as a dozen mutated ones; a quarter of
    // the cases keeps this test from setting the length of the whole run.
    fuzz("huge_documents", cases().div_ceil(4), plans, |plan| match plan {
        Huge::ManyPathsAndSchemas { paths, schemas, fields, refs } => {
            doc::render(&many_paths_and_schemas(*paths, *schemas, *fields, *refs), Format::Yaml)
        }
        Huge::RealSpecRepeated(copies) => doc::render(&real_spec_repeated(*copies), Format::Yaml),
        Huge::AliasBomb { levels, width } => alias_bomb(*levels, *width),
        Huge::LongString { seed, node, len, piece } => {
            let mut value = doc::seed(seed).value.clone();
            let strings = doc::nodes_where(&value, |_, n| n.is_string());
            let piece = ["a", "é", "{", " \n"][*piece];
            *doc::node_mut(&mut value, doc::pick(node, &strings)) = Value::from(piece.repeat(*len / piece.len()));
            doc::render(&value, Format::Yaml)
        }
        Huge::DenseReferences { schemas, refs } => {
            doc::render(&many_paths_and_schemas(0, *schemas, *refs, *refs), Format::Json)
        }
        Huge::NamesThatSanitizeAlike { count, place } => {
            doc::render(&names_that_sanitize_alike(*count, *place), Format::Json)
        }
    });
}

// --- Deeply nested documents -----------------------------------------------

/// One level of schema nesting.
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Property,
    Items,
    AllOf,
    AdditionalProperties,
}

fn wrap(inner: Value, how: Wrap) -> Value {
    match how {
        Wrap::Property => json!({"type": "object", "properties": {"x": inner}}),
        Wrap::Items => json!({"type": "array", "items": inner}),
        Wrap::AllOf => json!({"allOf": [inner]}),
        Wrap::AdditionalProperties => json!({"type": "object", "additionalProperties": inner}),
    }
}

/// Where a nested schema is used.
#[derive(Debug, Clone, Copy)]
enum Place {
    Component,
    ResponseBody,
    QueryParameter,
}

#[derive(Debug, Clone, Copy)]
enum YamlNesting {
    FlowSequences,
    FlowMappings,
    BlockMappings,
    BlockSequences,
}

#[derive(Debug, Clone)]
enum Deep {
    /// A schema nested through properties, items, allOf and
    /// additionalProperties.
    Schema(Vec<Wrap>, Place),
    /// Plain YAML nested under an extension key.
    Yaml(YamlNesting, usize),
    /// A chain of components of one kind, each a `$ref` to the next; closed
    /// into a loop or ended by a real component.
    RefChain { kind: usize, len: usize, closed: bool },
    /// A chain of object schemas, each with a property of the next.
    StructChain { len: usize, closed: bool },
}

fn one_operation(operation: Value) -> Value {
    let mut root = doc::skeleton();
    root.insert("paths".into(), json!({ "/deep": { "get": operation } }));
    Value::Object(root)
}

fn nested_schema_document(wraps: &[Wrap], place: Place) -> Value {
    let schema = wraps.iter().rev().fold(json!({"type": "string"}), |inner, how| wrap(inner, *how));
    let ok_with =
        |schema: Value| json!({"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}});
    match place {
        Place::Component => {
            let mut value = one_operation(json!({
                "operationId": "deep",
                "responses": ok_with(json!({"$ref": "#/components/schemas/Deep"})),
            }));
            value["components"] = json!({ "schemas": { "Deep": schema } });
            value
        }
        Place::ResponseBody => one_operation(json!({"operationId": "deep", "responses": ok_with(schema)})),
        Place::QueryParameter => one_operation(json!({
            "operationId": "deep",
            "parameters": [{"name": "q", "in": "query", "schema": schema}],
            "responses": {"204": {"description": "none"}},
        })),
    }
}

fn nested_yaml(how: YamlNesting, depth: usize) -> String {
    let nest = match how {
        YamlNesting::FlowSequences => format!("{}x{}", "[".repeat(depth), "]".repeat(depth)),
        YamlNesting::FlowMappings => format!("{}x{}", "{a: ".repeat(depth), "}".repeat(depth)),
        YamlNesting::BlockMappings => {
            (0..depth).map(|i| format!("\n{}a:", " ".repeat(i + 2))).collect::<String>() + " x"
        }
        YamlNesting::BlockSequences => format!("{}x", "- ".repeat(depth)),
    };
    format!(
        "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\nx-deep: {nest}\npaths:\n  /a:\n    get:\n      operationId: a\n      responses:\n        '204': {{description: none}}\n"
    )
}

fn ref_chain(kind: usize, len: usize, closed: bool) -> Value {
    let kinds = ["schemas", "parameters", "responses", "requestBodies", "headers"];
    let kind = kinds[kind % kinds.len()];
    let end: Value = match kind {
        "schemas" => json!({"type": "string"}),
        "parameters" => json!({"name": "q", "in": "query", "schema": {"type": "string"}}),
        "responses" => json!({"description": "ok", "content": {"application/json": {"schema": {"type": "string"}}}}),
        "requestBodies" => json!({"content": {"application/json": {"schema": {"type": "string"}}}}),
        _ => json!({"schema": {"type": "string"}}),
    };
    let mut chain = Map::new();
    for i in 0..len {
        chain.insert(format!("C{i}"), json!({"$ref": format!("#/components/{kind}/C{}", i + 1)}));
    }
    chain.insert(format!("C{len}"), if closed { json!({"$ref": format!("#/components/{kind}/C0")}) } else { end });
    let first = json!({"$ref": format!("#/components/{kind}/C0")});
    let ok = json!({"description": "ok", "content": {"application/json": {"schema": {"type": "string"}}}});
    let operation = match kind {
        "schemas" => json!({"operationId": "deep", "responses": {"200": {
            "description": "ok", "content": {"application/json": {"schema": first}}}}}),
        "parameters" => json!({"operationId": "deep", "parameters": [first], "responses": {"200": ok}}),
        "responses" => json!({"operationId": "deep", "responses": {"200": first}}),
        "requestBodies" => json!({"operationId": "deep", "requestBody": first, "responses": {"200": ok}}),
        _ => json!({"operationId": "deep", "responses": {"200": {
            "description": "ok", "headers": {"X-Deep": first},
            "content": {"application/json": {"schema": {"type": "string"}}}}}}),
    };
    let mut value = one_operation(operation);
    if kind == "requestBodies" {
        // Only GET is made by `one_operation`, and GET may not have a body.
        let get = value["paths"]["/deep"].as_object_mut().unwrap().shift_remove("get").unwrap();
        value["paths"]["/deep"]["post"] = get;
    }
    value["components"] = json!({ kind: chain });
    value
}

fn struct_chain(len: usize, closed: bool) -> Value {
    let mut schemas = Map::new();
    for i in 0..len {
        let next =
            if i + 1 < len || closed { format!("#/components/schemas/S{}", (i + 1) % len) } else { String::new() };
        let property = if next.is_empty() { json!({"type": "string"}) } else { json!({"$ref": next}) };
        schemas.insert(format!("S{i}"), json!({"type": "object", "properties": {"next": property}}));
    }
    let mut value = one_operation(json!({"operationId": "deep", "responses": {"200": {
        "description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}}}));
    value["components"] = json!({ "schemas": schemas });
    value
}

/// Nesting well past what real specs do: deep schemas, deep plain YAML,
/// long `$ref` chains and long chains of structs, each below and above the
/// generator's own limits.
#[test]
fn deeply_nested_documents() {
    let wrap =
        prop_oneof![Just(Wrap::Property), Just(Wrap::Items), Just(Wrap::AllOf), Just(Wrap::AdditionalProperties)];
    let place = prop_oneof![Just(Place::Component), Just(Place::ResponseBody), Just(Place::QueryParameter)];
    let yaml = prop_oneof![
        Just(YamlNesting::FlowSequences),
        Just(YamlNesting::FlowMappings),
        Just(YamlNesting::BlockMappings),
        Just(YamlNesting::BlockSequences),
    ];
    let plans = prop_oneof![
        (prop::collection::vec(wrap, 1..160), place).prop_map(|(wraps, place)| Deep::Schema(wraps, place)),
        (yaml, prop_oneof![1..200usize, 200..1500usize]).prop_map(|(how, depth)| Deep::Yaml(how, depth)),
        (0..5usize, prop_oneof![1..300usize, 300..4000usize], any::<bool>())
            .prop_map(|(kind, len, closed)| Deep::RefChain { kind, len, closed }),
        (1..400usize, any::<bool>()).prop_map(|(len, closed)| Deep::StructChain { len, closed }),
    ];
    fuzz("deeply_nested_documents", cases(), plans, |plan| match plan {
        Deep::Schema(wraps, place) => doc::render(&nested_schema_document(wraps, *place), Format::Yaml),
        Deep::Yaml(how, depth) => nested_yaml(*how, *depth),
        Deep::RefChain { kind, len, closed } => doc::render(&ref_chain(*kind, *len, *closed), Format::Yaml),
        Deep::StructChain { len, closed } => doc::render(&struct_chain(*len, *closed), Format::Yaml),
    });
}
