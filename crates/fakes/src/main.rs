//! `fakes telegram|gemini|yookassa --listen ADDR [options]`: runs one fake until Ctrl-C.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = fakes::cli::Cli::parse();
    fakes::cli::init_tracing();
    match fakes::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
