//! The OpenAPI 3.1 front end: rewrites a 3.1 document into the 3.0 form
//! the rest of the pipeline reads, so both versions lower into the same IR
//! and no emitter knows which one it came from.
//!
//! 3.1 schemas are JSON Schema 2020-12. What that dialect says differently
//! from 3.0's schema objects is translated where 3.0 has a way to say it:
//!
//! | 3.1 | 3.0 |
//! |---|---|
//! | `type: [T, "null"]` | `type: T` + `nullable: true` |
//! | `anyOf`/`oneOf` of one schema and `{type: "null"}` | that schema + `nullable: true` |
//! | `const: v` | `enum: [v]` |
//! | `examples: [a, ...]` in a schema | `example: a` |
//! | `exclusiveMinimum: n` (a number) | `minimum: n` + `exclusiveMinimum: true` (same for maximum) |
//! | `$defs` inside a schema | hoisted to `components/schemas/<Owner>_<Name>`, refs rewritten |
//! | `$ref` with sibling keywords | the `$ref` (3.0 ignores siblings too) |
//! | `contentMediaType`/`contentEncoding` on a string | `format: binary` / `byte` |
//! | `prefixItems` | refused with a pointer: tuples have no 3.0 form |
//! | `webhooks` | carried as `x-webhooks`, lowered like callbacks (typed, documented; no route) |
//!
//! Pointers are unchanged by the rewrite (keys are only replaced in place),
//! except for hoisted `$defs`, whose diagnostics name the new place.

use crate::diagnostics::{Diagnostic, Diagnostics, Pointer};
use serde_json::{Map, Value};

/// The extension key 3.1 `webhooks` are carried under through openapiv3.
pub const WEBHOOKS_EXTENSION: &str = "x-webhooks";

/// Rewrites `doc` (a 3.1 document) into 3.0 form in place.
pub fn downgrade(doc: &mut Value, _warnings: &mut Vec<Diagnostic>) -> Result<(), Diagnostics> {
    let Some(root) = doc.as_object_mut() else { return Ok(()) };
    root.insert("openapi".into(), Value::String("3.0.3".into()));
    root.remove("jsonSchemaDialect");
    if let Some(info) = root.get_mut("info").and_then(Value::as_object_mut) {
        info.remove("summary");
        if let Some(license) = info.get_mut("license").and_then(Value::as_object_mut) {
            license.remove("identifier");
        }
    }
    // A 3.1 document may have no paths at all.
    root.entry("paths").or_insert_with(|| Value::Object(Map::new()));

    let mut errors = Vec::new();
    let mut hoisted: Vec<(String, Value)> = Vec::new();
    let mut moved: Vec<(String, String)> = Vec::new();
    walk(
        doc,
        &Pointer::root(),
        &mut Walk { errors: &mut errors, hoisted: &mut hoisted, moved: &mut moved, in_schema: false },
    );
    if !moved.is_empty()
        && let Some(root) = doc.as_object_mut()
    {
        // Refs anywhere into a hoisted `$defs` now point at its new place.
        rewrite_refs(root, &|r: &str| {
            moved.iter().find_map(|(from, to)| r.strip_prefix(from.as_str()).map(|name| format!("{to}{name}")))
        });
    }
    if !hoisted.is_empty() {
        let schemas = doc
            .as_object_mut()
            .and_then(|r| r.entry("components").or_insert_with(|| Value::Object(Map::new())).as_object_mut())
            .and_then(|c| c.entry("schemas").or_insert_with(|| Value::Object(Map::new())).as_object_mut());
        if let Some(schemas) = schemas {
            for (name, schema) in hoisted {
                schemas.insert(name, schema);
            }
        }
    }
    // openapiv3 reads 3.0, which has no webhooks: they travel as an
    // extension (after their schemas were rewritten above) and are lowered
    // like callbacks (documented and typed).
    if let Some(root) = doc.as_object_mut()
        && let Some(webhooks) = root.remove("webhooks")
    {
        root.insert(WEBHOOKS_EXTENSION.into(), webhooks);
    }
    if errors.is_empty() { Ok(()) } else { Err(Diagnostics(errors)) }
}

struct Walk<'a> {
    errors: &'a mut Vec<Diagnostic>,
    hoisted: &'a mut Vec<(String, Value)>,
    /// Ref prefixes of hoisted `$defs` and their replacements.
    moved: &'a mut Vec<(String, String)>,
    /// Whether the value being walked is a schema (so its keywords are
    /// JSON Schema's) rather than another OpenAPI object.
    in_schema: bool,
}

/// Keys whose values are schemas, in any OpenAPI object or schema.
const SCHEMA_KEYS: &[&str] = &["schema", "items", "not", "additionalProperties"];
/// Keys whose values are lists of schemas.
const SCHEMA_LIST_KEYS: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keys whose values map names to schemas.
const SCHEMA_MAP_KEYS: &[&str] = &["properties", "schemas", "patternProperties"];

