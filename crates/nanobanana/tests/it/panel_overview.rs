//! The overview (issue #19): figures computed from seeded rows are exact for today, 7 and 30
//! days in the operator's time zone (closed days through the rollup, today live), the page shows
//! them over HTTP and in a real headless Chromium, and the daily report reaches each admin once
//! even when two replicas send it at the same moment.
//!
//! The rows are written directly, as a shop's history would leave them; the overview only reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nanobanana::reports::daily::DailyReport;
use nanobanana::reports::{self, Range};
use sqlx::PgPool;

use crate::browser::Browser;
use crate::support::panel::{login_link, PanelClient, PANEL_SECRET};
use crate::support::TestApp;

const TZ: &str = "Europe/Moscow";
const WAIT: Duration = Duration::from_secs(30);

async fn app(admins: &str) -> TestApp {
    TestApp::builder()
        .env("ADMIN_IDS", admins)
        .env("PANEL_SECRET", PANEL_SECRET)
        .env("OPERATOR_TIMEZONE", TZ)
        .env("STAR_RUB_RATE", "1.50")
        .env("USD_RUB_RATE", "100")
        .start()
        .await
}

/// Local midnight today in `TZ`, `days` days back, plus `seconds`.
async fn at(pool: &PgPool, days: i32, seconds: i32) -> DateTime<Utc> {
    sqlx::query_scalar(
        "SELECT (((now() AT TIME ZONE $1)::date - $2)::timestamp AT TIME ZONE $1) + $3 * interval '1 second'",
    )
    .bind(TZ)
    .bind(days)
    .bind(seconds)
    .fetch_one(pool)
    .await
    .expect("a local time")
}

async fn user(pool: &PgPool, id: i64, registered: DateTime<Utc>, seen: DateTime<Utc>) {
    sqlx::query("INSERT INTO users (telegram_id, first_name, language, registered_at, last_seen_at) VALUES ($1, 'Seeded', 'en', $2, $3)")
        .bind(id)
        .bind(registered)
        .bind(seen)
        .execute(pool)
        .await
        .expect("user");
}

/// A succeeded charge of `amount_minor` (kopecks or Stars) credited at `at`; its id.
async fn payment(pool: &PgPool, user: i64, currency: &str, amount_minor: i64, at: DateTime<Utc>) -> i64 {
    let provider = if currency == "XTR" { "stars" } else { "yookassa" };
    sqlx::query_scalar(
        "WITH t AS (INSERT INTO topups (user_id, provider, pack, currency, amount_minor, credits, status, created_at, paid_at)
                    VALUES ($1, $2, 'seeded', $3, $4, 100, 'paid', $5, $5) RETURNING id, user_id, provider, currency, amount_minor)
         INSERT INTO payments (provider, payment_id, topup_id, user_id, currency, amount_minor, credits, status,
                               processed_at, created_at, updated_at)
         SELECT provider, 'seeded-' || id, id, user_id, currency, amount_minor, 100, 'succeeded', $5, $5, $5 FROM t
         RETURNING id",
    )
    .bind(user)
    .bind(provider)
    .bind(currency)
    .bind(amount_minor)
    .bind(at)
    .fetch_one(pool)
    .await
    .expect("payment")
}

/// A finished generation created at `at`: succeeded after `latency_ms` with the provider's
/// `cost_micro_usd`, or failed for `failure`.
async fn generation(
    pool: &PgPool,
    user: i64,
    model: &str,
    at: DateTime<Utc>,
    outcome: Result<(i64, i64), &str>,
) {
    let (status, latency, cost, failure) = match outcome {
        Ok((latency, cost)) => ("succeeded", latency, Some(cost), None),
        Err(failure) => ("failed", 1_000, None, Some(failure)),
    };
    sqlx::query(
        "INSERT INTO generations (user_id, prompt, model, status, cost, source_key, created_at, started_at,
                                  completed_at, provider_cost_micro_usd, failure, error)
         VALUES ($1, 'seeded', $2, $3, 10, gen_random_uuid()::text, $4, $4, $4 + $5 * interval '1 millisecond', $6, $7, $7)",
    )
    .bind(user)
    .bind(model)
    .bind(status)
    .bind(at)
    .bind(latency)
    .bind(cost)
    .bind(failure)
    .execute(pool)
    .await
    .expect("generation");
}

