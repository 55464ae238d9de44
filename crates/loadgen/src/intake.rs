//! `loadgen intake`: the webhook under load. `serve` runs in this process against a fresh
//! database and the fake Telegram; updates (a mix of /start, /balance and prompts from many
//! users, half of them funded) are posted to its webhook over HTTP.
//!
//! Two phases: an open loop at a fixed offered rate (latency of each answer: p50/p99; its first
//! `--warmup` seconds, the cold start after a checkpoint, reported apart), then a closed loop of `--clients` posting as fast as answers come (peak updates/s, and its
//! p50/p99). Reference: pgbench tpcb-like at the same client count and duration. Targets: p99
//! ≤ 20 ms at 500 updates/s; peak ≥ 0.5 × pgbench tps.
//!
//! `--wrk` reproduces the load of a neutral HTTP driver (wrk, 32 connections): every user has
//! credits, 90% prompts and 10% `/start`, every update new, 1,000 users, 32 clients, the open
//! loop at 1,000 updates/s; targets: closed loop ≥ 0.8 × pgbench with p99 ≤ 15 ms, open loop
//! p99 ≤ 10 ms.

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
const DEFAULT_RATE: u32 = 500;
const DEFAULT_USERS: i64 = 2000;
const DEFAULT_CLIENTS: u32 = 16;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Offered updates per second in the fixed-rate phase (default 500; 1,000 with `--wrk`).
    #[arg(long)]
    rate: Option<u32>,
    /// Seconds of each phase (and of pgbench).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Distinct users sending updates (default 2,000; 1,000 with `--wrk`).
    #[arg(long)]
    users: Option<i64>,
    /// Concurrent clients in the peak phase and for pgbench (default 16; 32 with `--wrk`).
    #[arg(long)]
    clients: Option<u32>,
    /// The wrk-like load (see the module's doc): overrides the mix, funds every user, and
    /// defaults to 1,000 users, 32 clients and 1,000 updates/s.
    #[arg(long)]
    wrk: bool,
    /// Clients scraping `/metrics` (with its bearer token) as fast as it answers, throughout
    /// both phases: the webhook's latency with and without them shows what scrapes cost it.
    #[arg(long, default_value_t = 0)]
    scrapers: u32,
    /// Seconds of the open loop at its rate before it is measured (its cold start after the
    /// checkpoint: reported apart, not judged).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Print the open loop's latency second by second.
    #[arg(long)]
    timeline: bool,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
    /// Who drives the closed loop: `reqwest` (in this process) or `wrk` (a process of its own,
    /// the neutral driver; Debian's `wrk` package).
    #[arg(long, default_value = "reqwest", value_parser = ["reqwest", "wrk"])]
    driver: String,
}

const METRICS_TOKEN: &str = "loadgen-metrics-token-0123456789abcdef";

