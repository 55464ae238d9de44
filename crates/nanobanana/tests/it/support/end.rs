//! What every end-to-end test ends with (CONVENTIONS, Tests): no update left unhandled, no
//! outbox row left pending, no generation left queued or processing, and the audit clean.

use std::time::Duration;

use sqlx::PgPool;

use super::wait;

/// What a test leaves unfinished on purpose, each use with a comment saying why. The default
/// leaves nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Leave {
    /// Generations still `queued` or `processing` (e.g. handed back by a stopped worker).
    pub generations: bool,
    /// Outbox rows still `pending` (e.g. more than Telegram's pace lets through in time).
    pub pending_outbox: bool,
    /// Outbox rows `dropped` (e.g. to a user who blocked the bot or never opened a chat).
    pub dropped_outbox: bool,
}

/// One row per unfinished kind of thing, for the message of a test that timed out.
const UNFINISHED: &str = "
    SELECT 'telegram_updates not handled', COUNT(*) FROM telegram_updates WHERE state <> 'handled'
    UNION ALL SELECT 'outbox pending', COUNT(*) FROM outbox WHERE state = 'pending'
    UNION ALL SELECT 'generations queued or processing', COUNT(*) FROM generations
              WHERE status IN ('queued', 'processing')
    UNION ALL SELECT 'outbox dropped', COUNT(*) FROM outbox WHERE state = 'dropped'";

/// Waits until nothing is left unfinished but what `leave` allows, then asserts the audit is
/// clean. Needs no running service beyond what should finish the work.
pub async fn settled(pool: &PgPool, leave: Leave, timeout: Duration) {
    wait::until("the end: everything handled, sent and finished", timeout, || async {
        let rows: Vec<(String, i64)> = sqlx::query_as(UNFINISHED).fetch_all(pool).await.expect("unfinished");
        let left: Vec<&(String, i64)> = rows
            .iter()
            .filter(|(what, n)| {
                *n > 0
                    && !(leave.generations && what.starts_with("generations"))
                    && !(leave.pending_outbox && what == "outbox pending")
                    && !(leave.dropped_outbox && what == "outbox dropped")
            })
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left: {left:?}"))
        }
    })
    .await;
    let report =
        nanobanana::audit::run(&mut *pool.acquire().await.expect("a connection")).await.expect("audit runs");
    assert!(report.clean, "audit found violations:\n{report}");
}