/// The history the expectations below are computed from (ids 9_300_00x; the logged-in admin is
/// one more user registered and seen today). Today's rows sit one second after local midnight
/// (the day before in UTC), yesterday's one second before it: a day bucketed in UTC would move
/// them.
async fn seed(pool: &PgPool) {
    let now = Utc::now();
    let today = at(pool, 0, 1).await;
    let yesterday = at(pool, 0, -1).await;
    let three = at(pool, 3, 3_600).await;
    let ten = at(pool, 10, 3_600).await;
    let forty = at(pool, 40, 3_600).await;
    let (a, b, c, d, e, f) = (9_300_001, 9_300_002, 9_300_003, 9_300_004, 9_300_005, 9_300_006);
    user(pool, a, today, now).await;
    user(pool, b, today, now).await;
    user(pool, c, yesterday, yesterday).await;
    user(pool, d, three, three).await;
    user(pool, e, ten, ten).await;
    user(pool, f, forty, now).await;
    payment(pool, a, "RUB", 10_000, today).await;
    payment(pool, c, "XTR", 50, yesterday).await;
    let refunded = payment(pool, d, "RUB", 25_000, three).await;
    payment(pool, e, "RUB", 30_000, ten).await;
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, user_id, credits, amount_minor, status, created_at)
         VALUES (gen_random_uuid(), $1, $2, 20, 5000, 'succeeded', $3)",
    )
    .bind(refunded)
    .bind(d)
    .bind(yesterday)
    .execute(pool)
    .await
    .expect("refund");
    generation(pool, a, "nb21", today, Ok((4_000, 34_000))).await;
    generation(pool, a, "nb21", today, Err("failed_blocked")).await;
    generation(pool, b, "pro", today, Ok((9_000, 134_000))).await;
    generation(pool, c, "nb21", yesterday, Ok((4_000, 34_000))).await;
    generation(pool, c, "pro", yesterday, Err("failed_deadline")).await;
    generation(pool, d, "nb21", three, Ok((6_000, 34_000))).await;
    generation(pool, e, "pro", ten, Ok((20_000, 134_000))).await;
}

/// What one window must show: (range, active, new, converted, generations, failed, revenue
/// kopecks, Stars, refunds kopecks, cost kopecks, p50, p95).
struct Expected {
    range: Range,
    active: i64,
    new: i64,
    converted: i64,
    generations: i64,
    failed: i64,
    revenue: i64,
    stars: i64,
    refunds: i64,
    cost: i64,
    p50: i64,
    p95: i64,
}

fn expected() -> [Expected; 3] {
    [
        // Today: A, B and the admin are new; F is seen too. 100 ₽; 0.168 $ = 16.80 ₽.
        Expected {
            range: Range::Today,
            active: 4,
            new: 3,
            converted: 1,
            generations: 3,
            failed: 1,
            revenue: 10_000,
            stars: 0,
            refunds: 0,
            cost: 1_680,
            p50: 4_000,
            p95: 9_000,
        },
        // 7 days: C and D join; 100 + 250 ₽ and 50 ⭐ at 1.50 ₽ = 75 ₽; 50 ₽ refunded.
        Expected {
            range: Range::Week,
            active: 6,
            new: 5,
            converted: 3,
            generations: 6,
            failed: 2,
            revenue: 42_500,
            stars: 50,
            refunds: 5_000,
            cost: 2_360,
            p50: 4_000,
            p95: 9_000,
        },
        // 30 days: E joins (seen 10 days ago); F registered 40 days ago is not new.
        Expected {
            range: Range::Month,
            active: 7,
            new: 6,
            converted: 4,
            generations: 7,
            failed: 2,
            revenue: 72_500,
            stars: 50,
            refunds: 5_000,
            cost: 3_700,
            p50: 6_000,
            p95: 20_000,
        },
    ]
}

