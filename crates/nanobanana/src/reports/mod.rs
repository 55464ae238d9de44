//! The operator's figures (issue #19, DESIGN §10): the overview of today, 7 and 30 days and the
//! daily report. Reads every table; writes only its own rollup (`report_days`,
//! `report_generations`, `report_latency`, in `days`) and, through `outbox::alerts`, the daily
//! report's messages. Days are calendar days in the operator's time zone, bucketed by Postgres
//! (`AT TIME ZONE`); money is integer kopecks and Stars, converted at configured rates.

pub mod daily;
pub mod days;
pub mod figures;
pub mod overview;
pub mod summary;

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

pub use figures::{DayFigures, Money, Range, Rates};
pub use overview::{overview, Overview};
pub use summary::{ModelCounts, Summary};

use crate::config::Config;

/// How many closed days the background refresher keeps stored (the longest window, plus margin).
pub const KEPT_DAYS: u64 = 35;

/// How often the background refresher runs.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);

/// The rates of `config` (`USD_RUB_RATE`, `STAR_RUB_RATE`).
pub fn rates(config: &Config) -> Rates {
    Rates { usd: config.pricing.usd_rate, star: config.pricing.star_rate }
}

/// Refuses at start-up a time zone Postgres does not know, naming the variable.
pub async fn check_timezone(pool: &PgPool, tz: &str) -> anyhow::Result<()> {
    sqlx::query("SELECT now() AT TIME ZONE $1")
        .bind(tz)
        .execute(pool)
        .await
        .map_err(|e| anyhow::anyhow!("OPERATOR_TIMEZONE={tz:?} is not a time zone Postgres knows: {e}"))?;
    Ok(())
}

/// How long after start the first background pass runs: a page opened before it stores what it
/// misses itself, and a short-lived process (a test, a one-off `run`) never pays for it.
pub const FIRST_REFRESH_AFTER: Duration = Duration::from_secs(60);

/// Until shutdown: keeps the rollup of closed days stored and fresh, one pass every
/// `REFRESH_EVERY` (the first `FIRST_REFRESH_AFTER` after start).
pub async fn refresh_loop(pool: PgPool, tz: String, mut shutdown: watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(FIRST_REFRESH_AFTER) => {}
        _ = shutdown.changed() => return,
    }
    while !*shutdown.borrow() {
        match days::refresh(&pool, &tz, KEPT_DAYS).await {
            Ok(stored) => tracing::debug!(stored, "overview rollup refreshed"),
            Err(e) => tracing::warn!(error = %e, "overview rollup refresh failed; retrying later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}
