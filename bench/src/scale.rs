//! Synthetic specs for the scaling benchmark: `spec/openapi.yaml` with its
//! paths and components repeated `factor` times. Copy 0 is the original;
//! copy k has every path under `/sk`, every operationId and every component
//! name (schemas, parameters, headers, responses, links) suffixed with `Sk`,
//! and every reference inside it pointing at its own copy, so each copy is a
//! complete, independent API of the same shape.

use serde_json::{Map, Value};
use std::path::Path;
use std::time::Instant;

/// The component kinds that are copied; security schemes stay shared, as
/// every copy uses the same bearer scheme.
const COPIED: &[&str] = &["schemas", "parameters", "headers", "responses", "links"];

/// Rewrites one copy's references, operation ids and link targets.
fn rename(value: &mut Value, suffix: &str) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "operationId" {
                    if let Value::String(id) = v {
                        id.push_str(suffix);
                    }
                } else {
                    rename(v, suffix);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, suffix)),
        Value::String(s) => {
            let is_ref = COPIED.iter().any(|kind| s.starts_with(&format!("#/components/{kind}/")));
            if is_ref {
                s.push_str(suffix);
            }
        }
        _ => {}
    }
}

/// The spec text with `factor` copies of everything.
pub fn scale(spec: &str, factor: usize) -> Result<String, String> {
    let mut doc: Value = serde_yaml_ng::from_str(spec).map_err(|e| format!("cannot parse the spec: {e}"))?;
    let paths = doc["paths"].as_object().cloned().ok_or("the spec has no paths")?;
    let components = doc["components"].as_object().cloned().ok_or("the spec has no components")?;
    let mut new_paths = Map::new();
    let mut new_components = components.clone();
    for k in 0..factor {
        let suffix = if k == 0 { String::new() } else { format!("S{k}") };
        let prefix = if k == 0 { String::new() } else { format!("/s{k}") };
        for (path, item) in &paths {
            let mut item = item.clone();
            rename(&mut item, &suffix);
            new_paths.insert(format!("{prefix}{path}"), item);
        }
        if k == 0 {
            continue;
        }
        for kind in COPIED {
            let Some(entries) = components.get(*kind).and_then(Value::as_object) else { continue };
            let target = new_components[*kind].as_object_mut().expect("copied from an object");
            for (name, entry) in entries {
                let mut entry = entry.clone();
                rename(&mut entry, &suffix);
                target.insert(format!("{name}{suffix}"), entry);
            }
        }
    }
    doc["paths"] = Value::Object(new_paths);
    doc["components"] = Value::Object(new_components);
    serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())
}

pub fn write(spec: &Path, factor: usize, out: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(spec).map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    let scaled = scale(&text, factor.max(1))?;
    std::fs::write(out, scaled).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

/// Times the pure generator (parse, lower, emit; no rustfmt, no files).
pub fn gen_time(spec: &Path, reps: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(spec).map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    let mut times = Vec::new();
    let mut files = 0;
    let mut lines = 0;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let out = runagent_codegen::generate(&text).map_err(|d| d.to_string())?;
        times.push(start.elapsed().as_secs_f64());
        files = out.0.len();
        lines = out.0.values().map(|f| f.contents.lines().count()).sum::<usize>();
    }
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let peak = usage.ru_maxrss;
    println!("{}", serde_json::json!({ "times_s": times, "files": files, "lines": lines, "max_rss_kib": peak }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/openapi.yaml")).unwrap()
    }

    fn count(text: &str) -> (usize, usize) {
        let doc: Value = serde_yaml_ng::from_str(text).unwrap();
        let operations = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        (operations, doc["components"]["schemas"].as_object().unwrap().len())
    }

    #[test]
    fn a_scaled_spec_has_factor_times_everything_and_generates() {
        let original = spec();
        let (ops, schemas) = count(&original);
        let scaled = scale(&original, 3).unwrap();
        assert_eq!(count(&scaled), (3 * ops, 3 * schemas));
        let one = runagent_codegen::generate(&original).unwrap();
        let three = runagent_codegen::generate(&scaled).unwrap();
        // What the spec makes grows with it; the runtime copied into each
        // crate (the same for any spec) does not.
        let size = |files: &runagent_codegen::Files| {
            files
                .0
                .values()
                .filter(|f| f.kind != runagent_codegen::FileKind::RustVerbatim)
                .map(|f| f.contents.len())
                .sum::<usize>()
        };
        assert!(size(&three) > 2 * size(&one));
    }
}
