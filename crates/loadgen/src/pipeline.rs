//! `loadgen pipeline`: the generation worker end to end against the fake Gemini (in this
//! process, small images unless `--full-size`) and a fresh database. Generations are queued as requests would queue
//! them (reserve + insert), then `--workers` workers take them to the end; the run measures
//! generations/s from the first claim to the last settlement, CPU time per generation and the
//! process' peak RSS. With `--latency-ms` high and `--concurrency` large it measures in-flight
//! capacity instead (e.g. 10,000 generations, 30 s latency, concurrency 10,000).
//!
//! No reference is measured: the targets (≥ 1,000 generations/s; 10,000 in flight in ≤ 256 MB)
//! are absolute. CPU time and RSS are the whole process': the workers, the preview encoder and,
//! unless `--gemini-url` names a fake running in a process of its own (`fakes gemini --small
//! --latency-ms N`; then `--latency-ms` should say the same N), the fake Gemini too. The fake
//! also tells how many calls it held at once and over which HTTP version and connections
//! (`/_fake/stats`), so "in flight" is what Gemini saw, not only what the database says.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nanobanana::config::{Config, Role};
use nanobanana::db::{self, users};
use nanobanana::domain::{Credits, ImageSize, Model};
use nanobanana::ledger;
use nanobanana::worker::{Worker, WorkerSettings};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use uuid::Uuid;

use crate::setup;

const FIRST_USER: i64 = 7_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generations to queue and finish.
    #[arg(long, default_value_t = 2000)]
    generations: usize,
    /// Worker instances in this process (each with its own pool and claim loop).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Jobs in flight per worker.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The fake Gemini's latency per call.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Distinct users the generations belong to.
    #[arg(long, default_value_t = 200)]
    users: i64,
    /// Call this Gemini (e.g. `fakes gemini --small` in a process of its own, so that the peak
    /// RSS and CPU time measured are the workers' alone) instead of a fake in this process.
    #[arg(long)]
    gemini_url: Option<String>,
    /// The API key of `--gemini-url`.
    #[arg(long, default_value = "fake-gemini-key")]
    gemini_key: String,
    /// `GEMINI_HTTP_VERSION` of the workers: http2 (h2c to the fake, as production speaks h2 to
    /// Google), http1 or auto.
    #[arg(long, default_value = "http2")]
    gemini_http_version: String,
    /// Reference photos per generation (0–14), each the same large JPEG downloaded from a fake
    /// Telegram in this process: shows what references cost the worker's memory.
    #[arg(long, default_value_t = 0)]
    references: usize,
    /// The reference photo's side in pixels (noise, JPEG quality 90: about a byte a pixel).
    #[arg(long, default_value_t = 3600)]
    reference_px: u32,
    /// The size bought (1K, 2K or 4K; Nano Banana 2.1): with `--full-size`, how large Gemini's
    /// answers are.
    #[arg(long, default_value = "1K")]
    image_size: String,
    /// The fake Gemini in this process answers full-size pictures (a 4K PNG is tens of MB of
    /// base64) instead of 64 px ones: shows what answers cost the worker's memory.
    #[arg(long)]
    full_size: bool,
    /// `WORKER_MEMORY_BUDGET_MB` of the workers.
    #[arg(long, default_value_t = 512)]
    memory_budget_mb: u32,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

