//! Spec text to `openapiv3::OpenAPI`, with every failure a diagnostic.
//!
//! The text goes through a YAML parser into a `serde_json::Value` first
//! (JSON is YAML), so the document-level checks (empty input, Swagger 2.0,
//! OpenAPI 3.1) can point at the exact key before openapiv3 sees it, and so
//! openapiv3's own deserialization errors can be located with
//! serde_path_to_error.

mod bundle;
mod v31;
mod yaml;

pub use bundle::SourceMap;
use std::collections::BTreeMap;
pub use v31::WEBHOOKS_EXTENSION;

use crate::diagnostics::{Diagnostic, Diagnostics, Pointer};
use serde_json::Value;
use yaml::Node;

/// How deep a document may nest. Real specs stay far below; the limit keeps
/// adversarial input from overflowing the stack in the recursive steps.
const MAX_DEPTH: usize = 64;

/// Parses spec text into an OpenAPI document; what it had to adjust on the
/// way goes to `warnings`.
pub fn parse(text: &str, warnings: &mut Vec<Diagnostic>) -> Result<openapiv3::OpenAPI, Diagnostics> {
    let json = read(text, warnings)?;
    from_json(json, warnings)
}

/// Parses a spec split into files: `texts` maps each file's path (relative,
/// `/`-separated) to its text, and `root` names the one to start from.
/// Diagnostics about parts of other files are located in those files
/// through the returned map.
pub fn parse_documents(
    root: &str,
    texts: &BTreeMap<String, String>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(openapiv3::OpenAPI, SourceMap), Diagnostics> {
    let Some(root_text) = texts.get(root) else {
        return Err(Diagnostics::one("#", format!("the root document `{root}` was not given")));
    };
    let root_json = read(root_text, warnings)?;
    let mut others = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, text) in texts.iter().filter(|(name, _)| name.as_str() != root) {
        let mut found = Vec::new();
        match read(text, &mut found) {
            Ok(json) => {
                others.insert(name.clone(), json);
            }
            Err(e) => errors.extend(e.0.into_iter().map(|d| with_file(d, name))),
        }
        warnings.extend(found.into_iter().map(|d| with_file(d, name)));
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let (bundled, map) = bundle::bundle(root, root_json, &others)?;
    let mut found = Vec::new();
    let result = from_json(bundled, &mut found);
    let locate = |mut d: Diagnostic| {
        map.locate(&mut d);
        d
    };
    warnings.extend(found.into_iter().map(locate));
    match result {
        Ok(doc) => Ok((doc, map)),
        Err(e) => Err(Diagnostics(e.0.into_iter().map(locate).collect())),
    }
}

/// The other files a document refers to (paths relative to the spec's
/// folder), so a caller can load every file a split spec needs.
pub fn referenced_files(name: &str, text: &str) -> Result<Vec<String>, Diagnostics> {
    let json =
        read(text, &mut Vec::new()).map_err(|e| Diagnostics(e.0.into_iter().map(|d| with_file(d, name)).collect()))?;
    Ok(bundle::referenced_files(name, &json))
}

/// The webhooks of a 3.1 document (carried through openapiv3 as an
/// extension), read as path items by name.
pub fn webhooks(doc: &openapiv3::OpenAPI) -> Result<Vec<(String, openapiv3::PathItem)>, Diagnostics> {
    let Some(Value::Object(hooks)) = doc.extensions.get(WEBHOOKS_EXTENSION) else { return Ok(Vec::new()) };
    let at = Pointer::root().push("webhooks");
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in hooks {
        if value.get("$ref").is_some() {
            errors.push(at.push(name).error("a webhook given as a $ref is not supported; write it inline"));
            continue;
        }
        match try_part::<openapiv3::PathItem>(value, &at.push(name)) {
            Some(d) => errors.extend(d.0),
            None => {
                if let Ok(item) = serde_json::from_value(value.clone()) {
                    out.push((name.clone(), item));
                }
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(Diagnostics(errors)) }
}

fn with_file(mut d: Diagnostic, file: &str) -> Diagnostic {
    d.file = Some(file.to_owned());
    d
}

/// Text to JSON, with integer bounds beyond 64 bits clamped.
fn read(text: &str, warnings: &mut Vec<Diagnostic>) -> Result<Value, Diagnostics> {
    if text.trim().is_empty() {
        return Err(Diagnostics::one("#", "the document is empty"));
    }
    let yaml = yaml::from_str(text).map_err(|e| Diagnostics::one("#", e))?;
    if yaml == Node::Null {
        return Err(Diagnostics::one("#", "the document is empty"));
    }
    let mut json = to_json(&yaml, &Pointer::root(), 0)?;
    clamp_integer_bounds(&mut json, &Pointer::root(), warnings);
    Ok(json)
}

/// The document checks, the 3.1 front end and openapiv3.
fn from_json(mut json: Value, warnings: &mut Vec<Diagnostic>) -> Result<openapiv3::OpenAPI, Diagnostics> {
    let Value::Object(map) = &json else {
        return Err(Diagnostics::one("#", "the document must be a mapping (an OpenAPI object)"));
    };
    if map.contains_key("swagger") {
        return Err(Diagnostics::one(
            "#/swagger",
            "Swagger 2.0 documents are not supported; convert the spec to OpenAPI 3.0",
        ));
    }
    match map.get("openapi") {
        None => return Err(Diagnostics::one("#", "missing the `openapi` version field")),
        Some(Value::String(v)) if v.starts_with("3.0.") => {}
        // The 3.1 front end: rewritten into 3.0 form, then read the same way.
        Some(Value::String(v)) if v.starts_with("3.1.") => v31::downgrade(&mut json, warnings)?,
        Some(Value::String(v)) => {
            return Err(Diagnostics::one(
                "#/openapi",
                format!("OpenAPI {v} is not supported; this generator reads OpenAPI 3.0.x and 3.1.x"),
            ));
        }
        Some(_) => return Err(Diagnostics::one("#/openapi", "`openapi` must be a string such as \"3.0.3\"")),
    }
    match serde_path_to_error::deserialize::<_, openapiv3::OpenAPI>(json.clone()) {
        Ok(doc) => Ok(doc),
        Err(e) => Err(locate_error(&json).unwrap_or_else(|| {
            let pointer = path_pointer(&Pointer::root(), e.path());
            Diagnostics::one(pointer.as_str(), format!("not a valid OpenAPI 3.0 document here: {}", e.inner()))
        })),
    }
}

/// openapiv3 flattens maps (`paths`, extensions), which hides the path of a
/// deserialization error below them. Deserializing each path item and each
/// component on its own recovers the exact place.
fn locate_error(json: &Value) -> Option<Diagnostics> {
    let root = Pointer::root();
    if let Some(paths) = json.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            if path.starts_with("x-") {
                continue;
            }
            let at = root.push("paths").push(path);
            if let Some(d) = locate_in_path_item(item, &at) {
                return Some(d);
            }
            if let Some(d) = try_part::<openapiv3::ReferenceOr<openapiv3::PathItem>>(item, &at) {
                return Some(d);
            }
        }
    }
    if let Some(components) = json.get("components").and_then(Value::as_object) {
        for (kind, entries) in components {
            let Some(entries) = entries.as_object() else { continue };
            for (name, value) in entries {
                let at = root.push("components").push(kind).push(name);
                let found = match kind.as_str() {
                    "schemas" => try_part::<openapiv3::ReferenceOr<openapiv3::Schema>>(value, &at),
                    "parameters" => try_part::<openapiv3::ReferenceOr<openapiv3::Parameter>>(value, &at),
                    "responses" => try_part::<openapiv3::ReferenceOr<openapiv3::Response>>(value, &at),
                    "headers" => try_part::<openapiv3::ReferenceOr<openapiv3::Header>>(value, &at),
                    "requestBodies" => try_part::<openapiv3::ReferenceOr<openapiv3::RequestBody>>(value, &at),
                    "securitySchemes" => try_part::<openapiv3::ReferenceOr<openapiv3::SecurityScheme>>(value, &at),
                    _ => None,
                };
                if found.is_some() {
                    return found;
                }
            }
        }
    }
    None
}

/// Tries the parts of a path item one by one, deepest first.
fn locate_in_path_item(item: &Value, at: &Pointer) -> Option<Diagnostics> {
    fn parameters(list: Option<&Value>, at: &Pointer) -> Option<Diagnostics> {
        let list = list?.as_array()?;
        list.iter().enumerate().find_map(|(i, p)| {
            try_part::<openapiv3::ReferenceOr<openapiv3::Parameter>>(p, &at.push("parameters").push(i))
        })
    }
    let item_map = item.as_object()?;
    if let Some(d) = parameters(item_map.get("parameters"), at) {
        return Some(d);
    }
    for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
        let Some(op) = item_map.get(method) else { continue };
        let op_at = at.push(method);
        let Some(op_map) = op.as_object() else {
            return Some(Diagnostics::one(op_at.as_str(), "an operation must be a mapping"));
        };
        if let Some(d) = parameters(op_map.get("parameters"), &op_at) {
            return Some(d);
        }
        if let Some(body) = op_map.get("requestBody")
            && let Some(d) =
                try_part::<openapiv3::ReferenceOr<openapiv3::RequestBody>>(body, &op_at.push("requestBody"))
        {
            return Some(d);
        }
        if let Some(responses) = op_map.get("responses") {
            let r_at = op_at.push("responses");
            let Some(map) = responses.as_object() else {
                return Some(Diagnostics::one(r_at.as_str(), "`responses` must map status codes to responses"));
            };
            for (status, response) in map {
                if status.starts_with("x-") {
                    continue;
                }
                if let Some(d) = try_part::<openapiv3::ReferenceOr<openapiv3::Response>>(response, &r_at.push(status)) {
                    return Some(d);
                }
            }
        }
        if let Some(d) = try_part::<openapiv3::Operation>(op, &op_at) {
            return Some(d);
        }
    }
    None
}

