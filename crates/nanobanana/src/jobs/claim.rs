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

impl Claimed {
    /// When a retry of this attempt may run: now + `backoff(attempts)`.
    pub fn retry_at(&self) -> DateTime<Utc> {
        let attempt = u32::try_from(self.attempts).unwrap_or(1);
        let delay = chrono::Duration::from_std(super::backoff(attempt))
            .unwrap_or_else(|_| chrono::Duration::seconds(64));
        Utc::now() + delay
    }
}

/// A fresh worker id for `claim` and the logs: the host (when `HOSTNAME` says), the process
/// and a random suffix, so two workers never share one, even in one process.
pub fn new_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let host: String = host.chars().filter(char::is_ascii_graphic).take(63).collect();
    let host = if host.is_empty() { "worker".to_owned() } else { host };
    let suffix = Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_runs_after_the_backoff_of_its_attempt() {
        let now = Utc::now();
        let claimed =
            Claimed { id: Uuid::nil(), user_id: 1, epoch: 1, attempts: 3, deadline: now, locked_until: now };
        let wait = claimed.retry_at() - now;
        assert!(wait >= chrono::Duration::seconds(4) && wait <= chrono::Duration::seconds(9), "{wait}");
    }

    #[test]
    fn worker_ids_differ() {
        let (a, b) = (new_worker_id(), new_worker_id());
        assert_ne!(a, b);
        assert!(a.len() <= 63 + 1 + 10 + 1 + 8, "{a}");
    }
}
