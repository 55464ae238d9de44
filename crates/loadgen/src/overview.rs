//! `loadgen overview`: the panel's overview at scale (issue #19). Seeds a database with
//! `--users` users (default 100,000) and `--generations` generations (default 1,000,000) over
//! 90 days plus their payments and refunds, in a few set-based statements (`overview/seed.sql`);
//! builds the daily rollup of closed days (timed: what the first start on such a database
//! costs); then times, `--runs` times each, the overview's queries per window
//! (`reports::overview`), today's live figures alone, and each page over HTTP against `serve`
//! running in this process (logged in with a real panel session). Target: every page < 300 ms.
//! `--reuse` keeps a database seeded by an earlier run (same size) instead of seeding again.

use std::time::{Duration, Instant};

use anyhow::Context;
use nanobanana::config::{Config, Role};
use nanobanana::db::panel;
use nanobanana::reports::{self, Range};
use nanobanana::secret::Secret;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;

use crate::setup;

const DATABASE: &str = "nanobanana_loadgen_overview";
const ADMIN: i64 = 1;
const PANEL_SECRET: &str = "loadgen-overview-panel-secret-0123456789";
const TARGET_MS: f64 = 300.0;
const TZ: &str = "Europe/Moscow";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100_000)]
    users: i64,
    #[arg(long, default_value_t = 1_000_000)]
    generations: i64,
    /// Timed runs of each query and page.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Use the database an earlier run seeded (when it holds as many generations).
    #[arg(long)]
    reuse: bool,
    /// End with one JSON line.
    #[arg(long)]
    json: bool,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// The database, seeded (or reused); its URL and how long seeding took.
async fn database(args: &Args) -> anyhow::Result<(url::Url, Option<Duration>)> {
    if args.reuse {
        let mut url = setup::server_url()?;
        url.set_path(&format!("/{DATABASE}"));
        if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(url.as_str()).await {
            let have: Option<i64> =
                sqlx::query_scalar("SELECT COUNT(*) FROM generations").fetch_one(&pool).await.ok();
            if have == Some(args.generations) {
                return Ok((url, None));
            }
        }
    }
    let url = setup::fresh_database(DATABASE).await?;
    let pool = PgPoolOptions::new().max_connections(2).connect(url.as_str()).await?;
    nanobanana::db::migrate(&pool).await?;
    let sql = include_str!("overview/seed.sql")
        .replace("__USERS__", &args.users.to_string())
        .replace("__GENERATIONS__", &args.generations.to_string());
    let started = Instant::now();
    sqlx::raw_sql(&sql).execute(&pool).await.context("seeding")?;
    sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await.context("VACUUM ANALYZE")?;
    let seeded = started.elapsed();
    pool.close().await;
    Ok((url, Some(seeded)))
}

