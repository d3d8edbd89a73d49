//! The generator's output is deterministic. What it emits for the fixture
//! specs is not compared as text here: `cargo xtask codegen` writes it to
//! `tests/output/`, where it is compiled, linted and tested as workspace
//! members (see `COMPILED_SPECS` in `xtask/src/codegen.rs`).

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn output_is_deterministic() {
    for spec in ["spec/openapi.yaml", "tests/fixtures/param-collision.yaml", "tests/corpus/oai-link-example.yaml"] {
        let text = std::fs::read_to_string(repo().join(spec)).unwrap();
        let a = runagent_codegen::generate(&text).unwrap();
        let b = runagent_codegen::generate(&text).unwrap();
        assert_eq!(a, b, "{spec}");
    }
}
