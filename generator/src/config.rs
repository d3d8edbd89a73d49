//! What the generated crates are called and how they introduce themselves:
//! everything the output names that the spec does not say.
//!
//! Every field is optional; a missing one is derived from the spec's
//! `info.title` (`Pet Store API` gives `pet-store-client`,
//! `pet-store-server` and `PET_STORE_API_KEY`). The project's own values
//! live in `codegen.toml` at the workspace root.

use crate::ir::Api;
use crate::naming::{Case, sanitize};
use serde::Deserialize;

/// Names chosen by whoever runs the generator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The client crate's package name, e.g. `runagent-client`.
    pub client_crate: Option<String>,
    /// The server crate's package name, e.g. `runagent-server`.
    pub server_crate: Option<String>,
    /// The command-line crate's package name, e.g. `runagent-cli`; by
    /// default the client crate's name with `-cli` for `-client`.
    pub cli_crate: Option<String>,
    /// The command's name, e.g. `runagent`; by default the command-line
    /// crate's name without `-cli`.
    pub cli_binary: Option<String>,
    /// The prefix of the environment variables the client reads:
    /// `<PREFIX>_API_KEY` and `<PREFIX>_BASE_URL`.
    pub env_prefix: Option<String>,
    /// The realm named in the server's `WWW-Authenticate` challenge.
    pub auth_realm: Option<String>,
    /// The spec's path as the `@generated` line names it, relative to the
    /// workspace root (the generator reads text, so it cannot know it).
    pub spec_path: Option<String>,
    /// The version given to the generated crates (default `0.1.0`).
    pub crate_version: Option<String>,
}

/// The [`Config`] with every name decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The client crate's package name.
    pub client_crate: String,
    /// The server crate's package name.
    pub server_crate: String,
    /// The command-line crate's package name.
    pub cli_crate: String,
    /// The command's (binary's) name.
    pub cli_binary: String,
    /// The environment-variable prefix, upper snake case.
    pub env_prefix: String,
    /// The `WWW-Authenticate` realm.
    pub auth_realm: String,
    /// The spec path for the `@generated` line.
    pub spec_path: String,
    /// The crates' version.
    pub crate_version: String,
}

impl Names {
    /// Fills what `config` leaves out from the API's title.
    pub fn resolve(config: &Config, api: &Api) -> Names {
        let base = base_name(&api.title);
        let client_crate = config.client_crate.clone().unwrap_or_else(|| format!("{base}-client"));
        let cli_crate = config.cli_crate.clone().unwrap_or_else(|| match client_crate.strip_suffix("-client") {
            Some(stem) if !stem.is_empty() => format!("{stem}-cli"),
            _ => format!("{base}-cli"),
        });
        let cli_binary = config.cli_binary.clone().unwrap_or_else(|| {
            cli_crate.strip_suffix("-cli").filter(|s| !s.is_empty()).unwrap_or(&cli_crate).to_owned()
        });
        Names {
            client_crate,
            cli_crate,
            cli_binary,
            server_crate: config.server_crate.clone().unwrap_or_else(|| format!("{base}-server")),
            env_prefix: config
                .env_prefix
                .clone()
                .map(|p| sanitize(&p, Case::ScreamingSnake))
                .unwrap_or_else(|| sanitize(&base, Case::ScreamingSnake)),
            auth_realm: config.auth_realm.clone().unwrap_or_else(|| base.clone()),
            spec_path: config.spec_path.clone().unwrap_or_else(|| "the OpenAPI spec".to_owned()),
            crate_version: config.crate_version.clone().unwrap_or_else(|| "0.1.0".to_owned()),
        }
    }

