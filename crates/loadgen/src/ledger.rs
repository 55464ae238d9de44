//! `loadgen ledger`: N clients, each its own user, doing reserve→commit and reserve→release
//! pairs through `nanobanana::ledger` exactly as the service does (a request transaction that
//! reserves and inserts the generation; a worker transaction that starts and settles it).
//! Reference: pgbench tpcb-like at the same client count and duration. Target: ratio ≥ 0.6.

use std::time::{Duration, Instant};

use anyhow::Context;
use nanobanana::db::{self, generations::NewGeneration, users};
use nanobanana::domain::{Credits, Model};
use nanobanana::ledger::{self, Settled, Settlement};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::pgbench;
use crate::setup;
use crate::stats::Samples;

const TARGET_RATIO: f64 = 0.6;
const FIRST_USER: i64 = 1_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrent clients (and Postgres connections).
    #[arg(long, default_value_t = 16)]
    clients: u32,
    /// Seconds of load, for both the ledger and pgbench.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// pgbench scale factor (default: the client count, so its clients do not queue on one row).
    #[arg(long)]
    scale: Option<u32>,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct ClientStats {
    pairs: Samples,
    reserves: Samples,
    settles: Samples,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0 && args.duration > 0, "--clients and --duration must be positive");
    let url = setup::fresh_database("nanobanana_loadgen_ledger").await?;
    let pool = PgPoolOptions::new()
        .max_connections(args.clients)
        .min_connections(args.clients)
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
        .map(|client| tokio::spawn(client_loop(pool.clone(), FIRST_USER + i64::from(client), deadline)))
        .collect();
    let mut total = ClientStats::default();
    for task in tasks {
        let stats = task.await??;
        total.pairs.extend(stats.pairs);
        total.reserves.extend(stats.reserves);
        total.settles.extend(stats.settles);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let report = nanobanana::audit::run(&mut *pool.acquire().await?).await?;
    pool.close().await;

    let scale = args.scale.unwrap_or(args.clients);
    let tps = pgbench::tpcb_like(args.clients, args.duration, scale).await?;
    let pairs_per_s = total.pairs.len() as f64 / elapsed;
    let ratio = pairs_per_s / tps;

    println!("loadgen ledger: {} clients, {} s", args.clients, args.duration);
    println!("{:<24} {:>9} {:>10} {:>9} {:>9}", "", "count", "per s", "p50 ms", "p99 ms");
    let mut rows = [
        ("pair (reserve + settle)", &mut total.pairs),
        ("  reserve transaction", &mut total.reserves),
        ("  settle transaction", &mut total.settles),
    ];
    let mut figures = serde_json::Map::new();
    for (name, samples) in rows.iter_mut() {
        let (p50, p99) = (samples.percentile_ms(50.0), samples.percentile_ms(99.0));
        let rate = samples.len() as f64 / elapsed;
        println!("{name:<24} {:>9} {rate:>10.1} {p50:>9.2} {p99:>9.2}", samples.len());
        let key = name.trim().split(' ').next().unwrap_or(name);
        figures.insert(format!("{key}_count"), samples.len().into());
        figures.insert(format!("{key}_per_s"), round(rate).into());
        figures.insert(format!("{key}_p50_ms"), round(p50).into());
        figures.insert(format!("{key}_p99_ms"), round(p99).into());
    }
    println!("operations/s (reserve + settle): {:.1}", 2.0 * pairs_per_s);
    println!(
        "reference: pgbench tpcb-like, scale {scale}, {} clients, {} s: {tps:.1} tps",
        args.clients, args.duration
    );
    let verdict = if ratio >= TARGET_RATIO { "met" } else { "NOT met" };
    println!("ratio: ledger pairs/s ÷ pgbench tps = {ratio:.2} (target ≥ {TARGET_RATIO}: {verdict})");
    println!("{report}");
    if args.json {
        let mut json = serde_json::Map::new();
        json.insert("benchmark".into(), "ledger".into());
        json.insert("clients".into(), args.clients.into());
        json.insert("duration_s".into(), args.duration.into());
        json.extend(figures);
        json.insert("ops_per_s".into(), round(2.0 * pairs_per_s).into());
        json.insert(
            "reference".into(),
            serde_json::json!({ "name": "pgbench tpcb-like", "scale": scale, "clients": args.clients, "tps": round(tps) }),
        );
        json.insert("ratio".into(), round(ratio).into());
        json.insert("target_ratio".into(), TARGET_RATIO.into());
        json.insert("audit_clean".into(), report.clean.into());
        println!("{}", serde_json::Value::Object(json));
    }
    anyhow::ensure!(report.clean, "the audit found violations after the benchmark");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
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

async fn client_loop(pool: PgPool, user_id: i64, deadline: Instant) -> anyhow::Result<ClientStats> {
    let cost = Credits::new(10)?;
    let mut stats = ClientStats::default();
    let mut commit = true;
    while Instant::now() < deadline {
        let id = Uuid::now_v7();
        let source_key = id.to_string();
        let t0 = Instant::now();
        let mut tx = pool.begin().await?;
        ledger::reserve(&mut tx, user_id, id, cost).await?;
        let generation = NewGeneration {
            id,
            user_id,
            prompt: "benchmark",
            model: Model::Flash,
            image_size: None,
            aspect_ratio: "1:1",
            cost,
            source_key: &source_key,
        };
        anyhow::ensure!(db::generations::insert(&mut tx, &generation).await?, "duplicate generation");
        tx.commit().await?;
        let t1 = Instant::now();
        let mut tx = pool.begin().await?;
        let epoch = db::generations::start(&mut tx, id).await?.context("generation not queued")?;
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