/// `scrapers` clients GET `/metrics` in a loop until `stop`; (answers 200, other answers).
fn scrape(
    address: std::net::SocketAddr,
    scrapers: u32,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let url = format!("http://{address}/metrics");
        let tasks: Vec<_> = (0..scrapers)
            .map(|_| {
                let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while !*stop.borrow() {
                        let answered = match http.get(&url).bearer_auth(METRICS_TOKEN).send().await {
                            Ok(answer) => answer.status().is_success() && answer.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        if answered {
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        let mut total = (0, 0);
        for task in tasks {
            let (ok, failed) = task.await.unwrap_or((0, 1));
            total = (total.0 + ok, total.1 + failed);
        }
        total
    })
}

/// What the run is held to.
struct Targets {
    open_p99_ms: f64,
    closed_ratio: f64,
    closed_p99_ms: Option<f64>,
}

struct Target {
    http: reqwest::Client,
    url: String,
    next_update: AtomicI64,
    errors: AtomicU64,
    users: i64,
    /// 90% prompts and 10% `/start` (otherwise 40% `/start`, 20% `/balance`, 40% prompts).
    wrk: bool,
}

impl Target {
    /// Posts one update of the mix; its latency, or `None` if the answer was not 200.
    async fn post(&self) -> Option<Duration> {
        let id = self.next_update.fetch_add(1, Ordering::Relaxed);
        let user = FIRST_USER + id.rem_euclid(self.users);
        let text = match (self.wrk, id % 10) {
            (true, 0) => "/start".to_owned(),
            (true, _) => format!("a banana number {id}"),
            (false, 0..=3) => "/start".to_owned(),
            (false, 4 | 5) => "/balance".to_owned(),
            (false, _) => format!("a banana number {id}"),
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
    // An explicit value always wins; `--wrk` changes only the defaults.
    let (rate, users, clients) = match args.wrk {
        true => (args.rate.unwrap_or(1000), args.users.unwrap_or(1000), args.clients.unwrap_or(32)),
        false => (
            args.rate.unwrap_or(DEFAULT_RATE),
            args.users.unwrap_or(DEFAULT_USERS),
            args.clients.unwrap_or(DEFAULT_CLIENTS),
        ),
    };
    let targets = if args.wrk {
        Targets { open_p99_ms: 10.0, closed_ratio: 0.8, closed_p99_ms: Some(15.0) }
    } else {
        Targets { open_p99_ms: P99_TARGET_MS, closed_ratio: PEAK_TARGET_RATIO, closed_p99_ms: None }
    };
    anyhow::ensure!(rate > 0 && args.duration > 0 && users > 0 && clients > 0, "positive values only");
    let url = setup::fresh_database("nanobanana_loadgen_intake").await?;
    let telegram = fakes::FakeTelegram::start(fakes::telegram::TelegramConfig::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let prefix = format!("loadgen:{}:", uuid::Uuid::new_v4().simple());
    let vars = [
        ("DATABASE_URL", url.to_string()),
        ("DATABASE_MAX_CONNECTIONS", clients.max(8).to_string()),
        ("TELEGRAM_BOT_TOKEN", telegram.token().to_owned()),
        ("TELEGRAM_WEBHOOK_SECRET", SECRET.to_owned()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("REDIS_PREFIX", prefix),
        ("MAX_IN_FLIGHT", "100".to_owned()),
        ("DAILY_GENERATION_CAP", "100000".to_owned()),
        ("METRICS_TOKEN", METRICS_TOKEN.to_owned()),
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
        users,
        wrk: args.wrk,
    });
    // Warm up connections and caches before measuring (the first answer also means the
    // service has migrated its database).
    target.post().await.context("the service does not answer")?;
    // Concurrently, so that the service's pool has opened its connections (each one's first
    // call compiles the server-side functions) before anything is measured.
    let warmers: Vec<_> = (0..clients)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    target.post().await;
                }
            })
        })
        .collect();
    for warmer in warmers {
        warmer.await?;
    }
    fund(&url, users, if args.wrk { 1 } else { 2 }).await?;
    setup::checkpoint(&url).await;
    let (stop_scraping, scraping) = watch::channel(false);
    let scraped_from = Instant::now();
    let scrapers = scrape(address, args.scrapers, scraping);
    let mut open = fixed_rate(&target, rate, args.duration, args.warmup).await;
    let answered = open.measured.len() as f64 / open.seconds;
    let (p50, p99) = (open.measured.percentile_ms(50.0), open.measured.percentile_ms(99.0));
    let warmup_p99 = open.warmup.percentile_ms(99.0);
    setup::checkpoint(&url).await;
    let (peak, closed_p50, closed_p99, driver_errors) = if args.driver == "wrk" {
        let ids = (1_000_000_000, FIRST_USER, users);
        let run = crate::wrk::run(&target.url, clients, args.duration, ids, SECRET).await?;
        (run.per_second, run.p50_ms, run.p99_ms, run.errors)
    } else {
        let (peak, mut closed) = closed_loop(&target, clients, args.duration).await;
        (peak, closed.percentile_ms(50.0), closed.percentile_ms(99.0), 0)
    };
    let errors = target.errors.load(Ordering::Relaxed) + driver_errors;
    let _ = stop_scraping.send(true);
    let (scrapes, scrape_errors) = scrapers.await?;
    let scrapes_per_s = scrapes as f64 / scraped_from.elapsed().as_secs_f64();
    let _ = stop.send(true);
    server.await??;
    let pgbench = Pgbench::init(clients).await?;
    let mut reference = pgbench.tpcb_like_timed(clients, args.duration, None, 0).await?;
    let tps = reference.tps;
    let (ref_p50, ref_p99) = (reference.latency.percentile_ms(50.0), reference.latency.percentile_ms(99.0));
    // The open loop's yardstick: the database's own transaction at the same fixed rate.
    let mut at_rate = pgbench.tpcb_like_timed(clients, args.duration, Some(rate), args.warmup).await?;
    let (rate_p50, rate_p99) = (at_rate.latency.percentile_ms(50.0), at_rate.latency.percentile_ms(99.0));
    let ratio = peak / tps;

    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let mix = if args.wrk { "wrk-like: 90% prompts, 10% /start, all funded" } else { "mixed, half funded" };
    println!("loadgen intake: {} users ({mix}), {} s per phase", users, args.duration);
    println!(
        "fixed rate: offered {} updates/s, answered {answered:.1}/s, p50 {p50:.2} ms, p99 {p99:.2} ms (target p99 ≤ {} ms: {})",
        rate, targets.open_p99_ms, met(p99 <= targets.open_p99_ms)
    );
    println!(
        "  reference: pgbench tpcb-like at the same fixed rate, {} clients: {:.1} tps, p50 {rate_p50:.2} ms, p99 {rate_p99:.2} ms",
        clients, at_rate.tps
    );
    if args.warmup > 0 {
        println!(
            "  before it, {} s at the same rate after a checkpoint (not judged): {} updates, p99 {warmup_p99:.2} ms",
            args.warmup,
            open.warmup.len()
        );
    }
    if args.timeline {
        for (second, samples) in open.by_second.iter_mut().enumerate() {
            let (p50, p99, max) =
                (samples.percentile_ms(50.0), samples.percentile_ms(99.0), samples.percentile_ms(100.0));
            println!("  second {second:>3}: {:>5} updates, p50 {p50:>7.2} ms, p99 {p99:>7.2} ms, max {max:>7.2} ms", samples.len());
        }
    }
    let closed_target = targets
        .closed_p99_ms
        .map_or(String::new(), |t| format!(" (target p99 ≤ {t} ms: {})", met(closed_p99 <= t)));
    println!("peak ({} driver): {peak:.1} updates/s with {} clients, p50 {closed_p50:.2} ms, p99 {closed_p99:.2} ms{closed_target}", args.driver, clients);
    println!(
        "reference: pgbench tpcb-like, scale {0}, {0} clients: {tps:.1} tps, p50 {ref_p50:.2} ms, p99 {ref_p99:.2} ms",
        clients
    );
    println!(
        "ratio: peak ÷ pgbench tps = {ratio:.2} (target ≥ {}: {})",
        targets.closed_ratio,
        met(ratio >= targets.closed_ratio)
    );
    println!("non-200 answers: {errors}");
    if args.scrapers > 0 {
        println!(
            "metrics scrapers: {} clients, {scrapes} scrapes answered 200 ({scrapes_per_s:.0}/s), {scrape_errors} not",
            args.scrapers
        );
    }
    if args.json {
        let json = json!({
            "benchmark": "intake", "users": users, "duration_s": args.duration,
            "offered_per_s": rate, "answered_per_s": round(answered),
            "p50_ms": round(p50), "p99_ms": round(p99), "warmup_s": args.warmup, "warmup_p99_ms": round(warmup_p99),
            "peak_per_s": round(peak), "clients": clients, "errors": errors, "wrk": args.wrk, "driver": args.driver,
            "peak_p50_ms": round(closed_p50), "peak_p99_ms": round(closed_p99),
            "reference": { "name": "pgbench tpcb-like", "scale": clients, "clients": clients, "tps": round(tps),
                           "p50_ms": round(ref_p50), "p99_ms": round(ref_p99),
                           "at_rate": { "tps": round(at_rate.tps), "p50_ms": round(rate_p50), "p99_ms": round(rate_p99) } },
            "ratio": round(ratio), "target_ratio": targets.closed_ratio, "p99_target_ms": targets.open_p99_ms,
            "scrapers": args.scrapers, "scrapes": scrapes, "scrapes_per_s": round(scrapes_per_s), "scrape_errors": scrape_errors,
        });
        println!("{json}");
    }
    anyhow::ensure!(errors == 0, "{errors} updates were not answered 200");
    anyhow::ensure!(scrape_errors == 0, "{scrape_errors} scrapes were not answered 200");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Grants credits to every `every`-th user so that their prompts reserve.
async fn fund(url: &url::Url, count: i64, every: usize) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(url.as_str()).await?;
    let reason = ledger::Reason::parse("loadgen intake")?;
    for user in (FIRST_USER..FIRST_USER + count).step_by(every) {
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

/// What the open loop measured.
struct OpenLoop {
    /// Latencies of the updates sent after the warm-up.
    measured: Samples,
    /// Seconds the measured part took.
    seconds: f64,
    /// Latencies of the warm-up's updates (reported, not judged).
    warmup: Samples,
    /// The measured latencies by whole second of sending, for `--timeline`.
    by_second: Vec<Samples>,
}

/// Posts at `rate` per second for `warmup` + `seconds` regardless of answers (an open loop),
/// with at most 4096 updates outstanding. The first `warmup` seconds run at the same rate but
/// are kept apart: the first of a loop after a checkpoint (full-page writes, new connections)
/// is its cold start, not its steady state.
async fn fixed_rate(target: &Arc<Target>, rate: u32, seconds: u64, warmup: u64) -> OpenLoop {
    let outstanding = Arc::new(Semaphore::new(4096));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = u64::from(rate) * (warmup + seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        ticker.tick().await;
        let Ok(permit) = outstanding.clone().acquire_owned().await else { break };
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let sent = started.elapsed();
            let latency = target.post().await;
            drop(permit);
            latency.map(|latency| (sent, latency))
        }));
    }
    let warmup = Duration::from_secs(warmup);
    let mut open = OpenLoop {
        measured: Samples::default(),
        seconds: 0.0,
        warmup: Samples::default(),
        by_second: vec![Samples::default(); seconds as usize],
    };
    for task in tasks {
        let Ok(Some((sent, latency))) = task.await else { continue };
        match sent.checked_sub(warmup) {
            None => open.warmup.push(latency),
            Some(after) => {
                open.measured.push(latency);
                let second = (after.as_secs() as usize).min(open.by_second.len().saturating_sub(1));
                if let Some(samples) = open.by_second.get_mut(second) {
                    samples.push(latency);
                }
            }
        }
    }
    open.seconds = started.elapsed().saturating_sub(warmup).as_secs_f64();
    open
}

/// `clients` loops posting back to back for `seconds`; updates answered per second, and the
/// latency of each answer.
async fn closed_loop(target: &Arc<Target>, clients: u32, seconds: u64) -> (f64, Samples) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    if let Some(latency) = target.post().await {
                        latencies.push(latency);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut samples = Samples::default();
    for task in tasks {
        for latency in task.await.unwrap_or_default() {
            samples.push(latency);
        }
    }
    (samples.len() as f64 / started.elapsed().as_secs_f64(), samples)
}
