//! Project automation: `cargo xtask codegen [--check] [--spec FILE] [--out DIR]`.
//!
//! Run through the alias in `.cargo/config.toml`.

mod codegen;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
        /// The spec to read.
        #[arg(long, default_value = "spec/openapi.yaml")]
        spec: PathBuf,
        /// The folder to write into.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codegen { check, spec, out } => {
            let root = codegen::project_root();
            let mode = if check { codegen::Mode::Check } else { codegen::Mode::Write };
            codegen::run(&root.join(spec), &root.join(out), mode)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
