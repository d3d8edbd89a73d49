//! Where a `command` agent's program is, and whether it may be run: a
//! relative path that resolves (symlinks followed) to an executable file
//! inside the agents directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why an entrypoint cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EntrypointError {
    /// A short machine-readable reason (`missing`, `absolute`, `not_found`,
    /// `outside_agents_dir`, `not_a_file`, `not_executable`,
    /// `agents_dir_missing`).
    pub reason: &'static str,
    /// What to tell people.
    pub message: String,
}

fn fail(reason: &'static str, message: String) -> EntrypointError {
    EntrypointError { reason, message }
}

/// Resolves `entrypoint` against `agents_dir` and checks that it can be
/// run. Returns the canonical path of the program.
///
/// The check canonicalizes both paths, so neither `..` nor a symlink can
/// lead outside the directory.
pub fn resolve(agents_dir: &Path, entrypoint: Option<&str>) -> Result<PathBuf, EntrypointError> {
    let Some(entrypoint) = entrypoint else {
        return Err(fail(
            "missing",
            "A command agent needs an entrypoint: the program to run, relative to the agents directory.".into(),
        ));
    };
    let relative = Path::new(entrypoint);
    if relative.is_absolute() || relative.components().any(|c| matches!(c, Component::Prefix(_))) {
        return Err(fail(
            "absolute",
            format!("The entrypoint {entrypoint} must be a path relative to the agents directory."),
        ));
    }
    let dir = agents_dir.canonicalize().map_err(|e| {
        fail("agents_dir_missing", format!("The agents directory {} is not usable: {e}.", agents_dir.display()))
    })?;
    let program = dir.join(relative).canonicalize().map_err(|_| {
        fail("not_found", format!("The entrypoint {entrypoint} does not exist in the agents directory."))
    })?;
    if !program.starts_with(&dir) {
        return Err(fail(
            "outside_agents_dir",
            format!("The entrypoint {entrypoint} resolves outside the agents directory."),
        ));
    }
    let metadata = std::fs::metadata(&program)
        .map_err(|e| fail("not_found", format!("The entrypoint {entrypoint} cannot be read: {e}.")))?;
    if !metadata.is_file() {
        return Err(fail("not_a_file", format!("The entrypoint {entrypoint} is not a file.")));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(fail("not_executable", format!("The entrypoint {entrypoint} is not executable (chmod +x it).")));
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn setup() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let agents = root.path().join("agents");
        fs::create_dir_all(agents.join("sub")).unwrap();
        fs::write(agents.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(agents.join("sub/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(agents.join("plain.txt"), "x").unwrap();
        fs::write(root.path().join("outside.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.path().join("outside.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(root.path().join("outside.sh"), agents.join("link.sh")).unwrap();
        root
    }

    fn reason(root: &Path, entrypoint: Option<&str>) -> &'static str {
        resolve(&root.join("agents"), entrypoint).unwrap_err().reason
    }

    #[test]
    fn accepts_an_executable_inside() {
        let root = setup();
        let path = resolve(&root.path().join("agents"), Some("sub/run.sh")).unwrap();
        assert!(path.ends_with("agents/sub/run.sh"));
        assert!(path.is_absolute());
        // `..` that stays inside is fine.
        assert!(resolve(&root.path().join("agents"), Some("sub/../sub/run.sh")).is_ok());
    }

    #[test]
    fn refuses_everything_else() {
        let root = setup();
        let root = root.path();
        assert_eq!(reason(root, None), "missing");
        assert_eq!(reason(root, Some("/bin/sh")), "absolute");
        assert_eq!(reason(root, Some("nope.sh")), "not_found");
        assert_eq!(reason(root, Some("../outside.sh")), "outside_agents_dir");
        assert_eq!(reason(root, Some("link.sh")), "outside_agents_dir");
        assert_eq!(reason(root, Some("sub")), "not_a_file");
        assert_eq!(reason(root, Some("plain.txt")), "not_executable");
        assert_eq!(resolve(&root.join("missing-dir"), Some("x")).unwrap_err().reason, "agents_dir_missing");
    }
}
