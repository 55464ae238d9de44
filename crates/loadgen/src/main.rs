//! `loadgen`: the benchmarks of DESIGN §8. Each subcommand sets up what it needs, prints a
//! readable table, and with `--json` ends with one line holding one JSON object with every
//! figure, the reference measured in the same run, and their `ratio`.

mod broadcast;
mod intake;
mod ledger;
mod payments;
mod pgbench;
mod pipeline;
mod scenario_cli;
mod setup;
mod stats;
mod wrk;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "Benchmarks of Nano Banana Pro")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Concurrent clients doing reserve→commit and reserve→release pairs through the ledger,
    /// against pgbench's built-in tpcb-like script at the same client count and duration.
    Ledger(ledger::Args),
    /// The webhook under load: answer latency at a fixed rate, and peak updates/s, against
    /// pgbench tpcb-like at the same client count and duration.
    Intake(intake::Args),
    /// The generation worker end to end against the fake Gemini: generations/s, CPU time per
    /// generation, peak in flight and peak RSS.
    Pipeline(pipeline::Args),
    /// YooKassa notifications end to end (network check, raw event, GET from the fake,
    /// settlement): notifications/s and latency, each charge credited once.
    Payments(payments::Args),
    /// The end-to-end scenario: real `serve` and `worker` processes, hundreds of simulated
    /// users, a chaos driver; every guarantee checked once drained.
    Scenario(scenario_cli::Args),
    /// A broadcast to 10,000 users while 100 users generate: the broadcast's messages/s and the
    /// paid pictures' p99 delay, against the same load without the broadcast.
    Broadcast(broadcast::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The ledger's clients share one thread, as pgbench's do: on 2 cores the cross-thread
    // wake-ups of a multi-threaded runtime cost the client more CPU than its queries, CPU taken
    // from the Postgres it measures.
    let mut runtime = match cli.command {
        Command::Ledger(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Ledger(args) => ledger::run(args).await,
            Command::Intake(args) => intake::run(args).await,
            Command::Pipeline(args) => pipeline::run(args).await,
            Command::Payments(args) => payments::run(args).await,
            Command::Scenario(args) => scenario_cli::run(args).await,
            Command::Broadcast(args) => broadcast::run(args).await,
        }
    })
}
