//! Moves the recipients of running broadcasts into the outbox, a few at a time: the outbox
//! holds at most `MAX_QUEUED` broadcast rows, so its sender's passes stay short and a paid
//! delivery never queues behind thousands of rows (it goes first anyway, by class). Each
//! recipient gets its outbox row in the transaction that records it on the recipient
//! (`FOR UPDATE SKIP LOCKED`, so two feeders never take the same one), hence once, whatever
//! restarts. A running broadcast with no one left to feed or send (nothing on the wire for less
//! than a minute) is done.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgPool};
use tokio::sync::{watch, Notify};

use super::{message, Broadcast, COLUMNS};
use crate::outbox::{self, Class};

/// Broadcast rows the outbox may hold at once (about two seconds of Telegram's budget).
pub const MAX_QUEUED: i64 = 60;
const EVERY: Duration = Duration::from_millis(500);

/// Feeds until `shutdown`; wakes the outbox sender after each batch.
pub async fn run(pool: PgPool, outbox_wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        match feed_once(&pool, MAX_QUEUED).await {
            Ok(0) => {}
            Ok(_) => outbox_wake.notify_one(),
            Err(e) => tracing::warn!(error = %e, "broadcast feeder failed; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One round: tops the outbox up to `max_queued` broadcast rows from the running broadcasts
/// (oldest first) and finishes those with nothing left. How many rows it queued.
pub async fn feed_once(pool: &PgPool, max_queued: i64) -> sqlx::Result<usize> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let running: Vec<Broadcast> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM broadcasts WHERE state = 'running' ORDER BY id"))
            .fetch_all(&mut *tx)
            .await?;
    let mut room = max_queued - outbox::pending_in_class(&mut tx, Class::Broadcast).await?;
    let mut queued = 0;
    for broadcast in &running {
        if room > 0 {
            let next: Vec<i64> = sqlx::query_scalar(
                "SELECT user_id FROM broadcast_recipients WHERE broadcast_id = $1 AND outbox_id IS NULL
                 ORDER BY user_id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(broadcast.id)
            .bind(room)
            .fetch_all(&mut *tx)
            .await?;
            for user in next {
                let (method, params) = message(broadcast, user);
                let row = outbox::enqueue_as(&mut tx, user, method, params, Class::Broadcast).await?;
                sqlx::query(
                    "UPDATE broadcast_recipients SET outbox_id = $3 WHERE broadcast_id = $1 AND user_id = $2",
                )
                .bind(broadcast.id)
                .bind(user)
                .bind(row)
                .execute(&mut *tx)
                .await?;
                room -= 1;
                queued += 1;
            }
        }
        let done = sqlx::query(
            "UPDATE broadcasts SET state = 'done', finished_at = now()
             WHERE id = $1 AND state = 'running'
               AND NOT EXISTS (SELECT 1 FROM broadcast_recipients r LEFT JOIN outbox o ON o.id = r.outbox_id
                               WHERE r.broadcast_id = $1
                                 AND (r.outbox_id IS NULL OR o.state = 'pending'
                                      OR (o.state = 'sending' AND o.next_attempt_at > now() - interval '1 minute')))",
        )
        .bind(broadcast.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            tracing::info!(broadcast_id = broadcast.id, "broadcast done");
        }
    }
    tx.commit().await?;
    Ok(queued)
}
