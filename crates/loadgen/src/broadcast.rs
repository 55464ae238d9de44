//! `loadgen broadcast`: a broadcast to `--recipients` users while `--users` users generate
//! pictures, against the same load without the broadcast (the reference, measured first in the
//! same run). Real `serve` and `worker` processes (`loadgen::scenario::System`) against the
//! fakes; the fake Telegram takes what the sender sends (the sender keeps Telegram's 30
//! messages/s itself). Reports the broadcast's messages/s and the p99 delay of the paid
//! pictures — from the generation's settlement to its photo reaching Telegram — in both runs
//! (target: the broadcast adds less than 2 s to the p99). The broadcast is canceled at the end
//! of the window (10,000 recipients take minutes at Telegram's pace).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use loadgen::scenario::system::ADMIN;
use loadgen::scenario::{Role, Setup, System};
use serde_json::json;

use crate::setup;
use crate::stats::Samples;

const FIRST_RECIPIENT: i64 = 50_000_000;
const FIRST_USER: i64 = 60_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users the broadcast goes to (besides the generating users).
    #[arg(long, default_value_t = 10_000)]
    recipients: i64,
    /// Users generating pictures meanwhile.
    #[arg(long, default_value_t = 100)]
    users: i64,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 40)]
    duration: u64,
    /// Each generating user sends a prompt this often (each costs about three messages: the
    /// status message, its final edit and the photo; Telegram's budget is 30 a second).
    #[arg(long, default_value_t = 20)]
    prompt_every_secs: u64,
    /// The nanobanana binary (default: next to this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// What one run measured.
#[derive(Debug, Default, serde::Serialize)]
struct Measured {
    pictures: usize,
    photo_p50_ms: f64,
    photo_p99_ms: f64,
    broadcast_sent: i64,
    broadcast_per_second: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.users > 0 && args.duration > 0 && args.prompt_every_secs > 0);
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?.with_file_name("nanobanana"),
    };
    anyhow::ensure!(binary.exists(), "{} not found: `cargo build --release -p nanobanana`", binary.display());
    let reference = one_run(&args, &binary, false).await.context("the run without a broadcast")?;
    let broadcast = one_run(&args, &binary, true).await.context("the run with a broadcast")?;
    let added = broadcast.photo_p99_ms - reference.photo_p99_ms;
    println!(
        "loadgen broadcast: {} recipients, {} users generating for {} s",
        args.recipients, args.users, args.duration
    );
    println!("{:<22} {:>9} {:>12} {:>12} {:>12}", "", "pictures", "photo p50", "photo p99", "broadcast/s");
    for (name, m) in [("without a broadcast", &reference), ("with a broadcast", &broadcast)] {
        println!(
            "{name:<22} {:>9} {:>9.0} ms {:>9.0} ms {:>12.1}",
            m.pictures, m.photo_p50_ms, m.photo_p99_ms, m.broadcast_per_second
        );
    }
    println!("the broadcast adds {added:.0} ms to the paid pictures' p99 (target < 2000 ms)");
    if args.json {
        println!(
            "{}",
            json!({"recipients": args.recipients, "users": args.users, "duration_s": args.duration,
                   "reference": reference, "broadcast": broadcast, "p99_added_ms": added,
                   "ratio": if reference.photo_p99_ms > 0.0 { broadcast.photo_p99_ms / reference.photo_p99_ms } else { 0.0 }})
        );
    }
    Ok(())
}