/// Deserializes one part of the document on its own, so a failure's path
/// starts at `at`.
fn try_part<T: serde::de::DeserializeOwned>(value: &Value, at: &Pointer) -> Option<Diagnostics> {
    let err = serde_path_to_error::deserialize::<_, T>(value.clone()).err()?;
    let pointer = path_pointer(at, err.path());
    Some(Diagnostics::one(pointer.as_str(), format!("not valid here: {}", err.inner())))
}

fn path_pointer(base: &Pointer, path: &serde_path_to_error::Path) -> Pointer {
    use serde_path_to_error::Segment;
    let mut pointer = base.clone();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer = pointer.push(index),
            Segment::Map { key } => pointer = pointer.push(key),
            Segment::Enum { variant } => pointer = pointer.push(variant),
            Segment::Unknown => {}
        }
    }
    pointer
}

/// Converts YAML to JSON, refusing what JSON cannot express (non-string
/// keys, non-finite numbers) and documents nested deeper than
/// [`MAX_DEPTH`].
fn to_json(value: &Node, at: &Pointer, depth: usize) -> Result<Value, Diagnostics> {
    if depth > MAX_DEPTH {
        return Err(Diagnostics::one(at.as_str(), format!("the document nests deeper than {MAX_DEPTH} levels")));
    }
    Ok(match value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::from(*i),
        Node::UInt(u) => Value::from(*u),
        Node::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| Diagnostics::one(at.as_str(), "numbers must be finite"))?,
        Node::String(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Array(
            items.iter().enumerate().map(|(i, v)| to_json(v, &at.push(i), depth + 1)).collect::<Result<_, _>>()?,
        ),
        Node::Map(entries) => {
            let mut out = serde_json::Map::new();
            for (k, v) in entries {
                let key = match k {
                    Node::String(s) => s.clone(),
                    // YAML lets `200:` be a number; OpenAPI means the string.
                    Node::Int(i) => i.to_string(),
                    Node::UInt(u) => u.to_string(),
                    Node::Float(f) => f.to_string(),
                    Node::Bool(b) => b.to_string(),
                    _ => return Err(Diagnostics::one(at.as_str(), "mapping keys must be strings")),
                };
                let child = at.push(&key);
                out.insert(key, to_json(v, &child, depth + 1)?);
            }
            Value::Object(out)
        }
    })
}