/// `runs` timings of `f`, in ms.
async fn timed<F, Fut, T>(runs: usize, mut f: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        out.push(ms(started.elapsed()));
    }
    Ok(out)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.users > 0 && args.generations > 0 && args.runs > 0, "positive values only");
    let (url, seeded) = database(&args).await?;
    let pool = PgPoolOptions::new().max_connections(8).connect(url.as_str()).await?;
    // A reused database gets the migrations written since it was seeded.
    nanobanana::db::migrate(&pool).await?;
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM generations), (SELECT COUNT(*) FROM payments)",
    )
    .fetch_one(&pool)
    .await?;
    // The rollup from nothing: every closed day the longest window shows (and some margin).
    sqlx::raw_sql("TRUNCATE report_days CASCADE").execute(&pool).await?;
    let started = Instant::now();
    reports::days::rebuild(&pool, TZ, reports::KEPT_DAYS).await?;
    let rollup = started.elapsed();

    let telegram = fakes::FakeTelegram::start(fakes::telegram::TelegramConfig::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let vars = [
        ("DATABASE_URL", url.to_string()),
        ("TELEGRAM_BOT_TOKEN", telegram.token().to_owned()),
        ("TELEGRAM_WEBHOOK_SECRET", "loadgen-overview-secret-0123456789abcdef".to_owned()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("REDIS_PREFIX", format!("loadgen:{}:", uuid::Uuid::new_v4().simple())),
        ("ADMIN_IDS", ADMIN.to_string()),
        ("PANEL_SECRET", PANEL_SECRET.to_owned()),
        ("PANEL_URL", format!("http://{address}")),
        ("OPERATOR_TIMEZONE", TZ.to_owned()),
    ];
    let config = Config::from_lookup(Role::Serve, &|k| {
        vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rates = reports::rates(&config);
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(nanobanana::service::serve(config, listener, stopped));

    // A real session, as the login page would open it.
    let secret = Secret::new(PANEL_SECRET.to_owned());
    let mut conn = pool.acquire().await?;
    sqlx::query("INSERT INTO users (telegram_id, first_name) VALUES ($1, 'admin') ON CONFLICT DO NOTHING")
        .bind(ADMIN)
        .execute(&mut *conn)
        .await?;
    let token = panel::create_link(&mut conn, &secret, ADMIN).await?;
    let link = panel::verify_link(&secret, &token, chrono::Utc::now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let session = panel::use_link(&mut conn, &link, 1).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(conn);
    let cookie = format!("{}={}", nanobanana::panel::auth::COOKIE, session.token);
    let http = reqwest::Client::new();
    let page = |range: Range| {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move {
            let answer = http
                .get(format!("http://{address}/panel?range={}", range.encode()))
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await?;
            anyhow::ensure!(answer.status().is_success(), "the page answered {}", answer.status());
            let body = answer.text().await?;
            anyhow::ensure!(body.contains("id=\"revenue\""), "the page has no figures");
            Ok(body.len())
        }
    };
    // The service's first rollup pass (two days) and warm caches before measuring.
    let deadline = Instant::now() + Duration::from_secs(60);
    while page(Range::Today).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the panel does not answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for range in Range::ALL {
        page(range).await?;
    }

    let today = timed(args.runs, || async {
        let today = reports::days::today(&mut *pool.acquire().await?, TZ).await?;
        Ok(reports::days::compute(&mut *pool.acquire().await?, TZ, today).await?)
    })
    .await?;
    // The 30-day window's parts, one at a time (the overview runs them side by side).
    let today_date = reports::days::today(&mut *pool.acquire().await?, TZ).await?;
    let first = Range::Month.first_day(today_date);
    let (lo, _) = reports::days::bounds(&mut *pool.acquire().await?, TZ, first).await?;
    let stored = timed(args.runs, || async {
        let last = today_date - chrono::Days::new(1);
        Ok(reports::days::load(&mut *pool.acquire().await?, TZ, first, last).await?)
    })
    .await?;
    let active = timed(args.runs, || async {
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE last_seen_at >= $1")
            .bind(lo)
            .fetch_one(&pool)
            .await?)
    })
    .await?;
    let converted = timed(args.runs, || async {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(DISTINCT p.user_id) FROM payments p JOIN users u ON u.telegram_id = p.user_id
             WHERE p.status = 'succeeded' AND u.registered_at >= $1",
        )
        .bind(lo)
        .fetch_one(&pool)
        .await?)
    })
    .await?;
    let mut rows = Vec::new();
    for range in Range::ALL {
        let queries =
            timed(args.runs, || async { Ok(reports::overview(&pool, TZ, rates, range).await?) }).await?;
        let pages = timed(args.runs, || page(range)).await?;
        rows.push((range, queries, pages));
    }
    let _ = stop.send(true);
    server.await??;

    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(" / ");
    let worst = rows.iter().flat_map(|(_, _, p)| p.iter().copied()).fold(0.0, f64::max);
    println!(
        "loadgen overview: {} users, {} generations, {} payments over 90 days ({TZ})",
        counts.0, counts.1, counts.2
    );
    match seeded {
        Some(d) => println!("seeded in {:.1} s (incl. VACUUM ANALYZE)", d.as_secs_f64()),
        None => println!("seeded by an earlier run (--reuse)"),
    }
    println!("rollup of {} closed days built in {:.0} ms", reports::KEPT_DAYS, ms(rollup));
    println!("today's live figures: {} ms", list(&today));
    println!(
        "30 days' parts alone: 29 stored days {} ms, active users {} ms, conversion {} ms",
        list(&stored),
        list(&active),
        list(&converted)
    );
    for (range, queries, pages) in &rows {
        println!("{:>5}: queries {} ms; page over HTTP {} ms", range.encode(), list(queries), list(pages));
    }
    println!(
        "slowest page: {worst:.1} ms (target < {TARGET_MS} ms: {})",
        if worst < TARGET_MS { "met" } else { "NOT met" }
    );
    if args.json {
        let windows: Vec<_> = rows
            .iter()
            .map(|(r, q, p)| json!({ "range": r.encode(), "queries_ms": q, "page_ms": p }))
            .collect();
        let json = json!({
            "benchmark": "overview", "users": counts.0, "generations": counts.1, "payments": counts.2,
            "seed_s": seeded.map(|d| d.as_secs_f64()), "rollup_ms": ms(rollup), "today_ms": today,
            "windows": windows, "slowest_page_ms": worst, "target_ms": TARGET_MS,
        });
        println!("{json}");
    }
    Ok(())
}
