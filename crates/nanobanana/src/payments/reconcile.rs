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

/// One pass over charges unheard of for `min_age`; returns how many were checked.
/// A failure of one charge is logged and the pass goes on; a database failure ends it.
pub async fn reconcile_once(yk: &YooKassa, min_age: Duration) -> Result<usize, PaymentError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT payment_id FROM payments
         WHERE provider = 'yookassa' AND status IN ('pending', 'waiting_for_capture')
           AND updated_at <= now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT $2",
    )
    .bind(min_age.as_secs_f64())
    .bind(BATCH)
    .fetch_all(&yk.pool)
    .await?;
    for id in &ids {
        match yk.check_payment(id).await {
            Ok(settled) => tracing::debug!(payment_id = %id, ?settled, "reconciled"),
            Err(PaymentError::Db(e)) => return Err(PaymentError::Db(e)),
            Err(e) => tracing::warn!(payment_id = %id, error = %e, "reconciling failed; next pass retries"),
        }
    }
    let refunds = super::refund::reconcile_held(yk).await?;
    Ok(ids.len() + refunds)
}

/// Passes every `interval` until `shutdown` turns true.
pub async fn reconcile_loop(yk: Arc<YooKassa>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if let Err(e) = reconcile_once(&yk, MIN_AGE).await {
            tracing::error!(error = %e, "reconciler pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
