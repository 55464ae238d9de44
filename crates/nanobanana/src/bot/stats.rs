//! `/stats` for admins: the seed's metrics (active users, generations per day, average cost,
//! conversion to payment, processing time) plus credits sold and spent, revenue, and the
//! provider's cost: what the worker recorded per generation, the configured tariff where it
//! recorded nothing.
//! Read-only.

use sqlx::PgConnection;

use super::BotError;
use crate::config::Config;
use crate::domain::ImageSize;
use crate::texts::{render, Lang};

#[derive(sqlx::FromRow)]
struct Counts {
    users: i64,
    active_day: i64,
    active_week: i64,
    paying: i64,
    today: i64,
    queued: i64,
    processing: i64,
    succeeded: i64,
    failed: i64,
    week: i64,
    avg_cost: Option<f64>,
    avg_seconds: Option<f64>,
    sold: i64,
    spent: i64,
    granted: i64,
    kopecks: i64,
    stars: i64,
}

const COUNTS: &str = "
    SELECT
        (SELECT COUNT(*) FROM users) AS users,
        (SELECT COUNT(*) FROM users WHERE last_seen_at >= now() - interval '1 day') AS active_day,
        (SELECT COUNT(*) FROM users WHERE last_seen_at >= now() - interval '7 days') AS active_week,
        (SELECT COUNT(DISTINCT user_id) FROM payments WHERE status = 'succeeded') AS paying,
        g.today, g.queued, g.processing, g.succeeded, g.failed, g.week,
        (SELECT AVG(COALESCE(charged, cost))::float8 FROM generations WHERE status = 'succeeded') AS avg_cost,
        (SELECT EXTRACT(EPOCH FROM AVG(completed_at - started_at))::float8 FROM generations
          WHERE status = 'succeeded' AND completed_at >= now() - interval '7 days'
            AND started_at IS NOT NULL) AS avg_seconds,
        t.sold, t.spent, t.granted,
        (SELECT COALESCE(SUM(amount_minor), 0)::int8 FROM payments
          WHERE status = 'succeeded' AND currency = 'RUB') AS kopecks,
        (SELECT COALESCE(SUM(amount_minor), 0)::int8 FROM payments
          WHERE status = 'succeeded' AND currency = 'XTR') AS stars
    FROM (SELECT
            COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now())) AS today,
            COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now()) AND status = 'queued') AS queued,
            COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now()) AND status = 'processing')
                AS processing,
            COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now()) AND status = 'succeeded')
                AS succeeded,
            COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now()) AND status = 'failed') AS failed,
            COUNT(*) FILTER (WHERE created_at >= now() - interval '7 days') AS week
          FROM generations) g,
         (SELECT
            COALESCE(SUM(amount) FILTER (WHERE type = 'topup'), 0)::int8 AS sold,
            COALESCE(SUM(amount - delta_available) FILTER (WHERE type = 'commit'), 0)::int8 AS spent,
            COALESCE(SUM(amount) FILTER (WHERE type IN ('grant', 'bonus')), 0)::int8 AS granted
          FROM transactions) t";

/// The stats message.
pub async fn render_stats(conn: &mut PgConnection, config: &Config, lang: Lang) -> Result<String, BotError> {
    let c: Counts = sqlx::query_as(COUNTS).fetch_one(&mut *conn).await?;
    let per_variant: Vec<(String, Option<String>, i64, i64, i64)> = sqlx::query_as(
        "SELECT model, COALESCE(delivered_size, image_size), COUNT(*) FILTER (WHERE provider_cost_micro_usd IS NULL),
                COALESCE(SUM(provider_cost_micro_usd), 0)::int8, COUNT(*)
         FROM generations WHERE status = 'succeeded' GROUP BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    let rate = i128::from(config.pricing.usd_rate.get());
    let provider_kopecks: i64 = per_variant
        .iter()
        .map(|(model, size, unrecorded, recorded_micro_usd, _)| {
            let recorded =
                i64::try_from(i128::from(*recorded_micro_usd) * rate / 1_000_000).unwrap_or(i64::MAX);
            let estimated = config.catalog.find(model).map_or(0, |model| {
                let size = size.as_deref().and_then(|s| ImageSize::parse(s).ok());
                let each = model.cost(size.unwrap_or(ImageSize::K1)).to_kopecks(config.pricing.usd_rate);
                each.get().saturating_mul(*unrecorded)
            });
            recorded.saturating_add(estimated)
        })
        .fold(0i64, i64::saturating_add);
    let models = per_model(&per_variant, config, lang);
    // Credits are rubles (1 credit = 1 ₽): the margin is what was spent minus what it cost us.
    let margin_kopecks = c.spent.saturating_mul(100).saturating_sub(provider_kopecks);
    let conversion = if c.users > 0 { c.paying as f64 * 100.0 / c.users as f64 } else { 0.0 };
    let rubles = |k: i64| {
        let sign = if k < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", k.unsigned_abs() / 100, k.unsigned_abs() % 100)
    };
    let one = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}"));
    let n = |v: i64| v.to_string();
    Ok(render(
        lang,
        "admin_stats",
        &[
            ("users", &n(c.users)),
            ("active_day", &n(c.active_day)),
            ("active_week", &n(c.active_week)),
            ("today", &n(c.today)),
            ("queued", &n(c.queued)),
            ("processing", &n(c.processing)),
            ("succeeded", &n(c.succeeded)),
            ("failed", &n(c.failed)),
            ("week", &n(c.week)),
            ("avg_cost", &one(c.avg_cost)),
            ("paying", &n(c.paying)),
            ("conversion", &format!("{conversion:.1}")),
            ("avg_seconds", &one(c.avg_seconds)),
            ("sold", &n(c.sold)),
            ("spent", &n(c.spent)),
            ("granted", &n(c.granted)),
            ("rubles", &rubles(c.kopecks)),
            ("stars", &n(c.stars)),
            ("provider", &rubles(provider_kopecks)),
            ("margin", &rubles(margin_kopecks)),
            ("models", &models),
        ],
    ))
}

/// Finished pictures per model of the catalog (a stored key of an earlier release counts under
/// the model that replaced it; a key the catalog lacks under itself).
fn per_model(rows: &[(String, Option<String>, i64, i64, i64)], config: &Config, lang: Lang) -> String {
    let counts: Vec<(String, i64)> = rows.iter().fold(Vec::new(), |mut acc, (model, _, _, _, count)| {
        let label =
            config.catalog.find(model).map_or_else(|| model.clone(), |m| m.name(lang == Lang::En).to_owned());
        match acc.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += count,
            None => acc.push((label, *count)),
        }
        acc
    });
    if counts.is_empty() {
        return "—".to_owned();
    }
    counts.iter().map(|(label, n)| format!("{label}: {n}")).collect::<Vec<_>>().join(", ")
}
