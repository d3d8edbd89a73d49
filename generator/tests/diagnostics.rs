//! Broken specs: each fixture under `tests/fixtures/broken/` starts with a
//! `# expect: <pointer>: <message start>` line, and the generator must answer
//! with that diagnostic (never a panic, never output).

use std::path::PathBuf;

fn broken_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/broken")
}

#[test]
fn every_broken_fixture_gives_its_diagnostic() {
    let mut entries: Vec<_> = std::fs::read_dir(broken_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert!(entries.len() >= 15, "the broken fixtures are missing");
    let mut failures = Vec::new();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", path.display()));
        let (pointer, message) = expect.split_once(": ").expect("pointer: message");
        match runagent_codegen::generate(&text) {
            Ok(_) => failures.push(format!("{}: generated output instead of failing", path.display())),
            Err(diagnostics) => {
                let found = diagnostics.0.iter().any(|d| d.pointer == pointer && d.message.starts_with(message));
                if !found {
                    failures.push(format!("{}: expected `{expect}`, got:\n{diagnostics}", path.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
