//! The command-line crate: a binary named after the API (`runagent`) over
//! the generated client, one command per operation (see `plan.rs` for the
//! names), plus spec-independent support files copied verbatim from
//! `templates/cli/` (output formats, settings and profiles, exit codes,
//! input parsing, the progress indicator).
//!
//! The commands call the client's own request builders, so they get its
//! retries, validation, pagination, stream resumption and typed errors;
//! values cross from the command line into the client's types through
//! JSON (`input.rs`), which lets one conversion serve every shape.

mod args;
mod commands;
pub mod plan;
mod run;

pub use args::TAKEN_FLAGS;

use super::client::Plan;
use super::{EmitError, Files, versions};
use crate::config::Names;
use crate::ir::Api;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Support files copied into `src/`, by file name.
pub const SUPPORT: &[(&str, &str)] = &[
    ("failure.rs", include_str!("../../../../templates/cli/failure.rs")),
    ("input.rs", include_str!("../../../../templates/cli/input.rs")),
    ("output.rs", include_str!("../../../../templates/cli/output.rs")),
    ("progress.rs", include_str!("../../../../templates/cli/progress.rs")),
    ("settings.rs", include_str!("../../../../templates/cli/settings.rs")),
];

/// Emits `cli/`.
pub fn emit(api: &Api, names: &Names, files: &mut Files) -> Result<(), EmitError> {
    let plan = Plan::new(api, names);
    let entries = plan::plan(api);
    let lib_path: TokenStream = {
        let lib = format_ident!("{}", names.client_lib());
        quote!(::#lib::)
    };
    let dir = "cli";
    files.toml(format!("{dir}/Cargo.toml"), cargo_toml(api, names));
    files.markdown(format!("{dir}/README.md"), readme(api, names));
    files.rust(format!("{dir}/src/lib.rs"), lib_rs(api, names), "command-line lib")?;
    files.rust(format!("{dir}/src/main.rs"), main_rs(names), "command-line main")?;
    files.rust(
        format!("{dir}/src/commands.rs"),
        commands::commands_rs(&plan, api, &entries, &lib_path),
        "command-line commands",
    )?;
    for (name, source) in SUPPORT {
        files.verbatim(format!("{dir}/src/{name}"), source);
    }
    Ok(())
}

fn cargo_toml(api: &Api, names: &Names) -> String {
    let deps: String = versions::CLI.iter().map(|(name, spec)| format!("{name} = {spec}\n")).collect();
    let title = api.title.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"[package]
name = "{name}"
version = "{version}"
description = "Command-line client for the {title}"
edition = "2024"
rust-version = "1.88"
license = "MIT OR Apache-2.0"
readme = "README.md"
categories = ["command-line-utilities", "api-bindings"]

[lib]
path = "src/lib.rs"

[[bin]]
name = "{binary}"
path = "src/main.rs"

[dependencies]
{client} = {{ path = "../client", version = "{version}" }}
{deps}"#,
        name = names.cli_crate,
        version = names.crate_version,
        binary = names.cli_binary,
        client = names.client_crate,
    )
}

fn main_rs(names: &Names) -> TokenStream {
    let lib = format_ident!("{}", names.cli_lib());
    let doc = format!(" The `{}` command.", names.cli_binary);
    quote! {
        #![doc = #doc]
        fn main() -> ::std::process::ExitCode {
            ::#lib::main()
        }
    }
}