    /// Refuses crate names Cargo would refuse (letters, digits, `-` and `_`,
    /// starting with a letter, at most 64 characters), which would also
    /// make invalid Rust paths in the generated code.
    pub fn check(&self) -> Result<(), crate::Diagnostics> {
        let bad: Vec<crate::Diagnostic> = [
            ("client", &self.client_crate),
            ("server", &self.server_crate),
            ("command-line", &self.cli_crate),
            ("command-line binary", &self.cli_binary),
        ]
            .into_iter()
            .filter(|(_, name)| {
                !name.starts_with(|c: char| c.is_ascii_alphabetic())
                    || name.len() > 64
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .map(|(side, name)| {
                crate::Diagnostic::new(
                    "#",
                    format!(
                        "the {side} crate name `{name}` is not a valid package name (letters, digits, `-` and `_`, starting with a letter)"
                    ),
                )
            })
            .collect();
        if bad.is_empty() { Ok(()) } else { Err(crate::Diagnostics(bad)) }
    }

    /// The client crate's name as a Rust path (`runagent_client`).
    pub fn client_lib(&self) -> String {
        self.client_crate.replace('-', "_")
    }

    /// The server crate's name as a Rust path (`runagent_server`).
    pub fn server_lib(&self) -> String {
        self.server_crate.replace('-', "_")
    }

    /// The command-line crate's name as a Rust path (`runagent_cli`).
    pub fn cli_lib(&self) -> String {
        self.cli_crate.replace('-', "_")
    }

    /// The variable holding the API key, e.g. `RUNAGENT_API_KEY`.
    pub fn api_key_env(&self) -> String {
        format!("{}_API_KEY", self.env_prefix)
    }

    /// The variable holding the base URL, e.g. `RUNAGENT_BASE_URL`.
    pub fn base_url_env(&self) -> String {
        format!("{}_BASE_URL", self.env_prefix)
    }
}

/// A crate-name stem from a title: kebab case, without a trailing `api`.
fn base_name(title: &str) -> String {
    let kebab = sanitize(title, Case::Snake).replace('_', "-");
    let trimmed = kebab.strip_suffix("-api").unwrap_or(&kebab).trim_matches('-');
    // A crate name must start with a letter.
    match trimmed.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => trimmed.to_owned(),
        Some(_) => format!("api-{trimmed}"),
        None => "api".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_title() {
        assert_eq!(base_name("Pet Store API"), "pet-store");
        assert_eq!(base_name("Link Example"), "link-example");
        assert_eq!(base_name("OpenAI API"), "open-ai");
        assert_eq!(base_name("3D printing"), "api-3d-printing");
        assert_eq!(base_name("!!!"), "unnamed");
    }

    #[test]
    fn crate_names_cargo_would_refuse_are_errors() {
        let spec = "openapi: 3.0.3\ninfo: {title: Pet Store API, version: '1'}\npaths:\n  /a:\n    get:\n      operationId: a\n      responses: {'204': {description: ok}}\n";
        let api = crate::load(spec).unwrap();
        let config = Config { client_crate: Some("openai-3.0-client".into()), ..Config::default() };
        let err = Names::resolve(&config, &api).check().unwrap_err();
        assert!(err.to_string().contains("`openai-3.0-client` is not a valid package name"), "{err}");
        assert!(Names::resolve(&Config::default(), &api).check().is_ok());
    }

    #[test]
    fn config_wins_over_the_title() {
        let api = crate::load(include_str!("../../tests/fixtures/minimal.yaml")).unwrap();
        let derived = Names::resolve(&Config::default(), &api);
        assert_eq!(derived.client_crate, "minimal-client");
        assert_eq!(derived.api_key_env(), "MINIMAL_API_KEY");
        let chosen =
            Config { client_crate: Some("pets".into()), env_prefix: Some("pet-store".into()), ..Config::default() };
        let names = Names::resolve(&chosen, &api);
        assert_eq!((names.client_crate.as_str(), names.client_lib().as_str()), ("pets", "pets"));
        assert_eq!(names.base_url_env(), "PET_STORE_BASE_URL");
        assert_eq!(names.server_crate, "minimal-server");
    }
}
