//! `loadgen ledger`: N clients, each its own user, doing reserve→commit and reserve→release
//! pairs through `nanobanana::ledger`, each operation in its own transaction as callers do:
//! a request transaction that reserves and inserts the generation, and a settle transaction.
//! The worker's claim of the job (queued → processing, a job-system write that belongs to the
//! pipeline) is not a ledger operation: by default the generation is inserted already leased;
//! `--with-claim` inserts it queued and claims it in the settle transaction.
//!
//! Reference: pgbench tpcb-like at the same client count and duration. The two alternate for
//! `--rounds` rounds, so that a neighbour's burst of load hits both alike; the ratio reported is
//! the median of the rounds' ratios. Target: ratio ≥ 0.6.

use std::time::{Duration, Instant};

use anyhow::Context;
use nanobanana::db::{self, users};
use nanobanana::domain::{Credits, Model};
use nanobanana::jobs::new::{self as generations, NewGeneration};
use nanobanana::ledger::{self, Settled, Settlement};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::pgbench::Pgbench;
use crate::setup;
use crate::stats::{median, Samples};

const TARGET_RATIO: f64 = 0.6;
const FIRST_USER: i64 = 1_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrent clients (and Postgres connections).
    #[arg(long, default_value_t = 16)]
    clients: u32,
    /// Seconds of load per round, for the ledger and for pgbench each.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Alternating rounds of ledger and pgbench.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// pgbench scale factor (default: the client count, so its clients do not queue on one row).
    #[arg(long)]
    scale: Option<u32>,
    /// Insert generations queued and claim each in its settle transaction, as a worker would.
    #[arg(long)]
    with_claim: bool,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Phase {
    pairs: Samples,
    reserves: Samples,
    settles: Samples,
    seconds: f64,
    audit_clean: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.duration > 0 && args.rounds > 0,
        "--clients, --duration and --rounds must be positive"
    );
    let scale = args.scale.unwrap_or(args.clients);
    let pgbench = Pgbench::init(scale).await?;
    let claim = if args.with_claim { "with the worker's claim" } else { "ledger operations only" };
    println!(
        "loadgen ledger: {} clients, {} rounds of {} s, {claim}",
        args.clients, args.rounds, args.duration
    );
    println!("{:<6} {:>12} {:>12} {:>7}", "round", "pairs/s", "pgbench tps", "ratio");
    let mut total = Phase { audit_clean: true, ..Phase::default() };
    let (mut rates, mut tps_all, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let phase = ledger_phase(&args).await?;
        let tps = pgbench.tpcb_like(args.clients, args.duration).await?;
        let rate = phase.pairs.len() as f64 / phase.seconds;
        println!("{round:<6} {rate:>12.1} {tps:>12.1} {:>7.2}", rate / tps);
        rates.push(rate);
        tps_all.push(tps);
        ratios.push(rate / tps);
        total.pairs.extend(phase.pairs);
        total.reserves.extend(phase.reserves);
        total.settles.extend(phase.settles);
        total.audit_clean &= phase.audit_clean;
    }
    let (rate, tps, ratio) = (median(&mut rates), median(&mut tps_all), median(&mut ratios));

    println!();
    println!("{:<24} {:>9} {:>9} {:>9}", "latency (all rounds)", "count", "p50 ms", "p99 ms");
    let mut figures = serde_json::Map::new();
    for (name, key, samples) in [
        ("pair (reserve + settle)", "pair", &mut total.pairs),
        ("  reserve transaction", "reserve", &mut total.reserves),
        ("  settle transaction", "settle", &mut total.settles),
    ] {
        let (p50, p99) = (samples.percentile_ms(50.0), samples.percentile_ms(99.0));
        println!("{name:<24} {:>9} {p50:>9.2} {p99:>9.2}", samples.len());
        figures.insert(format!("{key}_count"), samples.len().into());
        figures.insert(format!("{key}_p50_ms"), round(p50).into());
        figures.insert(format!("{key}_p99_ms"), round(p99).into());
    }
    println!("ledger: {rate:.1} pairs/s = {:.1} operations/s (median of rounds)", 2.0 * rate);
    println!("reference: pgbench tpcb-like, scale {scale}, {} clients: {tps:.1} tps (median)", args.clients);
    let verdict = if ratio >= TARGET_RATIO { "met" } else { "NOT met" };
    println!("ratio: ledger pairs/s ÷ pgbench tps = {ratio:.2}, median of rounds (target ≥ {TARGET_RATIO}: {verdict})");
    println!("audit after every round: {}", if total.audit_clean { "clean" } else { "VIOLATIONS" });
    if args.json {
        let mut json = serde_json::Map::new();
        json.insert("benchmark".into(), "ledger".into());
        json.insert("clients".into(), args.clients.into());
        json.insert("duration_s".into(), args.duration.into());
        json.insert("rounds".into(), args.rounds.into());
        json.insert("with_claim".into(), args.with_claim.into());
        json.insert("pairs_per_s".into(), round(rate).into());
        json.insert("ops_per_s".into(), round(2.0 * rate).into());
        json.extend(figures);
        json.insert(
            "reference".into(),
            serde_json::json!({ "name": "pgbench tpcb-like", "scale": scale, "clients": args.clients, "tps": round(tps) }),
        );
        json.insert("round_ratios".into(), ratios.iter().map(|r| round(*r)).collect::<Vec<_>>().into());
        json.insert("ratio".into(), round(ratio).into());
        json.insert("target_ratio".into(), TARGET_RATIO.into());
        json.insert("audit_clean".into(), total.audit_clean.into());
        println!("{}", serde_json::Value::Object(json));
    }
    anyhow::ensure!(total.audit_clean, "the audit found violations after the benchmark");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One round of ledger load on a fresh database, audited afterwards.