/// An integer schema's `minimum`, `maximum` or `default` written beyond the
/// 64-bit range (or as a float, as `-9223372036854776000` parses) is moved
/// to the nearest 64-bit integer, with a warning: the generated code uses
/// 64-bit integers, so nothing beyond them can be sent anyway.
fn clamp_integer_bounds(value: &mut Value, at: &Pointer, warnings: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(map) => {
            let integer = map.get("type").and_then(Value::as_str) == Some("integer");
            for (key, child) in map.iter_mut() {
                let child_at = at.push(key);
                if integer
                    && matches!(key.as_str(), "minimum" | "maximum")
                    && let Value::Number(n) = child
                    && n.as_i64().is_none()
                    && let Some(f) = n.as_f64()
                    && f.fract() == 0.0
                {
                    let clamped = if f < 0.0 { i64::MIN } else { i64::MAX };
                    warnings
                        .push(child_at.warning(format!("{n} is outside the 64-bit integer range; {clamped} is used")));
                    *child = Value::from(clamped);
                } else {
                    clamp_integer_bounds(child, &child_at, warnings);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                clamp_integer_bounds(item, &at.push(i), warnings);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, &mut Vec::new()).unwrap_err().to_string()
    }

    #[test]
    fn empty_and_non_mapping_documents_are_refused() {
        assert_eq!(err(""), "error at #: the document is empty");
        assert!(err("- a\n- b\n").contains("must be a mapping"));
    }

    #[test]
    fn swagger_2_and_openapi_4_are_refused_at_their_version_key() {
        assert!(err("swagger: '2.0'\ninfo: {}\n").starts_with("error at #/swagger: Swagger 2.0"));
        assert!(err("openapi: 4.0.0\n").starts_with("error at #/openapi: OpenAPI 4.0.0 is not supported"));
    }

    #[test]
    fn defs_of_a_3_1_schema_are_hoisted_and_refs_follow() {
        let mut warnings = Vec::new();
        let doc = parse(
            "openapi: 3.1.0\ninfo: {title: t, version: '1'}\ncomponents:\n  schemas:\n    Box:\n      type: object\n      properties:\n        inner: {$ref: '#/components/schemas/Box/$defs/Inner'}\n      $defs:\n        Inner: {type: string}\n    User:\n      type: object\n      properties:\n        b: {$ref: '#/components/schemas/Box/$defs/Inner'}\n",
            &mut warnings,
        )
        .unwrap();
        let schemas = &doc.components.unwrap().schemas;
        assert!(schemas.contains_key("Box_Inner"), "{:?}", schemas.keys().collect::<Vec<_>>());
        let json = serde_json::to_string(&schemas["User"]).unwrap();
        assert!(json.contains("#/components/schemas/Box_Inner"), "{json}");
        let json = serde_json::to_string(&schemas["Box"]).unwrap();
        assert!(json.contains("#/components/schemas/Box_Inner") && !json.contains("$defs"), "{json}");
    }

    #[test]
    fn malformed_yaml_reports_the_line() {
        assert!(err("openapi: 3.0.3\ninfo: [\n").contains("line"));
    }

    #[test]
    fn deserialization_errors_point_into_the_document() {
        let e = err("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses: 7\n");
        assert!(e.starts_with("error at #/paths/~1a/get/responses"), "{e}");
        let e = err(
            "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      parameters:\n        - {name: q, in: nowhere}\n      responses: {}\n",
        );
        assert!(e.starts_with("error at #/paths/~1a/get/parameters/0"), "{e}");
    }

    #[test]
    fn integer_bounds_beyond_64_bits_are_clamped_with_a_warning() {
        let mut warnings = Vec::new();
        let doc = parse(
            "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n    Seed: {type: integer, minimum: -9223372036854776000, maximum: 9223372036854775807}\n",
            &mut warnings,
        )
        .unwrap();
        assert!(doc.components.is_some());
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "warning at #/components/schemas/Seed/minimum: -9.223372036854776e+18 is outside the 64-bit integer range; -9223372036854775808 is used"
            ]
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        let text = format!("openapi: 3.0.3\nx: {}{}\n", "[".repeat(500), "]".repeat(500));
        assert!(err(&text).contains("nests deeper") || err(&text).contains("YAML"));
    }
}
