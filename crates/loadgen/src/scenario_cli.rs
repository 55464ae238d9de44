//! `loadgen scenario`: the long end-to-end scenario (the driver is `loadgen::scenario`, shared
//! with the short `cargo test` version). Needs the `nanobanana` binary — build it first with
//! `cargo build --release -p nanobanana` — plus PostgreSQL (`DATABASE_URL`'s server) and Redis
//! (`REDIS_URL`). Prints the counts; `--json` ends with one JSON line; exits 1 if any
//! guarantee broke.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use loadgen::scenario::{self, ChaosOptions, Options, Setup};

use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated users.
    #[arg(long, default_value_t = 300)]
    users: usize,
    /// Seconds the users act while the chaos strikes.
    #[arg(long, default_value_t = 180)]
    duration: u64,
    /// Milliseconds between two user actions (each waits for its own HTTP calls, so the rate
    /// reached is lower). Telegram takes at most 30 messages a second from a bot and an action
    /// costs one to three: much faster, and replies queue in the outbox (users wait longer for
    /// their buttons, and the drain takes longer).
    #[arg(long, default_value_t = 20)]
    step_ms: u64,
    #[arg(long, default_value_t = 2)]
    serves: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Seed of the users' and the chaos' choices (default: the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// No faults at all: a baseline.
    #[arg(long)]
    no_chaos: bool,
    /// Seconds allowed for draining; dropped notifications need the reconciler (≥ 90 s) and
    /// a spent daily quota a probe (≤ 5 min).
    #[arg(long, default_value_t = 420)]
    drain: u64,
    /// The nanobanana binary (default: next to this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let binary = match args.binary {
        Some(binary) => binary,
        None => std::env::current_exe()?.with_file_name("nanobanana"),
    };
    anyhow::ensure!(
        binary.exists(),
        "{} not found: build it with `cargo build --release -p nanobanana` or pass --binary",
        binary.display()
    );
    let database_url = setup::fresh_database("loadgen_scenario").await?;
    let migrated = tokio::process::Command::new(&binary)
        .arg("migrate")
        .env("DATABASE_URL", database_url.as_str())
        .status()
        .await
        .context("nanobanana migrate")?;
    anyhow::ensure!(migrated.success(), "nanobanana migrate failed");
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs())
    });
    let workdir = std::env::temp_dir().join(format!("loadgen-scenario-{seed}"));
    let options = Options {
        setup: Setup {
            binary,
            database_url,
            redis_url: std::env::var("REDIS_URL")
                .unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned()),
            serves: args.serves,
            workers: args.workers,
            grace_secs: 15,
            gemini_latency: Duration::from_millis(300),
            workdir: workdir.clone(),
        },
        users: args.users,
        duration: Duration::from_secs(args.duration),
        step_every: Duration::from_millis(args.step_ms),
        chaos: (!args.no_chaos).then_some(ChaosOptions {
            every_ms: (500, 3000),
            kill_workers: true,
            kill_serves: true,
            drop_notifications: true,
            daily_quota: true,
            each_kind_first: true,
        }),
        seed,
        drain: Duration::from_secs(args.drain),
        persistent_retries: true,
        each_flow_first: true,
        act_until_flows_shown: false,
    };
    let report = scenario::run(options).await?;
    println!("{report}");
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    if report.passed() {
        let _ = std::fs::remove_dir_all(&workdir);
        Ok(())
    } else {
        anyhow::bail!("the scenario found {} problems (seed {seed})", report.problems.len())
    }
}
