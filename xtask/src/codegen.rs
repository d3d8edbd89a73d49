//! Regenerating `generated/` and proving it is in sync.
//!
//! The generator is pure; this module adds the file system: it formats the
//! Rust files with rustfmt (so `cargo fmt --check` agrees with what is
//! committed), writes only files whose contents changed, removes files a
//! previous run wrote but this one no longer produces (from a manifest), and
//! in check mode writes nothing and reports every difference.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lists every file the last run wrote, so the next run can delete the
/// ones it no longer produces without touching anything else in the folder.
pub const MANIFEST: &str = ".codegen-manifest";

/// What to do with the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Update it.
    Write,
    /// Leave it alone and fail on any difference.
    Check,
}

/// The workspace root (xtask lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

/// The project's spec and the file naming its crates.
pub const PROJECT_SPEC: &str = "spec/openapi.yaml";
/// See [`PROJECT_SPEC`].
pub const PROJECT_CONFIG: &str = "codegen.toml";

/// Names given on the command line; each wins over the config file.
#[derive(Debug, Default, clap::Args)]
pub struct NameFlags {
    /// The client crate's package name.
    #[arg(long)]
    pub client_crate: Option<String>,
    /// The server crate's package name.
    #[arg(long)]
    pub server_crate: Option<String>,
    /// The prefix of the client's environment variables (`<PREFIX>_API_KEY`).
    #[arg(long)]
    pub env_prefix: Option<String>,
    /// The realm of the server's `WWW-Authenticate` challenge.
    #[arg(long)]
    pub auth_realm: Option<String>,
}

/// One generation: a spec and the names of its crates.
#[derive(Debug)]
pub struct Job {
    spec: PathBuf,
    config: runagent_codegen::Config,
}

impl Job {
    /// The project's spec with `codegen.toml`.
    #[cfg(test)]
    pub fn project() -> Result<Job, String> {
        Job::new(None, None, NameFlags::default())
    }

    /// A spec (the project's when `None`), a config file (the project's
    /// for the project's spec when `None`) and flags over both.
    pub fn new(spec: Option<PathBuf>, config: Option<PathBuf>, flags: NameFlags) -> Result<Job, String> {
        let root = project_root();
        let config_path = match (&spec, config) {
            (_, Some(path)) => Some(root.join(path)),
            (None, None) => Some(root.join(PROJECT_CONFIG)),
            (Some(_), None) => None,
        };
        let mut config = match config_path {
            Some(path) => {
                let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => runagent_codegen::Config::default(),
        };
        let spec = spec.unwrap_or_else(|| PathBuf::from(PROJECT_SPEC));
        if config.spec_path.is_none() {
            config.spec_path = Some(spec.display().to_string());
        }
        let NameFlags { client_crate, server_crate, env_prefix, auth_realm } = flags;
        config.client_crate = client_crate.or(config.client_crate);
        config.server_crate = server_crate.or(config.server_crate);
        config.env_prefix = env_prefix.or(config.env_prefix);
        config.auth_realm = auth_realm.or(config.auth_realm);
        Ok(Job { spec: root.join(spec), config })
    }

    /// A spec file with names derived from its title.
    #[cfg(test)]
    pub fn spec(spec: &Path) -> Job {
        let config = runagent_codegen::Config {
            spec_path: Some(spec.display().to_string()),
            ..runagent_codegen::Config::default()
        };
        Job { spec: spec.to_path_buf(), config }
    }

    /// Generates into `out`.
    pub fn run(&self, out: &Path, mode: Mode) -> Result<(), String> {
        let spec = &self.spec;
        let text = fs::read_to_string(spec).map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
        let files = render(&text, &self.config)
            .map_err(|e| format!("{}: the spec has errors; nothing was written.\n{e}", spec.display()))?;
        match mode {
            Mode::Write => write(out, &files),
            Mode::Check => check(out, &files),
        }
    }
}

/// The files for a spec, Rust already formatted, plus the manifest.
pub fn render(spec: &str, config: &runagent_codegen::Config) -> Result<BTreeMap<String, String>, String> {
    let files = runagent_codegen::generate_with(spec, config).map_err(|d| d.to_string())?;
    let mut out = BTreeMap::new();
    let mut rust = BTreeMap::new();
    for (path, file) in files.0 {
        // Only Rust made from the spec needs formatting; the runtime files
        // are copied from `templates/` and `runtime/`, which are kept formatted (the test
        // `templates_are_formatted` says how).
        if file.kind == runagent_codegen::FileKind::Rust {
            rust.insert(path, file.contents);
        } else {
            out.insert(path.clone(), file.contents);
        }
    }
    let modules: Vec<&str> = out.keys().filter(|p| p.ends_with(".rs")).map(String::as_str).collect();
    let formatted = rustfmt(&rust, &modules)?;
    out.extend(formatted);
    let manifest: String = out.keys().map(|p| format!("{p}\n")).collect();
    out.insert(MANIFEST.to_owned(), manifest);
    Ok(out)
}

/// Formats `files` with ONE rustfmt process (starting one per file cost
/// most of a regeneration's time): they are laid out in a scratch folder
/// under their real paths and formatted in place. rustfmt is given only the
/// crate roots and follows their `mod` declarations, as `cargo fmt` does
/// (naming every module too would format each twice); the other modules of
/// the crates (`modules`, formatted already) are there as empty files that
/// cost nothing to format.
fn rustfmt(files: &BTreeMap<String, String>, modules: &[&str]) -> Result<BTreeMap<String, String>, String> {
    if files.is_empty() {
        return Ok(BTreeMap::new());
    }
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a scratch folder: {e}"))?;
    let place = |path: &str, contents: &str| {
        let full = scratch.path().join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&full, contents).map_err(|e| format!("cannot write {}: {e}", full.display()))?;
        Ok::<_, String>(full)
    };
    for module in modules {
        place(module, "")?;
    }
    let mut roots = Vec::new();
    for (path, contents) in files {
        let full = place(path, contents)?;
        if is_crate_root(path) {
            roots.push(full);
        }
    }
    let output = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2024", "--quiet", "--config-path"])
        .arg(project_root().join("rustfmt.toml"))
        .args(&roots)
        .output()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    if !output.status.success() {
        // Name the generated paths, not the scratch folder's.
        let prefix = format!("{}/", scratch.path().display());
        let stderr = String::from_utf8_lossy(&output.stderr).replace(&prefix, "");
        return Err(format!("rustfmt failed on the generated code:\n{stderr}"));
    }
    files
        .keys()
        .map(|path| {
            let full = scratch.path().join(path);
            let formatted = fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))?;
            Ok((path.clone(), formatted))
        })
        .collect()
}

