//! Claiming jobs: one fenced conditional update that takes due jobs and expired leases.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::TelegramId;

/// A job this worker now holds. Every later write of it must present `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub user_id: TelegramId,
    /// The lease epoch this claim created.
    pub epoch: i64,
    /// Attempts so far, this one included (1 on the first claim).
    pub attempts: i32,
    /// The generation must be over by then; past it, `expire_overdue` takes it over.
    pub deadline: DateTime<Utc>,
    pub locked_until: DateTime<Utc>,
}

/// Expired leases first (they are the oldest work), then due queued jobs in `run_after` order;
/// jobs past their deadline are left to `expire_overdue`. `SKIP LOCKED` lets concurrent
/// claimers pass each other; the row lock taken by the selects makes each job go to one
/// claimer, and the `lease_epoch` bump fences out whoever held it before.
const CLAIM: &str = "
WITH expired AS (
    SELECT id FROM generations
    WHERE status = 'processing' AND locked_until < now() AND deadline > now()
    ORDER BY locked_until
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id FROM generations
    WHERE status = 'queued' AND run_after <= now() AND deadline > now()
    ORDER BY run_after
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id FROM (SELECT id FROM expired UNION ALL SELECT id FROM due) AS both_kinds LIMIT $3
)
UPDATE generations AS g
SET status = 'processing',
    lease_epoch = g.lease_epoch + 1,
    attempts = g.attempts + 1,
    locked_until = now() + $2::interval,
    worker_id = $1,
    started_at = now()
FROM picked
WHERE g.id = picked.id
RETURNING g.id, g.user_id, g.lease_epoch AS epoch, g.attempts, g.deadline, g.locked_until";

/// Takes up to `limit` jobs for `worker_id` under a lease of `lease` (both clamped to
/// `MAX_BATCH` / `MAX_LEASE`). Concurrent claimers never get the same job under the same
/// epoch; an expired lease is taken over with a higher epoch.
pub async fn claim(
    conn: &mut PgConnection,
    worker_id: &str,
    lease: Duration,
    limit: u32,
) -> sqlx::Result<Vec<Claimed>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    sqlx::query_as(CLAIM)
        .bind(worker_id)
        .bind(super::interval(lease))
        .bind(super::batch(limit))
        .fetch_all(conn)
        .await
}
