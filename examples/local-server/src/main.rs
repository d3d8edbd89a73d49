//! `runagent-local`: the RunAgent API running for real on this machine.

use std::process::ExitCode;

use clap::Parser;
use runagent_local::cli::Cli;
use runagent_local::server;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to standard error, so that standard output carries only the
    // lines scripts read (the development key and `listening on ...`).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let mut stdout = std::io::stdout();
    match server::run(cli, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runagent-local: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
