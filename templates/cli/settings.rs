//! Where the API key and base URL come from, first match wins: the
//! `--api-key` / `--base-url` flags, the environment variables the client
//! reads, then a profile of the configuration file. The key is never
//! printed: `Settings`'s `Debug` hides it and errors name only its source.

use std::path::PathBuf;

/// The connection settings in force.
#[derive(Clone, Default)]
pub struct Settings {
    /// The API key, if any.
    pub api_key: Option<String>,
    /// The base URL, if any (otherwise the spec's server).
    pub base_url: Option<String>,
}

impl Settings {
    /// Whether no source gave a key, so a refusal to build a client can say
    /// where one goes.
    pub fn api_key_missing(&self) -> bool {
        self.api_key.is_none()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// One `[profiles.NAME]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    api_key: Option<String>,
    base_url: Option<String>,
}

/// The configuration file:
///
/// ```toml
/// default_profile = "local"
///
/// [profiles.local]
/// api_key = "..."
/// base_url = "http://127.0.0.1:8450/v1"
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Profile>,
}

/// What the command line and the environment say about where to look.
#[derive(Debug)]
pub struct Sources<'a> {
    /// `--api-key`.
    pub api_key: Option<String>,
    /// `--base-url`.
    pub base_url: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// The command's name: the folder under the user's configuration
    /// folder, and the prefix of nothing else.
    pub app: &'a str,
    /// The environment variable of the key (e.g. `RUNAGENT_API_KEY`).
    pub api_key_env: &'a str,
    /// The environment variable of the base URL.
    pub base_url_env: &'a str,
    /// The environment variable naming a profile.
    pub profile_env: &'a str,
    /// The environment variable naming a configuration file.
    pub config_env: &'a str,
}

/// The default configuration file: `$XDG_CONFIG_HOME/<app>/config.toml`,
/// else `~/.config/<app>/config.toml` (`%APPDATA%\<app>\config.toml` on
/// Windows).
pub fn default_path(app: &str) -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base =
        var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|home| home.join(".config"))).or_else(|| var("APPDATA"))?;
    Some(base.join(app).join("config.toml"))
}

impl Sources<'_> {
    /// The settings in force. A configuration file that was named (by flag
    /// or variable) must exist; the default one may be missing. A profile
    /// that was named must exist in it.
    pub fn resolve(self) -> Result<Settings, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let named = self.config.clone().or_else(|| env(self.config_env).map(PathBuf::from));
        let path = named.clone().or_else(|| default_path(self.app));
        let file = match &path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => toml::from_str::<File>(&text)
                    .map_err(|e| format!("the configuration file {} is not valid: {e}", path.display()))?,
                Err(e) if named.is_some() => {
                    return Err(format!("cannot read the configuration file {}: {e}", path.display()));
                }
                Err(_) => File::default(),
            },
            None => File::default(),
        };
        let asked = self.profile.clone().or_else(|| env(self.profile_env));
        let name = asked.clone().or(file.default_profile.clone()).unwrap_or_else(|| "default".to_owned());
        let profile = match file.profiles.get(&name) {
            Some(profile) => profile,
            None if asked.is_some() || file.default_profile.is_some() => {
                let where_ = path.map(|p| p.display().to_string()).unwrap_or_else(|| "no configuration file".into());
                return Err(format!("no profile `{name}` in {where_}"));
            }
            None => &Profile::default(),
        };
        Ok(Settings {
            api_key: self.api_key.or_else(|| env(self.api_key_env)).or_else(|| profile.api_key.clone()),
            base_url: self.base_url.or_else(|| env(self.base_url_env)).or_else(|| profile.base_url.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_never_shown() {
        let settings = Settings { api_key: Some("secret".into()), base_url: None };
        assert!(!format!("{settings:?}").contains("secret"));
    }

    #[test]
    fn profiles_fill_what_flags_leave_out() {
        let dir = std::env::temp_dir().join(format!("cli-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "default_profile = \"a\"\n[profiles.a]\napi_key = \"k\"\nbase_url = \"http://a\"\n")
            .unwrap();
        let sources = |profile: Option<&str>| Sources {
            api_key: None,
            base_url: Some("http://flag".into()),
            profile: profile.map(str::to_owned),
            config: Some(path.clone()),
            app: "test-app",
            api_key_env: "CLI_SETTINGS_TEST_UNSET_KEY",
            base_url_env: "CLI_SETTINGS_TEST_UNSET_URL",
            profile_env: "CLI_SETTINGS_TEST_UNSET_PROFILE",
            config_env: "CLI_SETTINGS_TEST_UNSET_CONFIG",
        };
        let settings = sources(None).resolve().unwrap();
        assert_eq!(settings.api_key.as_deref(), Some("k"));
        assert_eq!(settings.base_url.as_deref(), Some("http://flag"));
        assert!(sources(Some("b")).resolve().unwrap_err().contains("no profile `b`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
