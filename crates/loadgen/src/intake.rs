//! `loadgen intake`: the webhook under load. `serve` runs in this process against a fresh
//! database and the fake Telegram; updates (a mix of /start, /balance and prompts from many
//! users, half of them funded) are posted to its webhook over HTTP.
//!
//! Two phases: an open loop at a fixed offered rate (latency of each answer: p50/p99), then a
//! closed loop of `--clients` posting as fast as answers come (peak updates/s). Reference:
//! pgbench tpcb-like at the same client count and duration. Targets: p99 ≤ 20 ms at 500
//! updates/s; peak ≥ 0.5 × pgbench tps.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nanobanana::config::{Config, Role};
use nanobanana::db::users;
use nanobanana::domain::Credits;
use nanobanana::ledger;
use serde_json::json;
use tokio::sync::{watch, Semaphore};

use crate::pgbench::Pgbench;
use crate::setup;
use crate::stats::Samples;

const SECRET: &str = "loadgen-intake-secret-0123456789abcdef";
const FIRST_USER: i64 = 5_000_000;
const P99_TARGET_MS: f64 = 20.0;
const PEAK_TARGET_RATIO: f64 = 0.5;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Offered updates per second in the fixed-rate phase.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Seconds of each phase (and of pgbench).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Distinct users sending updates.
    #[arg(long, default_value_t = 2000)]
    users: i64,
    /// Concurrent clients in the peak phase and for pgbench.
    #[arg(long, default_value_t = 16)]
    clients: u32,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

struct Target {
    http: reqwest::Client,
    url: String,
    next_update: AtomicI64,
    errors: AtomicU64,
    users: i64,
}