async fn one_run(args: &Args, binary: &std::path::Path, with_broadcast: bool) -> anyhow::Result<Measured> {
    let name = if with_broadcast { "loadgen_broadcast" } else { "loadgen_broadcast_ref" };
    let database_url = setup::fresh_database(name).await?;
    let migrated = tokio::process::Command::new(binary)
        .arg("migrate")
        .env("DATABASE_URL", database_url.as_str())
        .status()
        .await
        .context("nanobanana migrate")?;
    anyhow::ensure!(migrated.success(), "nanobanana migrate failed");
    let workdir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let setup = Setup {
        binary: binary.to_owned(),
        database_url,
        redis_url: std::env::var("REDIS_URL")
            .unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned()),
        serves: 1,
        workers: 1,
        grace_secs: 10,
        gemini_latency: Duration::from_millis(300),
        workdir: workdir.clone(),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let system = System::start_with(setup, vec![(Role::Serve, Some(port)), (Role::Worker, None)]).await?;
    prepare(&system, args, with_broadcast).await?;
    let started = Instant::now();
    if with_broadcast {
        system
            .tg
            .send_command(ADMIN, "broadcast", Some("new <b>News</b>: a new model"))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        wait_for(&system, "the draft", "SELECT COUNT(*) FROM broadcasts", 1).await?;
        system.tg.send_command(ADMIN, "broadcast", Some("confirm")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        wait_for(&system, "the confirmation", "SELECT COUNT(*) FROM broadcasts WHERE state = 'running'", 1)
            .await?;
    }
    let load = generate(&system, args).await;
    let window = started.elapsed();
    if with_broadcast {
        system.tg.send_command(ADMIN, "broadcast", Some("cancel")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    load?;
    let measured = measure(&system, window).await?;
    system.terminate_all(Duration::from_secs(20)).await;
    system.close();
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(measured)
}

/// The broadcast's recipients (users who wrote once, in the fake Telegram too) and the
/// generating users, funded through the ledger.
async fn prepare(system: &Arc<System>, args: &Args, with_broadcast: bool) -> anyhow::Result<()> {
    if with_broadcast {
        sqlx::query(
            "INSERT INTO users (telegram_id, language, last_seen_at)
             SELECT g, 'en', now() FROM generate_series($1::BIGINT, $2::BIGINT) g",
        )
        .bind(FIRST_RECIPIENT)
        .bind(FIRST_RECIPIENT + args.recipients - 1)
        .execute(&system.pool)
        .await?;
        let mut tg = system.tg.state().lock();
        for user in FIRST_RECIPIENT..FIRST_RECIPIENT + args.recipients {
            tg.ensure_user(fakes::telegram::users::user_object(user, &Default::default()));
        }
    }
    for user in FIRST_USER..FIRST_USER + args.users {
        let new = nanobanana::db::users::NewUser { telegram_id: user, username: None, first_name: None };
        nanobanana::db::users::ensure(&mut *system.pool.acquire().await?, &new).await?;
        let reason = nanobanana::ledger::Reason::parse("loadgen broadcast")?;
        let key = format!("loadgen-broadcast-{user}");
        let adjustment = nanobanana::ledger::Adjustment {
            user_id: user,
            direction: nanobanana::ledger::Direction::Grant,
            credits: nanobanana::domain::Credits::new(100_000)?,
            reason: &reason,
            actor: "loadgen",
            idempotency_key: &key,
        };
        let mut tx = system.pool.begin().await?;
        nanobanana::ledger::adjust(&mut tx, &adjustment).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Every generating user sends a prompt every `prompt_every_secs`, staggered, for `duration`.
async fn generate(system: &Arc<System>, args: &Args) -> anyhow::Result<()> {
    let every = Duration::from_secs(args.prompt_every_secs);
    let end = Instant::now() + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.users)
        .map(|n| {
            let system = system.clone();
            let offset = every.mul_f64(n as f64 / args.users as f64);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut k = 0;
                while Instant::now() < end {
                    let _ = system.tg.send_text(FIRST_USER + n, &format!("a banana number {k}"));
                    k += 1;
                    tokio::time::sleep(every).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    // The pictures asked for in the window are delivered before measuring.
    let limit = Instant::now() + Duration::from_secs(120);
    while Instant::now() < limit {
        let left = system
            .count(
                "SELECT COUNT(*) FROM generations g
                 WHERE g.status IN ('queued', 'processing')
                    OR (g.status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM outbox o
                        WHERE o.delivers = g.id AND o.method = 'sendPhoto' AND o.state = 'sent'))",
            )
            .await?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("pictures still undelivered two minutes after the load ended")
}

async fn wait_for(system: &System, what: &str, sql: &str, want: i64) -> anyhow::Result<()> {
    let limit = Instant::now() + Duration::from_secs(60);
    while Instant::now() < limit {
        if system.count(sql).await? >= want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{what} did not happen within a minute")
}

async fn measure(system: &System, window: Duration) -> anyhow::Result<Measured> {
    let delays: Vec<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (o.sent_at - g.completed_at))::FLOAT8 FROM generations g
         JOIN outbox o ON o.delivers = g.id AND o.method = 'sendPhoto' AND o.state = 'sent'
         WHERE g.status = 'succeeded'",
    )
    .fetch_all(&system.pool)
    .await?;
    let mut samples = Samples::default();
    for delay in &delays {
        samples.push(Duration::from_secs_f64(delay.max(0.0)));
    }
    let sent = system.count("SELECT COUNT(*) FROM outbox WHERE class = 3 AND state = 'sent'").await?;
    Ok(Measured {
        pictures: samples.len(),
        photo_p50_ms: samples.percentile_ms(50.0),
        photo_p99_ms: samples.percentile_ms(99.0),
        broadcast_sent: sent,
        broadcast_per_second: sent as f64 / window.as_secs_f64().max(0.001),
    })
}
