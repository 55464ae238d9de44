//! The sender's SQL over the `outbox` table (owned by `outbox`): the due head of each chat, and
//! what happened to a row — sent (with Telegram's `message_id`), tried again later, dropped —
//! or to a chat's whole queue.

use std::time::Duration;

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, sqlx::FromRow)]
pub(super) struct Row {
    pub(super) id: i64,
    pub(super) chat_id: i64,
    pub(super) method: String,
    pub(super) params: Value,
    pub(super) edits: Option<i64>,
    pub(super) attempts: i32,
    /// A status message row: its text is rendered from this generation when sent.
    pub(super) status_of: Option<uuid::Uuid>,
    /// Its priority class (`Class`): 0 is a paid delivery.
    pub(super) class: i16,
    /// The best class queued in its chat (0: a paid delivery waits behind this row).
    pub(super) best: i16,
}

/// Each chat's head: its oldest pending row, except that a progress edit not due yet lets the
/// rows behind it pass (a final status edit never does), and a broadcast goes after the chat's
/// other rows (it belongs to no conversation, so nothing waits for it). Chats in priority order: a chat's
/// head takes the best class queued in that chat (a paid picture lifts the status edit and
/// replies before it), then deliveries before status edits, then age. With whether the row is
/// due. Every pending row is read on each pass, so the heads are chosen from narrow rows and
/// only the chosen ones are read whole: with 20,000 pending rows in 1,000 chats this took 66 ms
/// (the whole rows sorted on disk) and takes 24 ms.
pub(super) async fn heads(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<(Row, bool)>> {
    type HeadRow = (i64, i64, String, Value, Option<i64>, i32, Option<uuid::Uuid>, i16, i16, bool);
    let rows: Vec<HeadRow> = sqlx::query_as(
        "SELECT o.id, o.chat_id, o.method, o.params, o.edits, o.attempts, o.status_of, o.class, h.best,
                o.next_attempt_at <= now()
         FROM (SELECT id, best, has_status
               FROM (SELECT DISTINCT ON (chat_id) id, status_of IS NOT NULL AS has_status,
                            MIN(class) OVER (PARTITION BY chat_id) AS best
                     FROM outbox
                     WHERE state = 'pending'
                       AND (status_of IS NULL OR next_attempt_at <= now() OR params->>'final' = 'true')
                     ORDER BY chat_id, class = 3, id) d
               ORDER BY best, has_status, id LIMIT $1) h
         JOIN outbox o ON o.id = h.id
         ORDER BY h.best, h.has_status, o.id",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, chat_id, method, params, edits, attempts, status_of, class, best, due)| {
            (Row { id, chat_id, method, params, edits, attempts, status_of, class, best }, due)
        })
        .collect())
}

/// The newest pending paid delivery's id (0 without one).
pub(super) async fn newest_paid(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox WHERE state = 'pending' AND class = 0")
        .fetch_one(pool)
        .await
}

/// The message an edit targets: its `message_id` once sent, and its state.
pub(super) async fn edit_target(pool: &PgPool, target: i64) -> sqlx::Result<Option<(Option<i64>, String)>> {
    sqlx::query_as("SELECT message_id, state FROM outbox WHERE id = $1")
        .bind(target)
        .fetch_optional(pool)
        .await
}

pub(super) async fn mark_sent(pool: &PgPool, id: i64, message_id: Option<i64>) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET state = 'sent', message_id = $2, sent_at = now() WHERE id = $1")
        .bind(id)
        .bind(message_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn mark_dropped(pool: &PgPool, id: i64, reason: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET state = 'dropped', last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// Takes a row out of 'pending' into 'sending' just before its send (broadcasts: at most
/// once), noting when in `next_attempt_at`; `false` if it is not pending any more. A row still
/// 'sending' a minute later was on the wire when its sender died: its outcome is unknown.
pub(super) async fn claim_once(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'sending', next_attempt_at = now() WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn retry_later(pool: &PgPool, id: i64, reason: &str, after: Duration) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                           state = CASE WHEN state = 'sending' THEN 'pending' ELSE state END,
                           next_attempt_at = now() + make_interval(secs => $3)
         WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .bind(after.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops everything still pending for `chat`, except paid deliveries, which are parked until
/// the user is back.
pub(super) async fn drop_chat(conn: &mut PgConnection, chat: i64, reason: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET state = CASE WHEN class = 0 THEN 'parked' ELSE 'dropped' END, last_error = $2
         WHERE chat_id = $1 AND state IN ('pending', 'sending')",
    )
    .bind(chat)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