impl Target {
    /// Posts one update of the mix; its latency, or `None` if the answer was not 200.
    async fn post(&self) -> Option<Duration> {
        let id = self.next_update.fetch_add(1, Ordering::Relaxed);
        let user = FIRST_USER + id.rem_euclid(self.users);
        let text = match id % 5 {
            0 | 1 => "/start".to_owned(),
            2 => "/balance".to_owned(),
            _ => format!("a banana number {id}"),
        };
        let update = json!({
            "update_id": id,
            "message": {
                "message_id": id, "date": 1_700_000_000, "text": text,
                "chat": {"id": user, "type": "private", "first_name": "L"},
                "from": {"id": user, "is_bot": false, "first_name": "L", "language_code": "ru"}
            }
        });
        let started = Instant::now();
        let answer = self
            .http
            .post(&self.url)
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(&update)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Some(started.elapsed()),
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.duration > 0 && args.users > 0 && args.clients > 0,
        "positive values only"
    );
    let url = setup::fresh_database("nanobanana_loadgen_intake").await?;
    let telegram = fakes::FakeTelegram::start(fakes::telegram::TelegramConfig::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let prefix = format!("loadgen:{}:", uuid::Uuid::new_v4().simple());
    let vars = [
        ("DATABASE_URL", url.to_string()),
        ("DATABASE_MAX_CONNECTIONS", args.clients.max(8).to_string()),
        ("TELEGRAM_BOT_TOKEN", telegram.token().to_owned()),
        ("TELEGRAM_WEBHOOK_SECRET", SECRET.to_owned()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("REDIS_PREFIX", prefix),
        ("MAX_IN_FLIGHT", "100".to_owned()),
        ("DAILY_GENERATION_CAP", "100000".to_owned()),
    ];
    let config = Config::from_lookup(Role::Serve, &|k| {
        vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(nanobanana::service::serve(config, listener, stopped));

    let target = Arc::new(Target {
        http: reqwest::Client::builder().pool_max_idle_per_host(256).build()?,
        url: format!("http://{address}/telegram/webhook"),
        next_update: AtomicI64::new(1),
        errors: AtomicU64::new(0),
        users: args.users,
    });
    // Warm up connections and caches before measuring (the first answer also means the
    // service has migrated its database).
    for _ in 0..200 {
        target.post().await.context("the service does not answer")?;
    }
    fund_half(&url, args.users).await?;
    setup::checkpoint(&url).await;
    let (mut latencies, offered_seconds) = fixed_rate(&target, args.rate, args.duration).await;
    let answered = latencies.len() as f64 / offered_seconds;
    let (p50, p99) = (latencies.percentile_ms(50.0), latencies.percentile_ms(99.0));
    setup::checkpoint(&url).await;
    let peak = closed_loop(&target, args.clients, args.duration).await;
    let errors = target.errors.load(Ordering::Relaxed);
    let _ = stop.send(true);
    server.await??;
    let tps = Pgbench::init(args.clients).await?.tpcb_like(args.clients, args.duration).await?;
    let ratio = peak / tps;

    println!("loadgen intake: {} users, {} s per phase", args.users, args.duration);
    println!("fixed rate: offered {} updates/s, answered {answered:.1}/s, p50 {p50:.2} ms, p99 {p99:.2} ms (target p99 ≤ {P99_TARGET_MS} ms: {})",
        args.rate, if p99 <= P99_TARGET_MS { "met" } else { "NOT met" });
    println!("peak: {peak:.1} updates/s with {} clients", args.clients);
    println!("reference: pgbench tpcb-like, scale {0}, {0} clients: {tps:.1} tps", args.clients);
    println!(
        "ratio: peak ÷ pgbench tps = {ratio:.2} (target ≥ {PEAK_TARGET_RATIO}: {})",
        if ratio >= PEAK_TARGET_RATIO { "met" } else { "NOT met" }
    );
    println!("non-200 answers: {errors}");
    if args.json {
        let json = json!({
            "benchmark": "intake", "users": args.users, "duration_s": args.duration,
            "offered_per_s": args.rate, "answered_per_s": round(answered),
            "p50_ms": round(p50), "p99_ms": round(p99), "p99_target_ms": P99_TARGET_MS,
            "peak_per_s": round(peak), "clients": args.clients, "errors": errors,
            "reference": { "name": "pgbench tpcb-like", "scale": args.clients, "clients": args.clients, "tps": round(tps) },
            "ratio": round(ratio), "target_ratio": PEAK_TARGET_RATIO,
        });
        println!("{json}");
    }
    anyhow::ensure!(errors == 0, "{errors} updates were not answered 200");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Grants credits to every other user so that their prompts reserve.
async fn fund_half(url: &url::Url, count: i64) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(url.as_str()).await?;
    let reason = ledger::Reason::parse("loadgen intake")?;
    for user in (FIRST_USER..FIRST_USER + count).step_by(2) {
        let mut tx = pool.begin().await?;
        users::ensure(&mut tx, &users::NewUser { telegram_id: user, ..Default::default() }).await?;
        let key = format!("intake-{user}");
        let grant = ledger::Adjustment {
            user_id: user,
            direction: ledger::Direction::Grant,
            credits: Credits::new(1_000_000)?,
            reason: &reason,
            actor: "loadgen",
            idempotency_key: &key,
        };
        ledger::adjust(&mut tx, &grant).await?;
        tx.commit().await?;
    }
    pool.close().await;
    Ok(())
}

/// Posts at `rate` per second for `seconds` regardless of answers (an open loop), with at most
/// 4096 updates outstanding; returns the latencies and the seconds it took.
async fn fixed_rate(target: &Arc<Target>, rate: u32, seconds: u64) -> (Samples, f64) {
    let outstanding = Arc::new(Semaphore::new(4096));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = u64::from(rate) * seconds;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        ticker.tick().await;
        let Ok(permit) = outstanding.clone().acquire_owned().await else { break };
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let latency = target.post().await;
            drop(permit);
            latency
        }));
    }
    let mut samples = Samples::default();
    for task in tasks {
        if let Ok(Some(latency)) = task.await {
            samples.push(latency);
        }
    }
    (samples, started.elapsed().as_secs_f64())
}

/// `clients` loops posting back to back for `seconds`; updates answered per second.
async fn closed_loop(target: &Arc<Target>, clients: u32, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut answered = 0u64;
                while Instant::now() < deadline {
                    if target.post().await.is_some() {
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    let mut answered = 0;
    for task in tasks {
        answered += task.await.unwrap_or(0);
    }
    answered as f64 / started.elapsed().as_secs_f64()
}
