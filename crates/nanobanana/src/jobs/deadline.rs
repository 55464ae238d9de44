//! The deadline sweep (DESIGN §1.4): a generation not over by its deadline ends `failed` with
//! its credits released — through `ledger::settle` under an epoch the sweep has just claimed,
//! so it can never settle a generation a live worker settles too.

use std::time::Duration;

use sqlx::{Acquire, PgPool};
use uuid::Uuid;

use crate::ledger::{self, Entry, Settled, Settlement};

/// The `worker_id` the sweep claims with, and the error it settles with.
pub const SWEEPER_ID: &str = "deadline-sweep";
pub const DEADLINE_ERROR: &str = "deadline_exceeded";

/// A generation the sweep ended, and the `release` it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub id: Uuid,
    pub entry: Entry,
}

/// Past-deadline jobs nobody is working on (queued, or a lease that expired or was never
/// set), and those whose holder has overrun the deadline by more than `grace`; a fresh epoch
/// for each, so that a holder still busy with one finds its epoch gone.
const CLAIM_OVERDUE: &str = "
UPDATE generations AS g
SET status = 'processing',
    lease_epoch = g.lease_epoch + 1,
    locked_until = now() + interval '1 minute',
    worker_id = $1
FROM (
    SELECT id FROM generations
    WHERE status IN ('queued', 'processing') AND deadline <= now()
      AND (status = 'queued' OR locked_until IS NULL OR locked_until < now()
           OR deadline <= now() - $2::interval)
    ORDER BY deadline
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) AS overdue
WHERE g.id = overdue.id
RETURNING g.id, g.lease_epoch";

/// Ends up to `limit` overdue generations as `failed` + `release`, in one transaction; returns
/// those it ended (for telling their users). A holder that overruns its deadline keeps its
/// job for `grace` more, so a result being stored right at the deadline can still commit.
/// A row the ledger refuses is logged and left to the next sweep; the others still end.
pub async fn expire_overdue(pool: &PgPool, grace: Duration, limit: u32) -> sqlx::Result<Vec<Expired>> {
    let mut tx = pool.begin().await?;
    let claimed: Vec<(Uuid, i64)> = sqlx::query_as(CLAIM_OVERDUE)
        .bind(SWEEPER_ID)
        .bind(super::interval(grace))
        .bind(super::batch(limit))
        .fetch_all(&mut *tx)
        .await?;
    let expired = release_claimed(&mut tx, claimed, DEADLINE_ERROR).await?;
    tx.commit().await?;
    Ok(expired)
}

/// Ends each claimed `(id, epoch)` `failed` with `error` and its credits released, each in a
/// savepoint of `tx`: a row the ledger refuses is logged and left to the next sweep.
pub(super) async fn release_claimed(
    tx: &mut sqlx::PgConnection,
    claimed: Vec<(Uuid, i64)>,
    error: &str,
) -> sqlx::Result<Vec<Expired>> {
    let mut expired = Vec::with_capacity(claimed.len());
    for (id, epoch) in claimed {
        let mut savepoint = tx.begin().await?;
        let settlement = Settlement::Release { error };
        match ledger::settle(&mut savepoint, id, epoch, settlement).await {
            Ok(Settled::Now(entry)) => {
                savepoint.commit().await?;
                tracing::info!(generation_id = %id, user_id = entry.user_id, amount = entry.amount, error,
                    "generation failed, credits released");
                expired.push(Expired { id, entry });
            }
            // Impossible while this transaction holds the row; nothing to undo but the claim.
            Ok(Settled::Stale) => savepoint.rollback().await?,
            Err(error) => {
                tracing::error!(generation_id = %id, %error, "could not settle a claimed generation");
                savepoint.rollback().await?;
            }
        }
    }
    Ok(expired)
}
