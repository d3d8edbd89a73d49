//! Broken specs: each fixture under `tests/fixtures/broken/` starts with a
//! `# expect: <pointer>: <message start>` line, and the generator must answer
//! with that diagnostic (never a panic, never output).
//!
//! Warned specs: each fixture under `tests/fixtures/warnings/` starts with
//! one `# expect: <pointer>: <message>` line per warning; the generator must
//! produce output and exactly those warnings.

use std::path::PathBuf;

fn broken_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/broken")
}

fn warnings_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/warnings")
}

#[test]
fn every_warned_fixture_generates_with_exactly_its_warnings() {
    let mut entries: Vec<_> = std::fs::read_dir(warnings_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert!(entries.len() >= 3, "the warned fixtures are missing");
    let mut failures = Vec::new();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut expected: Vec<String> =
            text.lines().map_while(|l| l.strip_prefix("# expect: ")).map(|l| format!("warning at {l}")).collect();
        expected.sort();
        assert!(!expected.is_empty(), "{} lacks `# expect:` lines", path.display());
        match runagent_codegen::generate_with(&text, &runagent_codegen::Config::default()) {
            Err(e) => failures.push(format!("{}: refused:\n{e}", path.display())),
            Ok(out) => {
                let got: Vec<String> = out.warnings.iter().map(ToString::to_string).collect();
                if got != expected {
                    failures.push(format!("{}: expected {expected:#?}, got {got:#?}", path.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
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
