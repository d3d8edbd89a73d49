//! The generator's output for small fixture specs, compared with committed
//! snapshots under `tests/snapshots/`. After an intended change, refresh them
//! with `EXPECTORATE=overwrite cargo test -p runagent-codegen --test snapshots`
//! and review the diff.

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Generates from `tests/fixtures/<spec>` and compares everything made from
/// the spec (not the support files copied verbatim) with
/// `tests/snapshots/<expected>`.
fn check(spec: &str, expected: &str) {
    let text = std::fs::read_to_string(repo().join("tests/fixtures").join(spec)).expect("fixture exists");
    let files = runagent_codegen::generate(&text).unwrap_or_else(|e| panic!("{spec} should generate:\n{e}"));
    let mut out = String::new();
    for (path, file) in &files.0 {
        if file.kind == runagent_codegen::FileKind::RustVerbatim {
            continue;
        }
        out.push_str(&format!("=== {path}\n{}\n", file.contents));
    }
    expectorate::assert_contents(repo().join("tests/snapshots").join(expected), &out);
}

#[test]
fn minimal_spec() {
    check("minimal.yaml", "minimal.txt");
}

#[test]
fn names_are_sanitized_and_deduplicated() {
    check("naming.yaml", "naming.txt");
}

#[test]
fn refs_are_resolved_and_recursive_types_boxed() {
    check("refs.yaml", "refs.txt");
}

#[test]
fn nullable_and_optional_stay_distinct() {
    check("nullable.yaml", "nullable.txt");
}

#[test]
fn output_is_deterministic() {
    let text = std::fs::read_to_string(repo().join("spec/openapi.yaml")).unwrap();
    let a = runagent_codegen::generate(&text).unwrap();
    let b = runagent_codegen::generate(&text).unwrap();
    assert_eq!(a, b);
}