/// A `side`×`side` JPEG of noise: the worst case for its size in bytes.
fn noise_jpeg(side: u32) -> anyhow::Result<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let image = image::RgbImage::from_fn(side, side, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let [r, g, b, ..] = seed.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image)?;
    Ok(out)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.generations > 0 && args.workers > 0 && args.concurrency > 0 && args.users > 0);
    let url = setup::fresh_database("loadgen_pipeline").await?;
    let pool = PgPoolOptions::new().max_connections(16).connect(url.as_str()).await?;
    db::migrate(&pool).await?;
    let in_process = match &args.gemini_url {
        Some(_) => None,
        None => Some(
            fakes::FakeGemini::start(fakes::GeminiConfig {
                small: !args.full_size,
                latency: Duration::from_millis(args.latency_ms),
                ..Default::default()
            })
            .await?,
        ),
    };
    let (gemini_url, gemini_key) = match (&in_process, &args.gemini_url) {
        (Some(fake), _) => (fake.base_url(), fake.api_key().to_owned()),
        (None, url) => (url.clone().unwrap_or_default(), args.gemini_key.clone()),
    };
    anyhow::ensure!(args.references <= 14, "at most 14 references");
    let telegram = match args.references {
        0 => None,
        _ => Some(fakes::FakeTelegram::start(fakes::telegram::TelegramConfig::default()).await?),
    };
    let reference = match &telegram {
        Some(tg) => {
            let photo = noise_jpeg(args.reference_px)?;
            println!("reference photo: {0}×{0} px, {1:.1} MB", args.reference_px, photo.len() as f64 / 1e6);
            Some(
                tg.upload_file(photo, fakes::telegram::FileKind::Photo)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            )
        }
        None => None,
    };
    let storage = std::env::temp_dir().join(format!("loadgen-pipeline-{}", Uuid::new_v4().simple()));
    let mut vars: HashMap<&str, String> = [
        ("DATABASE_URL", url.to_string()),
        ("DATABASE_MAX_CONNECTIONS", "16".to_owned()),
        ("GEMINI_API_KEY", gemini_key),
        ("GEMINI_API_URL", gemini_url),
        ("GEMINI_RPM", "100000".to_owned()),
        // Sizes the client's idle connection pool (the workers' slots are `--concurrency`).
        ("GEMINI_MAX_CONCURRENCY", args.concurrency.clamp(1, 256).to_string()),
        ("GEMINI_TIMEOUT_SECS", (args.latency_ms / 1000 + 60).to_string()),
        ("GEMINI_HTTP_VERSION", args.gemini_http_version.clone()),
        ("STORAGE_URL", format!("file://{}", storage.display())),
        ("REDIS_PREFIX", format!("loadgen:{}:", Uuid::new_v4().simple())),
        ("AUTO_MIGRATE", "false".to_owned()),
    ]
    .into_iter()
    .collect();
    vars.insert("WORKER_MEMORY_BUDGET_MB", args.memory_budget_mb.to_string());
    if let Some(tg) = &telegram {
        vars.insert("TELEGRAM_BOT_TOKEN", tg.token().to_owned());
        vars.insert("TELEGRAM_API_URL", tg.base_url());
        vars.insert("TELEGRAM_MODE", "polling".to_owned());
    }
    let config =
        Config::from_lookup(Role::Worker, &|k| vars.get(k).cloned().or_else(|| std::env::var(k).ok()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let size = ImageSize::parse(&args.image_size).map_err(|e| anyhow::anyhow!("--image-size: {e}"))?;
    let model = Model::parse("nb21").map_err(|e| anyhow::anyhow!("{e}"))?;
    let price = config.catalog.get(&model).context("nb21 in the catalog")?.price(size);
    queue(&pool, &args, size, price).await?;
    if let Some(file_id) = &reference {
        sqlx::query("UPDATE generations SET reference_file_ids = $1")
            .bind(vec![file_id.clone(); args.references])
            .execute(&pool)
            .await?;
    }
    println!(
        "queued {} {} generations for {} users, {} reference photo(s) each, {} answers; worker memory \
         budget {} MB",
        args.generations,
        size.as_str(),
        args.users,
        args.references,
        if args.full_size { "full-size" } else { "64 px" },
        args.memory_budget_mb
    );

    let fake_stats = FakeStats::new(in_process.as_ref(), args.gemini_url.as_deref());
    fake_stats.reset().await;
    let (stop, stopped) = watch::channel(false);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..args.workers {
        let worker_pool = PgPoolOptions::new().max_connections(8).connect(url.as_str()).await?;
        let settings = WorkerSettings {
            concurrency: args.concurrency,
            poll_every: Duration::from_millis(100),
            // The fake answers with small pictures (64 px) by design: not a short delivery.
            measure_sizes: false,
            ..WorkerSettings::from_config(&config)
        };
        let worker = Arc::new(Worker::new(&config, worker_pool, settings).await?);
        let redis = nanobanana::redis::connect_blocking(&config.redis).await?;
        let waiter = nanobanana::signals::Waiter::new(redis, &config.redis.prefix);
        running.push(tokio::spawn(nanobanana::worker::run(worker, waiter, stopped.clone())));
    }
    let mut peak_in_flight = 0;
    loop {
        let (open, in_flight): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'processing')),
                    COUNT(*) FILTER (WHERE status = 'processing')
             FROM generations",
        )
        .fetch_one(&pool)
        .await?;
        peak_in_flight = peak_in_flight.max(in_flight);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    let seen = fake_stats.read().await;
    let _ = stop.send(true);
    for worker in running {
        worker.await.context("worker task")??;
    }
    let (succeeded, failed): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE status = 'succeeded'), COUNT(*) FILTER (WHERE status = 'failed')
         FROM generations",
    )
    .fetch_one(&pool)
    .await?;
    let audit = nanobanana::audit::run(&mut *pool.acquire().await?).await?;
    let _ = std::fs::remove_dir_all(&storage);

    let rate = args.generations as f64 / elapsed;
    let cpu_ms = cpu.map(|c| c * 1000.0 / args.generations as f64);
    let rss_mb = peak_rss_kb().map(|kb| kb as f64 / 1024.0);
    let fake = if in_process.is_some() { "in this process" } else { "in its own process" };
    println!(
        "loadgen pipeline: {} workers × {} in flight, fake Gemini {fake}, latency {} ms",
        args.workers, args.concurrency, args.latency_ms
    );
    println!("finished {} generations in {elapsed:.2} s: {rate:.1} generations/s", args.generations);
    println!(
        "succeeded {succeeded}, failed {failed}; audit {}",
        if audit.clean { "clean" } else { "NOT clean" }
    );
    println!("peak in flight: {peak_in_flight} generations processing");
    match &seen {
        Some(seen) => println!(
            "the fake Gemini held at most {} calls at once; {} calls over HTTP/2, {} over HTTP/1.1, \
             on {} connections",
            seen.peak_in_flight, seen.http2_calls, seen.http1_calls, seen.connections
        ),
        None => println!("the fake Gemini's stats: not available"),
    }
    match cpu_ms {
        Some(ms) => println!("CPU time (whole process): {ms:.2} ms per generation"),
        None => println!("CPU time: not available on this system"),
    }
    match rss_mb {
        Some(mb) => println!("peak RSS (whole process): {mb:.1} MB"),
        None => println!("peak RSS: not available on this system"),
    }
    if args.json {
        let json = json!({
            "benchmark": "pipeline", "generations": args.generations, "workers": args.workers,
            "concurrency": args.concurrency, "latency_ms": args.latency_ms,
            "seconds": round(elapsed), "generations_per_s": round(rate),
            "cpu_ms_per_generation": cpu_ms.map(round), "peak_rss_mb": rss_mb.map(round),
            "peak_in_flight": peak_in_flight, "succeeded": succeeded, "failed": failed,
            "audit_clean": audit.clean, "fake_in_process": in_process.is_some(),
            "gemini_http_version": args.gemini_http_version,
            "fake_peak_in_flight": seen.map(|s| s.peak_in_flight),
            "fake_http2_calls": seen.map(|s| s.http2_calls),
            "fake_http1_calls": seen.map(|s| s.http1_calls),
            "fake_connections": seen.map(|s| s.connections),
            "references": args.references, "reference_px": args.reference_px,
            "memory_budget_mb": args.memory_budget_mb, "image_size": size.as_str(),
            "full_size": args.full_size,
        });
        println!("{json}");
    }
    anyhow::ensure!(audit.clean, "the audit found violations:\n{audit}");
    Ok(())
}

