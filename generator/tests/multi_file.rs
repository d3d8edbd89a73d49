//! Specs split into files: relative `$ref`s to other files resolve, the
//! result lowers into the same IR as the single-file twin, and diagnostics
//! name the file and the pointer inside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Loads `root` and every file it needs, as a caller (xtask) does.
fn documents(dir: &Path, root: &str) -> BTreeMap<String, String> {
    let mut docs = BTreeMap::new();
    let mut queue = vec![root.to_owned()];
    while let Some(name) = queue.pop() {
        if docs.contains_key(&name) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(dir.join(&name)) else { continue };
        queue.extend(runagent_codegen::referenced_files(&name, &text).unwrap());
        docs.insert(name, text);
    }
    docs
}

#[test]
fn a_split_spec_lowers_like_its_single_file_twin() {
    let docs = documents(&fixtures().join("multi-file"), "refs.yaml");
    assert_eq!(docs.len(), 6, "{:?}", docs.keys().collect::<Vec<_>>());
    let (split, warnings) = runagent_codegen::load_documents("refs.yaml", &docs).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let single = runagent_codegen::load(&std::fs::read_to_string(fixtures().join("refs.yaml")).unwrap()).unwrap();
    assert_eq!(split, single);
}

#[test]
fn a_missing_file_is_reported_at_the_ref_that_names_it() {
    let mut docs = documents(&fixtures().join("multi-file"), "refs.yaml");
    docs.remove("paths/ping.yaml");
    let e = runagent_codegen::load_documents("refs.yaml", &docs).unwrap_err().to_string();
    assert_eq!(
        e,
        "error at #/paths/~1ping/$ref: `paths/ping.yaml` was not found (refs are resolved against the file that holds them)"
    );
}

#[test]
fn errors_inside_other_files_are_located_there() {
    let mut docs = documents(&fixtures().join("multi-file"), "refs.yaml");
    let shapes =
        docs["schemas/shapes.yaml"].replace("format: int32, minimum: 1", "format: int32, multipleOf: 2, minimum: 1");
    docs.insert("schemas/shapes.yaml".into(), shapes);
    let paths = docs["paths/nodes.yaml"].replace("operationId: putNode", "operationId: getNode");
    docs.insert("paths/nodes.yaml".into(), paths);
    let e = runagent_codegen::load_documents("refs.yaml", &docs).unwrap_err().to_string();
    assert!(
        e.contains("error at schemas/shapes.yaml#/Square/properties/side/multipleOf: `multipleOf` is not supported"),
        "{e}"
    );
    assert!(e.contains("error at paths/nodes.yaml#/put/operationId: duplicate operationId `getNode`"), "{e}");
}

#[test]
fn a_ref_out_of_the_folder_or_to_a_missing_file_is_an_error_where_it_is() {
    let mut docs = BTreeMap::new();
    docs.insert(
        "api.yaml".to_owned(),
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a: {$ref: '../outside.yaml'}\n  /b: {$ref: './b.yaml'}\n".to_owned(),
    );
    docs.insert(
        "b.yaml".to_owned(),
        "get:\n  operationId: b\n  responses:\n    '200': {$ref: './missing.yaml#/R'}\n".to_owned(),
    );
    let e = runagent_codegen::load_documents("api.yaml", &docs).unwrap_err().to_string();
    assert!(e.contains("error at #/paths/~1a/$ref: `../outside.yaml` is outside the spec's folder"), "{e}");
    assert!(e.contains("error at b.yaml#/get/responses/200/$ref: `missing.yaml` was not found"), "{e}");
}
