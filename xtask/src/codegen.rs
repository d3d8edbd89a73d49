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

/// Specs besides the project's whose output is generated into
/// `tests/output/<file stem>/` by every `cargo xtask codegen` and compiled as
/// workspace members, so `cargo clippy --workspace -D warnings` and
/// `cargo test --workspace` prove that what the generator emits for them
/// builds (in the spirit of progenitor's `tests/output`). Their crates are
/// named `<stem>-client` and `<stem>-server`.
pub const COMPILED_SPECS: &[&str] = &[
    "tests/fixtures/minimal.yaml",
    "tests/fixtures/naming.yaml",
    "tests/fixtures/nullable.yaml",
    "tests/fixtures/refs.yaml",
    "tests/fixtures/param-collision.yaml",
    "tests/fixtures/versions.yaml",
    "tests/fixtures/composition.yaml",
    "tests/fixtures/discriminator.yaml",
    "tests/fixtures/plain-stream.yaml",
    "tests/fixtures/query-objects.yaml",
    "tests/fixtures/client-conventions-flat.yaml",
    "tests/fixtures/client-conventions-nested.yaml",
    "tests/fixtures/client-shapes.yaml",
    "tests/fixtures/security.yaml",
    "tests/fixtures/bodies.yaml",
    "tests/corpus/oai-link-example.yaml",
    "tests/corpus/oai-callback-example.yaml",
    "tests/corpus/oai-petstore-expanded.yaml",
    "tests/corpus/oai-api-with-examples.yaml",
    "tests/corpus/oai-uspto.yaml",
    "tests/corpus/petstore3.yaml",
    "tests/corpus/twilio_accounts_v1.yaml",
    "tests/corpus/openai-3.0-2025-04.yaml",
];

/// Where the output of each of [`COMPILED_SPECS`] goes.
pub const COMPILED_OUTPUT: &str = "tests/output";

/// The project's spec into `generated/` and every compiled spec into
/// `tests/output/`: what plain `cargo xtask codegen [--check]` does.
pub fn run_all(mode: Mode, deny_warnings: bool) -> Result<(), String> {
    let root = project_root();
    let mut failures = Vec::new();
    let mut jobs = vec![(Job::new(None, None, NameFlags::default())?, root.join("generated"))];
    for spec in COMPILED_SPECS {
        jobs.push((Job::compiled(spec), root.join(COMPILED_OUTPUT).join(stem(spec))));
    }
    for (mut job, out) in jobs {
        // The public corpus is what other people wrote: its warnings are
        // expected (and listed by every run); our own specs have none.
        job.deny_warnings = deny_warnings && !job.spec.starts_with(root.join("tests/corpus"));
        if let Err(e) = job.run(&out, mode) {
            failures.push(e);
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n\n")) }
}

fn stem(spec: &str) -> &str {
    let name = spec.rsplit('/').next().unwrap_or(spec);
    name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".json")).unwrap_or(name)
}

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

impl NameFlags {
    /// Whether no name was given.
    pub fn is_empty(&self) -> bool {
        self.client_crate.is_none()
            && self.server_crate.is_none()
            && self.env_prefix.is_none()
            && self.auth_realm.is_none()
    }
}

/// One generation: a spec and the names of its crates.
#[derive(Debug)]
pub struct Job {
    spec: PathBuf,
    config: runagent_codegen::Config,
    /// Whether a warning fails the run (`--deny-warnings`).
    pub deny_warnings: bool,
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
        Ok(Job { spec: root.join(spec), config, deny_warnings: false })
    }

    /// One of [`COMPILED_SPECS`], with crates named after its file.
    pub fn compiled(spec: &str) -> Job {
        // A package name has no dots (`openai-3.0-2025-04`).
        let stem = stem(spec).replace('.', "-");
        let config = runagent_codegen::Config {
            spec_path: Some(spec.to_owned()),
            client_crate: Some(format!("{stem}-client")),
            server_crate: Some(format!("{stem}-server")),
            ..runagent_codegen::Config::default()
        };
        Job { spec: project_root().join(spec), config, deny_warnings: false }
    }

    /// A spec file with names derived from its title.
    #[cfg(test)]
    pub fn spec(spec: &Path) -> Job {
        let config = runagent_codegen::Config {
            spec_path: Some(spec.display().to_string()),
            ..runagent_codegen::Config::default()
        };
        Job { spec: spec.to_path_buf(), config, deny_warnings: false }
    }

    /// Generates into `out`.
    pub fn run(&self, out: &Path, mode: Mode) -> Result<(), String> {
        let (root, documents) = load_documents(&self.spec)?;
        // Messages name the spec as the user would, relative to the project.
        let root_dir = project_root();
        let spec = self.spec.strip_prefix(&root_dir).unwrap_or(&self.spec);
        let rendered = render(&root, &documents, &self.config)
            .map_err(|e| format!("{}: the spec has errors; nothing was written.\n{e}", spec.display()))?;
        if !rendered.warnings.is_empty() {
            let list: Vec<String> = rendered.warnings.iter().map(ToString::to_string).collect();
            let list = list.join("\n");
            if self.deny_warnings {
                return Err(format!(
                    "{}: {} warning(s) and --deny-warnings; nothing was written.\n{list}",
                    spec.display(),
                    rendered.warnings.len()
                ));
            }
            eprintln!("{}: {} warning(s):\n{list}", spec.display(), rendered.warnings.len());
        }
        let files = rendered.files;
        match mode {
            Mode::Write => write(out, &files),
            Mode::Check => check(out, &files),
        }
    }
}

