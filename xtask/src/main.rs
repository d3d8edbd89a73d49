//! Project automation: `cargo xtask codegen [--check] [--spec FILE] [--out DIR] [--config FILE]`
//! and `cargo xtask bench [--quick]`.
//!
//! Run through the alias in `.cargo/config.toml`.

mod bench;
mod codegen;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "RunAgent project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerates the client, the server stubs and the docs from the spec.
    Codegen {
        /// Writes nothing; fails if anything under the output folder differs.
        #[arg(long)]
        check: bool,
        /// The spec to read (default: the project's, with the names in
        /// `codegen.toml`).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// The folder to write into.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
        /// A codegen.toml naming the crates (default: `codegen.toml` for the
        /// project's spec; names derived from `info.title` for `--spec`).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        names: codegen::NameFlags,
        /// Fails (writing nothing) when the generator warns about the spec.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Benchmarks against the alternatives (see BENCHMARKS.md).
    Bench {
        /// Every row at tiny sizes in the dev profile: proves the harness works.
        #[arg(long)]
        quick: bool,
        /// Only these rows (1 to 8), comma-separated.
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<u32>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codegen { check, spec, out, config, names, deny_warnings } => {
            let root = codegen::project_root();
            let mode = if check { codegen::Mode::Check } else { codegen::Mode::Write };
            let defaults = spec.is_none() && config.is_none() && out == Path::new("generated") && names.is_empty();
            if defaults {
                codegen::run_all(mode, deny_warnings)
            } else {
                codegen::Job::new(spec, config, names).and_then(|mut job| {
                    job.deny_warnings = deny_warnings;
                    job.run(&root.join(out), mode)
                })
            }
        }
        Command::Bench { quick, only } => bench::run(&codegen::project_root(), quick, only),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