/// Whether rustfmt must be named this file, because no other file reaches
/// it through `mod`: anything outside a `src/` folder (examples, tests),
/// `src/lib.rs`, `src/main.rs` and `src/bin/*.rs`.
fn is_crate_root(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let Some(src) = parts.iter().position(|p| *p == "src") else { return true };
    match &parts[src + 1..] {
        [file] => *file == "lib.rs" || *file == "main.rs",
        ["bin", _] => true,
        _ => false,
    }
}

/// Every file under `dir`, as `/`-separated paths relative to it.
fn existing_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                let key = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                found.insert(key, path);
            }
        }
    }
    found
}

fn write(out: &Path, files: &BTreeMap<String, String>) -> Result<(), String> {
    let previous: Vec<String> =
        fs::read_to_string(out.join(MANIFEST)).map(|m| m.lines().map(str::to_owned).collect()).unwrap_or_default();
    let mut changed = 0;
    for (rel, contents) in files {
        if ensure_file_contents(&out.join(rel), contents)? {
            changed += 1;
        }
    }
    let mut removed = 0;
    for rel in previous {
        if !files.contains_key(&rel) && !rel.contains("..") {
            let path = out.join(&rel);
            if path.exists() {
                fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                removed += 1;
            }
        }
    }
    eprintln!("codegen: {} files, {changed} updated, {removed} removed in {}", files.len(), out.display());
    Ok(())
}

