//! The OpenAPI 3.1 front end lowers into the same IR as 3.0: each 3.1
//! fixture under `tests/fixtures/v31/` has a 3.0 twin of the same name
//! under `tests/fixtures/`.

use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

#[test]
fn every_3_1_fixture_lowers_like_its_3_0_twin() {
    let mut compared = 0;
    for entry in std::fs::read_dir(fixtures().join("v31")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        let v31 = std::fs::read_to_string(&path).unwrap();
        let v30 = std::fs::read_to_string(fixtures().join(&name)).unwrap();
        let (a, warnings) = runagent_codegen::load_with_warnings(&v31).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(warnings.is_empty(), "{name:?}: {warnings:?}");
        let b = runagent_codegen::load(&v30).unwrap();
        assert_eq!(a, b, "{name:?}");
        compared += 1;
    }
    assert!(compared >= 1);
}

#[test]
fn what_3_0_cannot_say_is_refused_with_a_pointer() {
    let spec = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\ncomponents:\n  schemas:\n    Pair: {type: array, prefixItems: [{type: string}, {type: integer}]}\n    Either: {type: [string, integer]}\n";
    let e = runagent_codegen::load(spec).unwrap_err().to_string();
    assert!(e.contains("error at #/components/schemas/Pair/prefixItems: tuples"), "{e}");
    assert!(e.contains("error at #/components/schemas/Either/type: a `type` list"), "{e}");
}

#[test]
fn webhooks_are_typed_and_documented_without_a_route() {
    let spec = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      operationId: a\n      responses: {'204': {description: ok}}\nwebhooks:\n  petAdded:\n    post:\n      summary: A pet was added.\n      requestBody:\n        content:\n          application/json:\n            schema: {type: object, required: [id], properties: {id: {type: [integer, 'null']}}}\n      responses: {'200': {description: ok}}\n";
    let (api, warnings) = runagent_codegen::load_with_warnings(spec).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(api.operations.len(), 1, "a webhook is no operation");
    assert_eq!(api.webhooks.len(), 1);
    let hook = &api.webhooks[0];
    assert_eq!((hook.name.as_str(), hook.method.as_str()), ("petAdded", "POST"));
    let body = api.types.values().find(|t| t.api_name.contains("petAdded")).expect("the body is typed");
    let runagent_codegen::ir::TypeKind::Struct(s) = &body.kind else { panic!("{body:?}") };
    assert!(s.fields[0].nullable && s.fields[0].required);
    let files = runagent_codegen::generate(spec).unwrap();
    let index = &files.0["docs/index.md"].contents;
    assert!(index.contains("## Webhooks") && index.contains("`petAdded`"), "{index}");
}
