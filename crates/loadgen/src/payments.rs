//! `loadgen payments`: YooKassa notifications handled end to end. The webhook runs in this
//! process against a fresh database; the fake YooKassa holds `--payments` paid payments (made
//! through the service's own create call in the setup, notifications off). Then `--clients`
//! post `payment.succeeded` for each of them `--repeat` times, as YooKassa's retries would:
//! each is checked by network, stored raw, read back with `GET` from the fake over HTTP and
//! settled — the first credits, the rest find it done. Reports notifications/s and latency,
//! checks every charge was credited exactly once and the audit is clean. Reference: pgbench
//! tpcb-like at the same client count for the same duration.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nanobanana::config::{Pack, YooKassaConfig};
use nanobanana::db::users;
use nanobanana::domain::Credits;
use nanobanana::payments::{self, YooKassa};
use nanobanana::secret::Secret;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::pgbench::Pgbench;
use crate::setup;
use crate::stats::Samples;

const FIRST_USER: i64 = 6_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Paid payments to notify about (one user each).
    #[arg(long, default_value_t = 2000)]
    payments: usize,
    /// Notifications per payment (YooKassa repeats; only the first credits).
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    /// Concurrent notification senders, and pgbench's clients.
    #[arg(long, default_value_t = 16)]
    clients: u32,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.payments > 0 && args.repeat > 0 && args.clients > 0, "positive values only");
    let url = setup::fresh_database("nanobanana_loadgen_payments").await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(args.clients + 8)
        .connect(url.as_str())
        .await
        .context("connecting to the benchmark database")?;
    nanobanana::db::migrate(&pool).await?;
    let fake = fakes::FakeYooKassa::start(fakes::YooKassaConfig::default()).await?;
    let config = YooKassaConfig {
        shop_id: fake.shop_id().to_owned(),
        secret_key: Secret::new(fake.secret_key().to_owned()),
        api_url: url::Url::parse(&fake.api_url())?,
        return_url: Some(url::Url::parse("https://t.me/loadgen_bot")?),
        trusted_networks: vec!["127.0.0.1/32".parse()?],
        trusted_proxies: vec![],
        receipt: None,
    };
    let yk = Arc::new(YooKassa::new(pool.clone(), config, None)?);
    let ids = paid_payments(&pool, &yk, &fake, args.payments).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let webhook = format!("http://{}/yookassa/webhook", listener.local_addr()?);
    let server = tokio::spawn(nanobanana::http::yookassa::serve(listener, yk.clone()));
    setup::checkpoint(&url).await;
    let (mut latencies, seconds, errors) = notify(&webhook, &ids, args.repeat, args.clients).await?;
    server.abort();
    let sent = ids.len() * args.repeat;
    let rate = sent as f64 / seconds;
    let (p50, p99) = (latencies.percentile_ms(50.0), latencies.percentile_ms(99.0));

    let credited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE type = 'topup'").fetch_one(&pool).await?;
    let gets = fake.requests().iter().filter(|r| r.method == "GET").count();
    let mut conn = pool.acquire().await?;
    let audit = nanobanana::audit::run(&mut conn).await?;
    drop(conn);
    pool.close().await;
    anyhow::ensure!(credited == ids.len() as i64, "{credited} credits for {} charges", ids.len());
    anyhow::ensure!(audit.clean, "audit: {audit}");
    anyhow::ensure!(errors == 0, "{errors} notifications were not answered 200");

    let pg_seconds = seconds.ceil().max(1.0) as u64;
    let tps = Pgbench::init(args.clients).await?.tpcb_like(args.clients, pg_seconds).await?;
    let ratio = rate / tps;
    println!(
        "loadgen payments: {} paid payments × {} notifications, {} clients",
        ids.len(),
        args.repeat,
        args.clients
    );
    println!(
        "handled {sent} notifications in {seconds:.2} s: {rate:.1}/s, p50 {p50:.2} ms, p99 {p99:.2} ms \
         ({gets} GETs at the fake, the recent requests it kept)"
    );
    println!("credited once each: {credited} of {} charges; audit clean", ids.len());
    println!(
        "reference: pgbench tpcb-like, scale {0}, {0} clients, {pg_seconds} s: {tps:.1} tps",
        args.clients
    );
    println!("ratio: notifications/s ÷ pgbench tps = {ratio:.2}");
    if args.json {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let json = json!({
            "benchmark": "payments", "payments": ids.len(), "repeat": args.repeat, "clients": args.clients,
            "notifications": sent, "seconds": round(seconds), "notifications_per_s": round(rate),
            "p50_ms": round(p50), "p99_ms": round(p99), "credited": credited,
            "pgbench_tps": round(tps), "ratio": round(ratio),
        });
        println!("{json}");
    }
    Ok(())
}

/// Creates `count` payments through the service's create call and pays them at the fake.
async fn paid_payments(
    pool: &sqlx::PgPool,
    yk: &Arc<YooKassa>,
    fake: &fakes::FakeYooKassa,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let pack = Pack { id: "rub100".into(), price: 10_000, credits: Credits::new(100)? };
    for i in 0..count {
        let mut conn = pool.acquire().await?;
        let user = FIRST_USER + i as i64;
        users::ensure(&mut conn, &users::NewUser { telegram_id: user, ..Default::default() }).await?;
    }
    let limit = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let (yk, pack, limit) = (yk.clone(), pack.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let user = FIRST_USER + i as i64;
            let url = payments::start_yookassa(&yk, user, &pack, "loadgen", None).await?;
            anyhow::Ok(url.rsplit('/').next().unwrap_or_default().to_owned())
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        let id = task.await??;
        fake.pay(&id).map_err(|e| anyhow::anyhow!("paying {id}: {e}"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// `clients` senders post every notification (all payments, `repeat` rounds) as fast as
/// answers come; latencies, seconds taken and non-200 answers.
async fn notify(
    url: &str,
    ids: &[String],
    repeat: usize,
    clients: u32,
) -> anyhow::Result<(Samples, f64, usize)> {
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(30)).build()?;
    let bodies: Arc<Vec<serde_json::Value>> = Arc::new(
        (0..repeat)
            .flat_map(|_| ids.iter())
            .map(|id| {
                json!({"type": "notification", "event": "payment.succeeded",
                    "object": {"id": id, "status": "succeeded", "paid": true}})
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, bodies, next, url) = (http.clone(), bodies.clone(), next.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let sent = Instant::now();
                match http.post(&url).json(body).send().await {
                    Ok(r) if r.status() == 200 => samples.push(sent.elapsed()),
                    _ => errors += 1,
                }
            }
            (samples, errors)
        }));
    }
    let mut all = Samples::default();
    let mut errors = 0;
    for task in tasks {
        let (samples, e) = task.await?;
        all.extend(samples);
        errors += e;
    }
    Ok((all, started.elapsed().as_secs_f64(), errors))
}
