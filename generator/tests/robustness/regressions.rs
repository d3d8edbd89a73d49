//! Crashes and hangs the mutation strategies found, each kept as a fixed
//! document so that it stays fixed. The documents are built here rather
//! than committed as files because what matters is their size (thousands of
//! components), not their text. Each runs on a worker thread with the
//! default 2 MiB stack and the harness deadline, and calls `load` (the
//! lowering, where the bugs were) so that the plain `cargo test` stays
//! quick.

use crate::harness::on_worker;
use serde_json::{Map, Value, json};

fn document(schemas: Map<String, Value>, response_schema: &str) -> String {
    let schema = json!({"$ref": format!("#/components/schemas/{response_schema}")});
    let value = json!({
        "openapi": "3.0.3",
        "info": {"title": "Regression", "version": "1"},
        "paths": {"/a": {"get": {"operationId": "getA", "responses": {"200": {
            "description": "ok", "content": {"application/json": {"schema": schema}}}}}}},
        "components": {"schemas": schemas},
    });
    serde_json::to_string(&value).expect("serialize")
}

fn load(text: String) -> Result<runagent_codegen::ir::Api, runagent_codegen::Diagnostics> {
    on_worker(move || runagent_codegen::load(&text)).unwrap_or_else(|stopped| panic!("load failed: {stopped:?}"))
}

/// Checking for alias cycles used to search from every schema with a
/// recursive function, one call per link: a loop of 3,000 `$ref`s
/// overflowed the stack and aborted the process (and a loop of 2,000 took
/// eight seconds).
#[test]
fn a_long_cycle_of_schema_refs_is_a_diagnostic_not_a_stack_overflow() {
    const LEN: usize = 3000;
    let schemas =
        (0..LEN).map(|i| (format!("S{i}"), json!({"$ref": format!("#/components/schemas/S{}", (i + 1) % LEN)})));
    let diagnostics = load(document(schemas.collect(), "S0")).expect_err("the loop is reported");
    assert!(
        diagnostics.0.iter().any(|d| d.pointer == "#/components/schemas/S0"
            && d.message.starts_with("cyclic $ref: `S0` contains itself with no object in between")),
        "{diagnostics}"
    );
}

/// The same recursion decided which struct fields to box: a chain of 3,000
/// structs, each with a property of the next, overflowed the stack. Closed
/// into a loop, every link must be boxed; left open, none.
#[test]
fn a_long_chain_of_structs_is_boxed_only_where_it_loops() {
    const LEN: usize = 3000;
    for closed in [false, true] {
        let schemas = (0..LEN).map(|i| {
            let next = if i + 1 < LEN || closed {
                json!({"$ref": format!("#/components/schemas/S{}", (i + 1) % LEN)})
            } else {
                json!({"type": "string"})
            };
            (format!("S{i}"), json!({"type": "object", "properties": {"next": next}}))
        });
        let api = load(document(schemas.collect(), "S0")).unwrap_or_else(|e| panic!("closed: {closed}\n{e}"));
        let boxed = api
            .types
            .values()
            .filter(|t| matches!(&t.kind, runagent_codegen::ir::TypeKind::Struct(s) if s.fields[0].boxed))
            .count();
        assert_eq!(boxed, if closed { LEN } else { 0 }, "closed: {closed}");
    }
}

/// Deciding which fields to box searched the whole reference graph once per
/// field: quadratic, so 1,600 schemas with a few references each took 16
/// seconds even in a release build. 2,000 such schemas must lower well
/// within the deadline.
#[test]
fn densely_referencing_schemas_lower_in_linear_time() {
    const LEN: usize = 2000;
    let schemas = (0..LEN).map(|i| {
        let properties: Map<String, Value> = (0..4)
            .map(|k| {
                (format!("f{k}"), json!({"$ref": format!("#/components/schemas/S{}", (i * 7 + k * 13 + 1) % LEN)}))
            })
            .collect();
        (format!("S{i}"), json!({"type": "object", "properties": properties}))
    });
    load(document(schemas.collect(), "S0")).unwrap_or_else(|e| panic!("{e}"));
}

/// Names that sanitize alike (`!`, `!?`, `@?`, ... all become `Unnamed`)
/// used to be numbered by trying `Unnamed2`, `Unnamed3`, ... from the start
/// each time: quadratic, 4,000 enum values took six seconds in a debug
/// build. 20,000 must lower well within the deadline.
#[test]
fn many_names_that_sanitize_alike_are_numbered_in_linear_time() {
    const LEN: usize = 20_000;
    let symbols = ['!', '@', '#', '$', '%', '^', '&', '*', '(', ')'];
    let values: Vec<String> = (0..LEN)
        .map(|i| i.to_string().chars().map(|d| symbols[d.to_digit(10).unwrap() as usize]).chain(['?']).collect())
        .collect();
    let mut schemas = Map::new();
    schemas.insert("E".into(), json!({"type": "string", "enum": values}));
    let api = load(document(schemas, "E")).unwrap_or_else(|e| panic!("{e}"));
    let runagent_codegen::ir::TypeKind::Enum(e) = &api.types["E"].kind else { panic!("E is an enum") };
    assert_eq!(e.variants[LEN - 1].name, format!("Unnamed{LEN}"));
}
