//! The reconciler (DESIGN §1.4): charges still pending are read again with `GET` and settled
//! exactly as a notification would settle them, so a dropped notification only delays a
//! credit, and a late `succeeded` is still credited (no local timer ever finalizes a charge).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{PaymentError, YooKassa};

/// Between passes.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// A charge is polled once nothing has been heard of it for this long.
pub const MIN_AGE: Duration = Duration::from_secs(60);
const BATCH: i64 = 100;

/// The advisory lock that makes one replica's reconciler the only one polling YooKassa.
pub const RECONCILER_LOCK: i64 = 0x6e62_7265_636f_6e63; // "nbreconc"

/// One pass over charges unheard of for `min_age`; returns how many were checked.
/// Every such charge is checked once per pass, in pages ordered by (`updated_at`, `id`) with a
/// cursor: a charge the provider still reports pending keeps its `updated_at`, so a page that
/// always began at the oldest rows would read the same ones forever and never reach the rest.
/// A failure of one charge is logged and the pass goes on; a database failure ends it.
pub async fn reconcile_once(yk: &YooKassa, min_age: Duration) -> Result<usize, PaymentError> {
    // Fixed for the pass: a charge touched during it is newer and is not read twice.
    let cutoff: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now() - make_interval(secs => $1)")
            .bind(min_age.as_secs_f64())
            .fetch_one(&yk.pool)
            .await?;
    let mut checked = 0;
    let mut after: Option<(chrono::DateTime<chrono::Utc>, i64)> = None;
    loop {
        let page: Vec<(String, chrono::DateTime<chrono::Utc>, i64)> = sqlx::query_as(
            "SELECT payment_id, updated_at, id FROM payments
             WHERE provider = 'yookassa' AND status IN ('pending', 'waiting_for_capture')
               AND updated_at <= $1
               AND ($3::timestamptz IS NULL OR (updated_at, id) > ($3, $4))
             ORDER BY updated_at, id LIMIT $2",
        )
        .bind(cutoff)
        .bind(BATCH)
        .bind(after.map(|(at, _)| at))
        .bind(after.map_or(0, |(_, id)| id))
        .fetch_all(&yk.pool)
        .await?;
        let Some((_, at, id)) = page.last() else {
            break;
        };
        after = Some((*at, *id));
        for (payment_id, _, _) in &page {
            match yk.check_payment(payment_id).await {
                Ok(settled) => tracing::debug!(payment_id = %payment_id, ?settled, "reconciled"),
                Err(PaymentError::Db(e)) => return Err(PaymentError::Db(e)),
                Err(e) => {
                    tracing::warn!(payment_id = %payment_id, error = %e, "reconciling failed; next pass retries")
                }
            }
        }
        checked += page.len();
        if page.len() < BATCH as usize {
            break;
        }
    }
    let refunds = super::refund::reconcile_held(yk).await?;
    Ok(checked + refunds)
}

/// One pass if this process holds the reconciler's leader lock (taken for the pass on a
/// connection of its own, so it is released even if the process dies); `None` when another
/// replica is the leader. Replicas thus never poll YooKassa for the same charge at once.
pub async fn reconcile_as_leader(yk: &YooKassa, min_age: Duration) -> Result<Option<usize>, PaymentError> {
    use sqlx::Connection;
    let mut leader = yk.pool.acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RECONCILER_LOCK)
        .fetch_one(&mut leader)
        .await?;
    if !got {
        leader.close().await.ok();
        return Ok(None);
    }
    let result = reconcile_once(yk, min_age).await;
    // Closing the session releases the lock whatever happened to the pass.
    leader.close().await.ok();
    result.map(Some)
}

/// Passes every `interval` until `shutdown` turns true; a replica that is not the leader skips.
pub async fn reconcile_loop(yk: Arc<YooKassa>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        let started = std::time::Instant::now();
        let pass = match reconcile_as_leader(&yk, MIN_AGE).await {
            Ok(Some(n)) => Some(Ok(i64::try_from(n).unwrap_or(i64::MAX))),
            Ok(None) => {
                tracing::debug!("another replica reconciles this pass");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "reconciler pass failed");
                Some(Err(e))
            }
        };
        if let Some(result) = pass {
            crate::db::runs::note(&yk.pool, crate::db::runs::PAYMENTS, started, &result).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