fn lib_rs(api: &Api, names: &Names) -> TokenStream {
    let client = format_ident!("{}", names.client_lib());
    let bin = &names.cli_binary;
    let prefix = &names.env_prefix;
    let (key_env, url_env) = (names.api_key_env(), names.base_url_env());
    let (profile_env, config_env) = (format!("{prefix}_PROFILE"), format!("{prefix}_CONFIG"));
    let about = format!("Command-line client for the {} (version {}).", api.title, api.version);
    let long_about = format!(
        "{about}\n\nThe API key comes from --api-key, ${key_env}, or the profile's `api_key` in the configuration file \
         (--config, ${config_env}, default: <config folder>/{bin}/config.toml; profile from --profile, ${profile_env}, \
         or `default_profile`). The base URL likewise from --base-url, ${url_env} or the profile's `base_url`.\n\n\
         Output is JSON (one value per line for lists and streams) when standard output is not a terminal, and a \
         table otherwise; --output chooses.\n\n\
         Exit codes: 0 success, 1 the API refused the request, 2 usage, 3 authentication, 4 not found, 5 rate \
         limited, 6 server error, 7 network, 8 the operation or stream failed."
    );
    let crate_doc = format!(
        " The `{bin}` command: every operation of the {} from a shell, over the `{}` crate.\n\n See the README for the commands and exit codes.",
        api.title, names.client_crate
    );
    let key_help = format!("The API key (default: ${key_env}, then the profile's). Never printed.");
    let url_help = format!("The API's base URL (default: ${url_env}, then the profile's, then the spec's server).");
    let profile_help =
        format!("The configuration file's profile to use (default: ${profile_env}, then `default_profile`).");
    let config_help =
        format!("The configuration file (default: ${config_env}, then <config folder>/{bin}/config.toml).");
    quote! {
        #![doc = #crate_doc]

        /// The client crate the commands call.
        pub use ::#client as sdk;

        pub mod commands;
        // Each support file serves some specs only (a progress indicator
        // needs long-running operations), so parts go unused in others.
        #[allow(dead_code)]
        mod failure;
        #[allow(dead_code)]
        mod input;
        #[allow(dead_code)]
        mod output;
        #[allow(dead_code)]
        mod progress;
        #[allow(dead_code)]
        mod settings;

        pub use failure::code as exit_code;
        pub use output::Format;

        /// The command line.
        #[derive(::std::fmt::Debug, ::clap::Parser)]
        #[command(name = #bin, version, about = #about, long_about = #long_about)]
        pub struct Cli {
            /// Options every command takes.
            #[command(flatten)]
            pub global: Global,
            /// The command.
            #[command(subcommand)]
            pub command: commands::Command,
        }

        /// Options every command takes.
        #[derive(::std::fmt::Debug, ::clap::Args)]
        #[command(next_help_heading = "Global options")]
        pub struct Global {
            #[arg(long = "api-key", value_name = "KEY", global = true, help = #key_help)]
            pub api_key: Option<::std::string::String>,
            #[arg(long = "base-url", value_name = "URL", global = true, help = #url_help)]
            pub base_url: Option<::std::string::String>,
            #[arg(long = "profile", value_name = "NAME", global = true, help = #profile_help)]
            pub profile: Option<::std::string::String>,
            #[arg(long = "config", value_name = "FILE", global = true, help = #config_help)]
            pub config: Option<::std::path::PathBuf>,
            /// How many times a failed request is retried (default: the client's policy; 0 fails at once, even when rate limited).
            #[arg(long = "retries", value_name = "N", global = true)]
            pub retries: Option<u32>,
            /// The output format (default: json when piped, table on a terminal).
            #[arg(long = "output", short = 'o', value_enum, global = true)]
            pub output: Option<output::Format>,
        }

        /// Parses the command line, runs the command and gives the exit code.
        pub fn main() -> ::std::process::ExitCode {
            let cli = <Cli as ::clap::Parser>::parse();
            let runtime = match ::tokio::runtime::Builder::new_current_thread().enable_all().build() {
                ::std::result::Result::Ok(runtime) => runtime,
                ::std::result::Result::Err(e) => {
                    return failure::Failure::usage(::std::format!("cannot start: {e}")).report();
                }
            };
            match runtime.block_on(run(cli)) {
                ::std::result::Result::Ok(()) => ::std::process::ExitCode::SUCCESS,
                ::std::result::Result::Err(failure) => failure.report(),
            }
        }

        /// Runs a parsed command line.
        pub async fn run(cli: Cli) -> ::std::result::Result<(), failure::Failure> {
            if let commands::Command::Completions { shell } = &cli.command {
                let mut command = <Cli as ::clap::CommandFactory>::command();
                ::clap_complete::generate(*shell, &mut command, #bin, &mut ::std::io::stdout());
                return ::std::result::Result::Ok(());
            }
            let settings = settings::Sources {
                api_key: cli.global.api_key,
                base_url: cli.global.base_url,
                profile: cli.global.profile,
                config: cli.global.config,
                app: #bin,
                api_key_env: #key_env,
                base_url_env: #url_env,
                profile_env: #profile_env,
                config_env: #config_env,
            }
            .resolve()
            .map_err(failure::Failure::usage)?;
            let mut builder = sdk::Client::builder();
            if let ::std::option::Option::Some(key) = &settings.api_key {
                builder = builder.api_key(key.clone());
            }
            if let ::std::option::Option::Some(url) = &settings.base_url {
                builder = builder.base_url(url.clone());
            }
            if let ::std::option::Option::Some(retries) = cli.global.retries {
                builder = builder.max_retries(retries);
            }
            let missing_key = settings.api_key_missing();
            let client = builder.build().map_err(|e| {
                let mut failure = failure::Failure::from(e);
                if missing_key {
                    failure.lines.push(::std::format!("pass --api-key, set ${}, or add api_key to a profile", #key_env));
                }
                failure
            })?;
            let out = output::Output::new(cli.global.output);
            commands::dispatch(&client, &out, cli.command).await
        }
    }
}

fn readme(api: &Api, names: &Names) -> String {
    let bin = &names.cli_binary;
    let mut rows = String::new();
    let lines = plan::command_lines(api);
    for op in &api.operations {
        if let Some(line) = lines.get(&op.id) {
            let summary = op.summary.clone().unwrap_or_default().replace('|', "\\|");
            rows.push_str(&format!("| `{bin} {line}` | `{} {}` | {summary} |\n", op.method.as_str(), op.path));
        }
    }
    format!(
        r#"# {crate_name}

A command-line client for the {title}, generated from its OpenAPI spec
over the `{client}` crate (retries, pagination, stream resumption and
typed errors come from it). Every operation is a command:

```sh
# Installs `{bin}`.
cargo install --path .
# The commands, grouped by tag.
{bin} --help
{bin} completions bash > /etc/bash_completion.d/{bin}
```

| Command | Request | What it does |
|---|---|---|
{rows}
Path parameters are positional arguments; query and header parameters
are flags; a JSON body's fields are flags, or the whole body comes from
`--body JSON`, `--body @file.json` or `--body -` (standard input), with
flags set on top of it. `--all` fetches every page of a list, `--wait`
waits for a long-running operation with a progress indicator on a
terminal, and streams print their events as they arrive.

## Configuration

First match wins: the flags `--api-key` and `--base-url`, the variables
`{key_env}` and `{url_env}`, then a profile of the configuration file
(`--config`, `${prefix}_CONFIG`, or `$XDG_CONFIG_HOME/{bin}/config.toml`,
`~/.config/{bin}/config.toml` by default):

```toml
default_profile = "local"

[profiles.local]
api_key = "..."
base_url = "http://127.0.0.1:8450/v1"
```

`--profile NAME` (or `${prefix}_PROFILE`) picks another. The key is never
printed.

## Output

JSON when standard output is not a terminal (one value per line for
lists and streams, ready for `jq`), a table or text on a terminal;
`--output json|table|yaml` chooses.

## Exit codes

| Code | Meaning |
|---|---|
| 0 | success |
| 1 | the API refused the request (another 4xx) or answered unexpectedly |
| 2 | usage: bad arguments, flags, body or configuration |
| 3 | authentication: no key, or the key was refused (401, 403) |
| 4 | not found (404) |
| 5 | rate limited (429); the reset time is printed |
| 6 | the server failed (5xx) |
| 7 | network: connection, timeout, or a stream that could not resume |
| 8 | a long-running operation or a stream finished with a failure |

Errors go to standard error with the API's error code and message and the
request id.
"#,
        crate_name = names.cli_crate,
        title = api.title,
        client = names.client_crate,
        key_env = names.api_key_env(),
        url_env = names.base_url_env(),
        prefix = names.env_prefix,
    )
}