#[tokio::test]
async fn overview_figures_from_seeded_rows_are_exact_in_the_operators_time_zone() {
    let admin = 9_300_900;
    let app = app(&admin.to_string()).await;
    let client = PanelClient::login(&app, admin).await;
    let pool = &app.db.pool;
    seed(pool).await;
    // The service stored its closed days (empty) when it started: history written behind its
    // back is read after the operator's "recompute".
    let answer =
        client.post("/panel/overview/refresh", &[("csrf", client.csrf.as_str()), ("range", "7d")]).await;
    assert_eq!(answer.status(), reqwest::StatusCode::SEE_OTHER);
    let refused = client.post("/panel/overview/refresh", &[("csrf", "forged"), ("range", "7d")]).await;
    assert_ne!(refused.status(), reqwest::StatusCode::SEE_OTHER, "a forged CSRF token is refused");
    let rates = reports::rates(&app.config);

    for want in expected() {
        let o = reports::overview(pool, TZ, rates, want.range).await.expect("overview");
        let s = &o.summary;
        let what = want.range.encode();
        assert_eq!(o.active_users, want.active, "{what}: active");
        assert_eq!(s.new_users, want.new, "{what}: new");
        assert_eq!(o.converted, want.converted, "{what}: converted");
        assert_eq!(s.generations(), want.generations, "{what}: generations");
        assert_eq!(s.failed(), want.failed, "{what}: failed");
        assert_eq!(s.money.revenue_kopecks, want.revenue, "{what}: revenue");
        assert_eq!(s.money.stars, want.stars, "{what}: stars");
        assert_eq!(s.money.stars_kopecks, want.stars * 150, "{what}: stars in kopecks");
        assert_eq!(s.money.refunds_kopecks, want.refunds, "{what}: refunds");
        assert_eq!(s.money.cost_kopecks, want.cost, "{what}: cost");
        assert_eq!(s.money.margin_kopecks, want.revenue - want.refunds - want.cost, "{what}: margin");
        assert_eq!(s.p50_ms, Some(want.p50), "{what}: p50");
        assert_eq!(s.p95_ms, Some(want.p95), "{what}: p95");
        assert_eq!(o.days.len(), want.range.days() as usize, "{what}: one point per day");
        assert_eq!(o.days.iter().map(|d| d.payers).sum::<i64>(), want.converted, "{what}: payers per day");
    }
    // By model and status, and failures by reason, over 7 days.
    let week = reports::overview(pool, TZ, rates, Range::Week).await.expect("overview");
    let nb21 = week.summary.by_model.iter().find(|m| m.model == "nb21").expect("nb21");
    let pro = week.summary.by_model.iter().find(|m| m.model == "pro").expect("pro");
    assert_eq!((nb21.succeeded, nb21.failed, pro.succeeded, pro.failed), (3, 1, 1, 1));
    assert_eq!(
        week.summary.failures,
        vec![("failed_blocked".to_owned(), 1), ("failed_deadline".to_owned(), 1)]
    );
    // The closed days of the 30-day window are in the rollup now; today never is.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM report_days WHERE day >= (now() AT TIME ZONE 'Europe/Moscow')::date - 29"
        )
        .await,
        29
    );
    let yesterday = &week.days[5];
    assert_eq!((yesterday.stars, yesterday.refund_kopecks, yesterday.payers), (50, 5_000, 1));

    // The page shows the same figures, formatted for people.
    let pages = [
        ("today", ["100.00 ₽", "33.3%", "16.80 ₽", "83.20 ₽", "4.0 s", "9.0 s", "33.3%"]),
        ("7d", ["425.00 ₽", "60.0%", "23.60 ₽", "351.40 ₽", "4.0 s", "9.0 s", "33.3%"]),
        ("30d", ["725.00 ₽", "66.7%", "37.00 ₽", "638.00 ₽", "6.0 s", "20.0 s", "28.6%"]),
    ];
    for (range, [revenue, conversion, cost, margin, p50, p95, failures]) in pages {
        let (status, html) = client.get(&format!("/panel?range={range}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{html}");
        for (id, text) in [
            ("revenue", revenue),
            ("conversion", conversion),
            ("cost", cost),
            ("margin", margin),
            ("p50", p50),
            ("p95", p95),
            ("failure-rate", failures),
        ] {
            assert!(html.contains(&format!("id=\"{id}\">{text}<")), "{range}: #{id} shows {text}");
        }
        assert_eq!(html.matches("<svg").count(), 3, "three charts");
    }
    let (_, week_page) = client.get("/panel?range=7d").await;
    assert!(week_page.contains("id=\"stars\">50 ⭐<"), "stars");
    assert!(week_page.contains("≈ 75.00 ₽"), "their ruble value");
    assert!(week_page.contains("blocked by the safety filter (failed_blocked)"));
    let (status, _) = client.get("/panel?range=1y").await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_overview_in_chromium_shows_the_seeded_figures_and_its_charts() {
    let admin = 9_300_901;
    let app = app(&admin.to_string()).await;
    let link = login_link(&app, admin).await;
    seed(&app.db.pool).await;

    let browser = Browser::start("panel-overview").await;
    browser.goto(&link).await;
    browser.click("#login", WAIT).await;
    browser.find("#figures", WAIT).await;
    browser.click("#recompute button", WAIT).await;
    browser
        .wait_until(
            "the recomputed figures",
            "return document.querySelector('#revenue')?.textContent === '425.00 ₽'",
            serde_json::json!(null),
            WAIT,
        )
        .await;
    let text = |id: &str| format!("return document.querySelector('#{id}')?.textContent");
    // The default window is 7 days.
    assert_eq!(browser.eval(&text("revenue"), serde_json::json!(null)).await, "425.00 ₽");
    assert_eq!(browser.eval(&text("new-users"), serde_json::json!(null)).await, "5");
    let polylines = browser
        .eval("return document.querySelectorAll('#chart-money polyline').length", serde_json::json!(null))
        .await;
    assert_eq!(polylines, 2, "revenue and cost");
    browser.screenshot("1-seven-days").await;
    browser.click("#ranges a[href='/panel?range=30d']", WAIT).await;
    browser
        .wait_until(
            "the 30-day figures",
            "return document.querySelector('#revenue')?.textContent === '725.00 ₽'",
            serde_json::json!(null),
            WAIT,
        )
        .await;
    assert_eq!(browser.eval(&text("margin"), serde_json::json!(null)).await, "638.00 ₽");
    let bars = browser
        .eval("return document.querySelectorAll('#chart-models rect.bar').length", serde_json::json!(null))
        .await;
    assert_eq!(bars, 6, "a bar per model and day with generations (4 days, 2 of them with two models)");
    browser.screenshot("2-thirty-days").await;
    browser.close().await;
}

#[tokio::test]
async fn the_daily_report_reaches_each_admin_once_when_two_replicas_send_it() {
    let (first, second) = (9_300_950, 9_300_951);
    let app = app(&format!("{first},{second}")).await;
    app.open_chat(first, "en").await;
    app.open_chat(second, "ru").await;
    seed(&app.db.pool).await;
    let report = DailyReport {
        timezone: TZ.to_owned(),
        hour: 0,
        admins: vec![first, second],
        rates: reports::rates(&app.config),
        panel_link: "https://panel.example/panel/".to_owned(),
    };
    let today: chrono::NaiveDate = sqlx::query_scalar("SELECT (now() AT TIME ZONE 'Europe/Moscow')::date")
        .fetch_one(&app.db.pool)
        .await
        .expect("today");
    let (one, two) = tokio::join!(report.send_for(&app.db.pool, today), report.send_for(&app.db.pool, today));
    let sent = [one.expect("first replica"), two.expect("second replica")];
    assert_eq!(sent.iter().filter(|s| **s).count(), 1, "one replica sends: {sent:?}");
    assert!(!report.send_for(&app.db.pool, today).await.expect("again"), "and never again that day");

    // Yesterday: C's 50 ⭐ (75 ₽), a 50 ₽ refund, two generations (one failed), 0.034 $ = 3.40 ₽.
    let en = app.wait_text(first, "Figures for").await.text().unwrap_or_default().to_owned();
    assert!(en.contains("Revenue: 75.00 ₽ (0.00 ₽ and 50 ⭐ ≈ 75.00 ₽)"), "{en}");
    assert!(en.contains("Refunds: 50.00 ₽"), "{en}");
    assert!(en.contains("Provider cost: 3.40 ₽"), "{en}");
    assert!(en.contains("Margin: 21.60 ₽"), "{en}");
    assert!(en.contains("Generations: 2 (done 1, failed 1, 50.0%)"), "{en}");
    assert!(en.contains("https://panel.example/panel/"), "{en}");
    let ru = app.wait_text(second, "Итоги за").await.text().unwrap_or_default().to_owned();
    assert!(ru.contains("Выручка: 75.00 ₽"), "{ru}");
    app.drained().await;
    assert_eq!(app.count_texts(first, "Figures for"), 1);
    assert_eq!(app.count_texts(second, "Итоги за"), 1);
}

#[tokio::test]
async fn an_unknown_operator_time_zone_is_refused_at_start_up_naming_the_variable() {
    let db = crate::support::TestDb::new().await;
    reports::check_timezone(&db.pool, "Europe/Moscow").await.expect("a zone Postgres knows");
    reports::check_timezone(&db.pool, "UTC").await.expect("the default");
    let refused = reports::check_timezone(&db.pool, "Mars/Olympus_Mons").await.expect_err("an unknown zone");
    assert!(refused.to_string().contains("OPERATOR_TIMEZONE"), "{refused}");
}