/// The fake Gemini's own count of calls in flight, in this process or over its control API.
enum FakeStats<'a> {
    InProcess(&'a fakes::FakeGemini),
    Remote { http: reqwest::Client, url: String },
}

impl<'a> FakeStats<'a> {
    fn new(in_process: Option<&'a fakes::FakeGemini>, url: Option<&str>) -> Self {
        match (in_process, url) {
            (Some(fake), _) => Self::InProcess(fake),
            (None, url) => Self::Remote {
                http: reqwest::Client::new(),
                url: format!("{}/_fake/stats", url.unwrap_or_default().trim_end_matches('/')),
            },
        }
    }

    /// Starts the peak afresh (a fake left running from an earlier run); best effort.
    async fn reset(&self) {
        match self {
            Self::InProcess(fake) => fake.reset_stats(),
            Self::Remote { http, url } => {
                let _ = http.delete(url).send().await;
            }
        }
    }

    /// `None` when the Gemini called is no fake (or its stats cannot be read).
    async fn read(&self) -> Option<fakes::gemini::Stats> {
        match self {
            Self::InProcess(fake) => Some(fake.stats()),
            Self::Remote { http, url } => {
                let response = http.get(url).send().await.ok()?.error_for_status().ok()?;
                response.json().await.ok()
            }
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Funds the users and queues the generations, round robin over the users.
async fn queue(pool: &sqlx::PgPool, args: &Args, size: ImageSize, cost: Credits) -> anyhow::Result<()> {
    let per_user = (args.generations as i64 + args.users - 1) / args.users;
    let reason = ledger::Reason::parse("loadgen pipeline").map_err(|e| anyhow::anyhow!("{e}"))?;
    for n in 0..args.users {
        let user = FIRST_USER + n;
        let mut conn = pool.acquire().await?;
        users::ensure(
            &mut conn,
            &users::NewUser { telegram_id: user, username: None, first_name: Some("L") },
        )
        .await?;
        let key = format!("loadgen-{user}");
        let grant = ledger::Adjustment {
            user_id: user,
            direction: ledger::Direction::Grant,
            credits: Credits::new(per_user * cost.get()).context("credits")?,
            reason: &reason,
            actor: "loadgen",
            idempotency_key: &key,
        };
        ledger::adjust(&mut conn, &grant).await?;
    }
    for n in 0..args.generations {
        let user = FIRST_USER + (n as i64 % args.users);
        let id = Uuid::now_v7();
        let source_key = id.to_string();
        let prompt = format!("a banana number {n}");
        let mut tx = pool.begin().await?;
        ledger::reserve(&mut tx, user, id, cost).await?;
        let generation = nanobanana::jobs::new::NewGeneration {
            id,
            user_id: user,
            prompt: &prompt,
            model: Model::parse("nb21").expect("a catalog key"),
            model_id: None,
            image_size: Some(size),
            aspect_ratio: "1:1",
            cost,
            source_key: &source_key,
        };
        nanobanana::jobs::new::insert_with_deadline(&mut tx, &generation, Some(Duration::from_secs(3600)))
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// User + system CPU seconds of this process so far (Linux `/proc`, 100 ticks a second).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The process' peak resident set (`VmHWM`), in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
