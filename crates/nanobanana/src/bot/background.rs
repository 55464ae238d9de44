//! What `serve` runs beside the webhook for the conversation (DESIGN §10): the resumer of
//! updates whose payment step had an unknown outcome (same idempotence key, never a 5xx to
//! Telegram), the reconciler of held Stars refunds against `getStarTransactions`, and the
//! pruning of updates older than Telegram can repeat.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::inbox::Bot;

/// Between passes.
pub const EVERY: Duration = Duration::from_secs(2);
/// A step whose outcome was unknown is tried again after this long.
pub const STEP_RETRY: Duration = Duration::from_secs(5);
/// A held Stars refund is looked up once nothing has happened to it for this long.
pub const STARS_REFUND_AGE: Duration = Duration::from_secs(5);
/// Handled updates are forgotten after this long (Telegram repeats one for at most 24 h).
pub const KEEP_UPDATES: Duration = Duration::from_secs(3 * 24 * 3600);
/// Stars reconciling and pruning run every this many passes.
const SLOW_EVERY: u32 = 5;

/// Passes until `shutdown` turns true.
pub async fn run(bot: Arc<Bot>, mut shutdown: watch::Receiver<bool>) {
    let mut pass = 0u32;
    while !*shutdown.borrow() {
        if let Err(e) = bot.resume_open(STEP_RETRY, 20).await {
            tracing::warn!(error = %e, "update resumer pass failed");
        }
        if pass % SLOW_EVERY == 0 {
            slow(&bot).await;
        }
        pass = pass.wrapping_add(1);
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn slow(bot: &Bot) {
    let started = std::time::Instant::now();
    let result = crate::payments::refund::reconcile_stars(
        &bot.pool,
        &bot.api,
        STARS_REFUND_AGE,
        &bot.config.operator.admin_ids,
    )
    .await;
    match &result {
        Ok(0) => {}
        Ok(n) => tracing::info!(held = n, "held Stars refunds reconciled"),
        Err(e) => tracing::warn!(error = %e, "Stars refund reconciler pass failed"),
    }
    let result = result.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    crate::db::runs::note(&bot.pool, crate::db::runs::STARS_REFUNDS, started, &result).await;
    match super::updates::prune(&bot.pool, KEEP_UPDATES, 1000).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(pruned = n, "old updates forgotten"),
        Err(e) => tracing::warn!(error = %e, "pruning updates failed"),
    }
}
