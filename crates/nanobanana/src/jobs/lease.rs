//! What the holder of a lease may do besides settling: extend it, put the job back for a
//! later retry, or hand it back on shutdown. Each is fenced by the holder's epoch and
//! `status = 'processing'`; `false` means the lease is gone and nothing changed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Extends the lease to now + `lease` (clamped to `MAX_LEASE`). `false`: this holder lost the
/// job (reclaimed, expired by deadline, settled) and must stop working on it.
pub async fn heartbeat(conn: &mut PgConnection, id: Uuid, epoch: i64, lease: Duration) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE generations SET locked_until = now() + $3::interval
         WHERE id = $1 AND lease_epoch = $2 AND status = 'processing'",
    )
    .bind(id)
    .bind(epoch)
    .bind(super::interval(lease))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// A retryable failure: back to `queued`, due at `run_after`, `error` kept as `last_error`.
/// No ledger change: the reservation stays until the generation ends (DESIGN §9).
/// `false`: this holder lost the job; nothing changed.
pub async fn retry_later(
    conn: &mut PgConnection,
    id: Uuid,
    epoch: i64,
    run_after: DateTime<Utc>,
    error: &str,
) -> sqlx::Result<bool> {
    requeue(conn, id, epoch, run_after, error, 0).await
}

/// Back to `queued` without counting the attempt the claim counted (generation was paused or
/// no Gemini slot was free: the job itself did nothing wrong). `false`: lease lost.
pub async fn requeue_uncounted(
    conn: &mut PgConnection,
    id: Uuid,
    epoch: i64,
    run_after: DateTime<Utc>,
    error: &str,
) -> sqlx::Result<bool> {
    requeue(conn, id, epoch, run_after, error, 1).await
}

async fn requeue(
    conn: &mut PgConnection,
    id: Uuid,
    epoch: i64,
    run_after: DateTime<Utc>,
    error: &str,
    refund_attempts: i32,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE generations
         SET status = 'queued', run_after = $3, last_error = $4,
             attempts = GREATEST(attempts - $5, 0), locked_until = NULL, worker_id = NULL
         WHERE id = $1 AND lease_epoch = $2 AND status = 'processing'",
    )
    .bind(id)
    .bind(epoch)
    .bind(run_after)
    .bind(error)
    .bind(refund_attempts)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Graceful shutdown: releases the lease and makes the job due now for another worker. The
/// attempt is not counted, since this worker gave up before an outcome. `false`: this holder
/// had already lost the job; nothing changed.
pub async fn hand_back(conn: &mut PgConnection, id: Uuid, epoch: i64) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE generations
         SET status = 'queued', run_after = now(), attempts = GREATEST(attempts - 1, 0),
             locked_until = NULL, worker_id = NULL
         WHERE id = $1 AND lease_epoch = $2 AND status = 'processing'",
    )
    .bind(id)
    .bind(epoch)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}