/// Writes `contents` to `path` only when it differs, so timestamps (and
/// cargo's rebuilds) follow real changes. Returns whether it wrote.
fn ensure_file_contents(path: &Path, contents: &str) -> Result<bool, String> {
    if fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

fn check(out: &Path, files: &BTreeMap<String, String>) -> Result<(), String> {
    let existing = existing_files(out);
    let mut report = String::new();
    for (rel, contents) in files {
        match fs::read_to_string(out.join(rel)) {
            Err(_) => report.push_str(&format!("missing: {}\n", out.join(rel).display())),
            Ok(old) if old != *contents => {
                report.push_str(&format!("changed: {}\n", out.join(rel).display()));
                let diff = similar::TextDiff::from_lines(old.as_str(), contents.as_str());
                let unified =
                    diff.unified_diff().context_radius(2).header(&format!("a/{rel}"), &format!("b/{rel}")).to_string();
                report.extend(unified.lines().take(40).map(|l| format!("    {l}\n")));
            }
            Ok(_) => {}
        }
    }
    for (rel, path) in &existing {
        if !files.contains_key(rel) {
            report.push_str(&format!("extra: {} (not produced by the generator)\n", path.display()));
        }
    }
    if report.is_empty() {
        eprintln!("codegen --check: {} is up to date ({} files)", out.display(), files.len());
        Ok(())
    } else {
        Err(format!(
            "{report}\n{} is out of date with the spec. Run `cargo xtask codegen` and commit the result.",
            out.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: &Path, out: &Path, mode: Mode) -> Result<(), String> {
        if spec == project_root().join(PROJECT_SPEC) {
            Job::project()?.run(out, mode)
        } else {
            Job::spec(spec).run(out, mode)
        }
    }

    fn spec() -> PathBuf {
        project_root().join(PROJECT_SPEC)
    }

    /// Generates the real spec into a fresh temporary folder.
    fn fresh() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        run(&spec(), dir.path(), Mode::Write).unwrap();
        dir
    }

    fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        existing_files(dir).into_iter().map(|(k, p)| (k, fs::read(p).unwrap())).collect()
    }

    /// The generated crates cannot use `workspace = true` (they publish on
    /// their own), so their versions are repeated; this keeps them equal.
    #[test]
    fn only_crate_roots_are_named_to_rustfmt() {
        for root in
            ["client/src/lib.rs", "server/src/main.rs", "client/src/bin/tool.rs", "client/examples/quickstart.rs"]
        {
            assert!(is_crate_root(root), "{root}");
        }
        for module in ["client/src/types.rs", "server/src/api/mod.rs", "client/src/bin/tool/helper.rs"] {
            assert!(!is_crate_root(module), "{module}");
        }
    }

    #[test]
    fn generated_crates_use_workspace_pins() {
        let manifest = fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
        let version_of =
            |spec: &str| spec.split('"').find(|p| p.starts_with(|c: char| c.is_ascii_digit())).map(str::to_owned);
        use runagent_codegen::emit::versions::{CLIENT, SERVER};
        for (name, spec) in CLIENT.iter().chain(SERVER) {
            let wanted = version_of(spec).unwrap();
            let line = manifest
                .lines()
                .find(|l| l.starts_with(&format!("{name} =")))
                .unwrap_or_else(|| panic!("{name} is not in [workspace.dependencies]"));
            assert_eq!(version_of(line).as_deref(), Some(wanted.as_str()), "{name}: workspace has `{line}`");
        }
    }

    #[test]
    fn two_runs_into_fresh_folders_give_identical_bytes() {
        let (a, b) = (fresh(), fresh());
        let (a, b) = (snapshot(a.path()), snapshot(b.path()));
        assert!(a.len() > 30);
        assert_eq!(a, b);
    }

    #[test]
    fn check_fails_naming_the_file_after_an_edit_a_deletion_or_an_extra_file() {
        let dir = fresh();
        assert!(run(&spec(), dir.path(), Mode::Check).is_ok());

        let edited = dir.path().join("client/src/types.rs");
        let original = fs::read_to_string(&edited).unwrap();
        fs::write(&edited, format!("{original}// hand edit\n")).unwrap();
        let e = run(&spec(), dir.path(), Mode::Check).unwrap_err();
        assert!(
            e.contains("changed:") && e.contains("client/src/types.rs") && e.contains("cargo xtask codegen"),
            "{e}"
        );
        assert!(e.contains("+// hand edit") || e.contains("-// hand edit"), "the diff is shown: {e}");
        fs::write(&edited, &original).unwrap();

        fs::remove_file(dir.path().join("server/src/router.rs")).unwrap();
        let e = run(&spec(), dir.path(), Mode::Check).unwrap_err();
        assert!(e.contains("missing:") && e.contains("server/src/router.rs"), "{e}");
        run(&spec(), dir.path(), Mode::Write).unwrap();

        fs::write(dir.path().join("client/src/stray.rs"), "").unwrap();
        let e = run(&spec(), dir.path(), Mode::Check).unwrap_err();
        assert!(e.contains("extra:") && e.contains("client/src/stray.rs"), "{e}");
    }

    #[test]
    fn write_removes_files_it_no_longer_produces_but_keeps_others() {
        let dir = fresh();
        let manifest = dir.path().join(MANIFEST);
        let mut listed = fs::read_to_string(&manifest).unwrap();
        listed.push_str("client/src/old.rs\n");
        fs::write(&manifest, listed).unwrap();
        fs::write(dir.path().join("client/src/old.rs"), "stale").unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        run(&spec(), dir.path(), Mode::Write).unwrap();
        assert!(!dir.path().join("client/src/old.rs").exists());
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_broken_spec_writes_nothing_and_names_the_place() {
        let fixtures = project_root().join("tests/fixtures/broken");
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep.txt"), "untouched").unwrap();
        let before = snapshot(dir.path());
        for entry in fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            let e = run(&path, dir.path(), Mode::Write).unwrap_err();
            assert!(e.contains("error at #"), "{}: {e}", path.display());
            assert!(e.contains("nothing was written"), "{e}");
            assert_eq!(snapshot(dir.path()), before, "{} wrote into the output folder", path.display());
        }
    }

    /// The runtime files are copied into the generated crates without
    /// formatting (see `render`), so they must already be formatted the way
    /// `cargo fmt --check` wants the generated crates.
    #[test]
    fn templates_are_formatted() {
        let root = project_root();
        let mut templates: Vec<PathBuf> = ["templates", "runtime"]
            .iter()
            .flat_map(|dir| existing_files(&root.join(dir)).into_values())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        templates.sort();
        assert!(!templates.is_empty(), "no templates found");
        let output = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
            .args(["--edition", "2024", "--check", "--config-path"])
            .arg(root.join("rustfmt.toml"))
            .args(&templates)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "templates/ or runtime/ is not formatted; run\n  rustfmt --edition 2024 --config-path rustfmt.toml $(find templates runtime -name '*.rs')\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    #[test]
    fn generated_is_up_to_date() {
        let root = project_root();
        if let Err(e) = run(&root.join("spec/openapi.yaml"), &root.join("generated"), Mode::Check) {
            panic!("{e}");
        }
    }
}
