use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = nanobanana::cli::Cli::parse();
    nanobanana::cli::run(cli).await
}