/// The spec file and every file its `$ref`s reach, by path relative to the
/// spec's folder (the generator reads no files itself). A file that cannot
/// be read is left out: the generator then names the `$ref` that needs it.
fn load_documents(spec: &Path) -> Result<(String, BTreeMap<String, String>), String> {
    let dir = spec.parent().unwrap_or(Path::new("."));
    let root = spec.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = fs::read_to_string(spec).map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    let mut documents = BTreeMap::new();
    let mut queue = vec![(root.clone(), text)];
    while let Some((name, text)) = queue.pop() {
        // A document that does not parse is reported by the generator.
        for referenced in runagent_codegen::referenced_files(&name, &text).unwrap_or_default() {
            if !documents.contains_key(&referenced)
                && referenced != name
                && let Ok(text) = fs::read_to_string(dir.join(&referenced))
            {
                queue.push((referenced, text));
            }
        }
        documents.insert(name, text);
    }
    Ok((root, documents))
}

/// The files for a spec, Rust already formatted, plus the manifest.
pub fn render(
    root: &str,
    documents: &BTreeMap<String, String>,
    config: &runagent_codegen::Config,
) -> Result<Rendered, String> {
    let output = runagent_codegen::generate_documents(root, documents, config).map_err(|d| d.to_string())?;
    let warnings = output.warnings;
    let files = output.files;
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
    Ok(Rendered { files: out, warnings })
}

/// What [`render`] gives: the file contents by path and the generator's warnings.
pub struct Rendered {
    /// Paths to contents, the manifest included.
    pub files: BTreeMap<String, String>,
    /// Constructs the generator handled in a documented way instead of refusing.
    pub warnings: Vec<runagent_codegen::Diagnostic>,
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
        use runagent_codegen::emit::versions::{CLI, CLIENT, SERVER, SERVER_OPTIONAL};
        let optional = SERVER_OPTIONAL.iter().map(|(_, name, spec)| (*name, *spec));
        for (name, spec) in CLIENT.iter().chain(SERVER).chain(CLI).copied().chain(optional) {
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
    fn deny_warnings_makes_a_warned_spec_write_nothing() {
        let spec = project_root().join("tests/fixtures/warnings/no-operation-id.yaml");
        let dir = tempfile::tempdir().unwrap();
        let mut job = Job::spec(&spec);
        job.deny_warnings = true;
        let e = job.run(dir.path(), Mode::Write).unwrap_err();
        assert!(e.contains("--deny-warnings; nothing was written"), "{e}");
        assert!(e.contains("warning at #/paths/~1pets/get: no `operationId`"), "{e}");
        assert!(snapshot(dir.path()).is_empty());
        job.deny_warnings = false;
        job.run(dir.path(), Mode::Write).unwrap();
        assert!(dir.path().join("client/src/lib.rs").exists());
    }

    /// `generated/` and `tests/output/` are what the specs give today.
    #[test]
    fn generated_is_up_to_date() {
        if let Err(e) = run_all(Mode::Check, true) {
            panic!("{e}");
        }
    }

    /// Every valid fixture is compiled; a new one must be added to the list.
    #[test]
    fn every_valid_fixture_is_compiled() {
        let mut fixtures: Vec<String> = existing_files(&project_root().join("tests/fixtures"))
            .into_keys()
            .filter(|p| p.ends_with(".yaml") && !p.contains('/'))
            .map(|p| format!("tests/fixtures/{p}"))
            .collect();
        fixtures.sort();
        let mut listed: Vec<String> =
            COMPILED_SPECS.iter().filter(|s| s.starts_with("tests/fixtures/")).map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(fixtures, listed);
    }
}