fn walk(value: &mut Value, at: &Pointer, w: &mut Walk<'_>) {
    match value {
        Value::Object(map) => {
            if w.in_schema {
                rewrite_schema(map, at, w);
            }
            let was = w.in_schema;
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_at = at.push(&key);
                let Some(child) = map.get_mut(&key) else { continue };
                let is_schema_map = SCHEMA_MAP_KEYS.contains(&key.as_str())
                    // `properties` of a schema, `schemas` of components.
                    && (was || key == "schemas");
                let data = matches!(key.as_str(), "example" | "examples" | "default" | "enum" | "const");
                if key.starts_with("x-") || (was && data) || key == "example" {
                    continue;
                } else if SCHEMA_KEYS.contains(&key.as_str()) {
                    w.in_schema = true;
                    walk(child, &child_at, w);
                } else if SCHEMA_LIST_KEYS.contains(&key.as_str()) && was {
                    w.in_schema = true;
                    if let Value::Array(items) = child {
                        for (i, item) in items.iter_mut().enumerate() {
                            walk(item, &child_at.push(i), w);
                        }
                    }
                } else if is_schema_map {
                    if let Value::Object(entries) = child {
                        for (name, schema) in entries.iter_mut() {
                            w.in_schema = true;
                            walk(schema, &child_at.push(name), w);
                        }
                    }
                } else {
                    w.in_schema = false;
                    walk(child, &child_at, w);
                }
                w.in_schema = was;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &at.push(i), w);
            }
        }
        _ => {}
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null") && v.as_object().is_some_and(|m| m.len() == 1)
}

/// Rewrites one schema object's own keywords (its children are walked after).
fn rewrite_schema(map: &mut Map<String, Value>, at: &Pointer, w: &mut Walk<'_>) {
    // `$ref` siblings: 3.0 ignores them, and openapiv3 refuses them.
    if map.contains_key("$ref") {
        map.retain(|k, _| k == "$ref");
        return;
    }
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let null = types.iter().any(|t| t == "null");
        let others: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
        match others.as_slice() {
            [one] => {
                map.insert("type".into(), (*one).clone());
            }
            [] => {
                map.remove("type");
            }
            _ => w.errors.push(
                at.push("type")
                    .error("a `type` list with more than one non-null type has no OpenAPI 3.0 form; use `oneOf`"),
            ),
        }
        if null {
            map.insert("nullable".into(), Value::Bool(true));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = map.get(key)
            && list.len() == 2
            && list.iter().any(is_null_schema)
        {
            let other = list.iter().find(|v| !is_null_schema(v)).cloned().unwrap_or(Value::Null);
            map.remove(key);
            // `allOf` of one `$ref` keeps it a reference next to `nullable`.
            map.insert("allOf".into(), Value::Array(vec![other]));
            map.insert("nullable".into(), Value::Bool(true));
        }
    }
    if let Some(value) = map.remove("const") {
        map.insert("enum".into(), Value::Array(vec![value]));
    }
    if let Some(Value::Array(examples)) = map.get("examples").cloned() {
        map.remove("examples");
        if let Some(first) = examples.into_iter().next() {
            map.entry("example").or_insert(first);
        }
    }
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if let Some(n @ Value::Number(_)) = map.get(exclusive).cloned() {
            map.insert(bound.into(), n);
            map.insert(exclusive.into(), Value::Bool(true));
        }
    }
    if let Some(media) = map.remove("contentMediaType") {
        let encoding = map.remove("contentEncoding");
        let format = match encoding.as_ref().and_then(Value::as_str) {
            Some("base64") => "byte",
            _ => "binary",
        };
        if !media.is_null() {
            map.entry("format").or_insert_with(|| Value::String(format.into()));
        }
    }
    if map.contains_key("prefixItems") {
        w.errors.push(
            at.push("prefixItems").error("tuples (`prefixItems`) have no OpenAPI 3.0 form and are not supported"),
        );
    }
    if let Some(Value::Object(defs)) = map.remove("$defs") {
        let owner = at.as_str().rsplit('/').next().unwrap_or("Schema").to_owned();
        for (name, schema) in defs {
            let hoisted = format!("{owner}_{name}");
            w.hoisted.push((hoisted, schema));
        }
        w.moved.push((format!("{}/$defs/", at.as_str()), format!("#/components/schemas/{owner}_")));
    }
}

fn rewrite_refs(map: &mut Map<String, Value>, f: &dyn Fn(&str) -> Option<String>) {
    for (key, value) in map.iter_mut() {
        if key == "$ref"
            && let Some(r) = value.as_str()
            && let Some(new) = f(r)
        {
            *value = Value::String(new);
            continue;
        }
        match value {
            Value::Object(m) => rewrite_refs(m, f),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(m) = item {
                        rewrite_refs(m, f);
                    }
                }
            }
            _ => {}
        }
    }
}