async fn ledger_phase(args: &Args) -> anyhow::Result<Phase> {
    let url = setup::fresh_database("nanobanana_loadgen_ledger").await?;
    let pool = PgPoolOptions::new()
        .max_connections(args.clients)
        .min_connections(args.clients)
        .test_before_acquire(false)
        .connect(url.as_str())
        .await
        .context("connecting to the benchmark database")?;
    db::migrate(&pool).await?;
    for client in 0..args.clients {
        fund(&pool, FIRST_USER + i64::from(client)).await?;
    }
    setup::checkpoint(&url).await;
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|client| {
            let user_id = FIRST_USER + i64::from(client);
            tokio::spawn(client_loop(pool.clone(), user_id, deadline, args.with_claim))
        })
        .collect();
    let mut phase = Phase::default();
    for task in tasks {
        let stats = task.await??;
        phase.pairs.extend(stats.pairs);
        phase.reserves.extend(stats.reserves);
        phase.settles.extend(stats.settles);
    }
    phase.seconds = started.elapsed().as_secs_f64();
    // The ledger alone is measured: no worker stored an image for the commits. Outside the
    // timed part, they are given the keys a worker would have recorded, so that the audit's
    // `succeeded_with_result` judges the ledger and not the benchmark's shortcut.
    sqlx::query(
        "UPDATE generations SET result_key = 'loadgen/original.png', preview_key = 'loadgen/preview.jpg'
         WHERE status = 'succeeded' AND result_key IS NULL",
    )
    .execute(&pool)
    .await?;
    let report = nanobanana::audit::run(&mut *pool.acquire().await?).await?;
    if !report.clean {
        eprintln!("{report}");
    }
    phase.audit_clean = report.clean;
    pool.close().await;
    Ok(phase)
}

async fn fund(pool: &PgPool, user_id: i64) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    users::ensure(&mut tx, &users::NewUser { telegram_id: user_id, ..Default::default() }).await?;
    let reason = ledger::Reason::parse("benchmark funds")?;
    let key = format!("loadgen-{user_id}");
    let adjustment = ledger::Adjustment {
        user_id,
        direction: ledger::Direction::Grant,
        credits: Credits::new(500_000_000)?,
        reason: &reason,
        actor: "loadgen",
        idempotency_key: &key,
    };
    ledger::adjust(&mut tx, &adjustment).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts the generation already claimed (processing under lease epoch 1), as the worker's
/// claim would leave it, so that the pair holds ledger operations only.
async fn insert_leased(conn: &mut sqlx::PgConnection, generation: &NewGeneration<'_>) -> anyhow::Result<i64> {
    sqlx::query(
        "INSERT INTO generations (id, user_id, prompt, model, aspect_ratio, cost, source_key,
                                  status, lease_epoch, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing', 1, now())",
    )
    .bind(generation.id)
    .bind(generation.user_id)
    .bind(generation.prompt)
    .bind(generation.model.as_str())
    .bind(generation.aspect_ratio)
    .bind(generation.cost.get())
    .bind(generation.source_key)
    .execute(&mut *conn)
    .await?;
    Ok(1)
}

async fn client_loop(
    pool: PgPool,
    user_id: i64,
    deadline: Instant,
    with_claim: bool,
) -> anyhow::Result<Phase> {
    let cost = Credits::new(10)?;
    let mut stats = Phase::default();
    let mut commit = true;
    while Instant::now() < deadline {
        let id = Uuid::now_v7();
        let source_key = id.to_string();
        let generation = NewGeneration {
            id,
            user_id,
            prompt: "benchmark",
            model: Model::parse("nb21").expect("a catalog key"),
            model_id: None,
            image_size: None,
            aspect_ratio: "1:1",
            cost,
            source_key: &source_key,
        };
        let t0 = Instant::now();
        let mut tx = pool.begin().await?;
        ledger::reserve(&mut tx, user_id, id, cost).await?;
        let leased = if with_claim {
            anyhow::ensure!(generations::insert(&mut tx, &generation).await?, "duplicate generation");
            None
        } else {
            Some(insert_leased(&mut tx, &generation).await?)
        };
        tx.commit().await?;
        let t1 = Instant::now();
        let mut tx = pool.begin().await?;
        let epoch = match leased {
            Some(epoch) => epoch,
            None => generations::start(&mut tx, id).await?.context("generation not queued")?,
        };
        let settlement = if commit { Settlement::Commit } else { Settlement::Release { error: "benchmark" } };
        let settled = ledger::settle(&mut tx, id, epoch, settlement).await?;
        anyhow::ensure!(matches!(settled, Settled::Now(_)), "settlement was stale");
        tx.commit().await?;
        let t2 = Instant::now();
        stats.reserves.push(t1 - t0);
        stats.settles.push(t2 - t1);
        stats.pairs.push(t2 - t0);
        commit = !commit;
    }
    Ok(stats)
}
