//! The outbox (DESIGN §2, L3; §4 "Outbox sender"): Telegram requests written in the
//! transaction of the change that causes them (`enqueue`, `send_text`), the status message of
//! a generation (`status`), and the one active sender that delivers them (`sender`). The
//! sender is the only code that sends messages through the Bot API client.
//!
//! Rows have a priority class (DESIGN §10): paid deliveries, replies, progress edits,
//! broadcasts. A paid delivery is never dropped for a transient failure and is parked, not
//! dropped, while its user has blocked the bot (`unpark` when they are back).

pub mod alerts;
mod attachment;
pub mod group;
mod rows;
mod sender;
pub mod status;

pub use sender::Sender;

/// The priority class of a row (`outbox.class`): lower goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The result of a paid generation: never dropped for a transient failure.
    Paid = 0,
    Reply = 1,
    Progress = 2,
    Broadcast = 3,
}

use serde_json::Value;
use sqlx::PgConnection;

/// Queues `method(params)` to `chat_id`; returns the row id. Call inside the transaction of the
/// change that causes the message.
pub async fn enqueue(
    conn: &mut PgConnection,
    chat_id: i64,
    method: &str,
    params: Value,
) -> sqlx::Result<i64> {
    enqueue_as(conn, chat_id, method, params, Class::Reply).await
}

/// As `enqueue`, in priority `class` (`Class::Paid` rows go through `enqueue_delivery`).
pub async fn enqueue_as(
    conn: &mut PgConnection,
    chat_id: i64,
    method: &str,
    params: Value,
    class: Class,
) -> sqlx::Result<i64> {
    // `outbox_enqueue` (migration `…220_owner_functions`, owned by this module): the intake's
    // server-side paths queue through it too.
    sqlx::query_scalar("SELECT outbox_enqueue($1, $2, $3, $4)")
        .bind(chat_id)
        .bind(method)
        .bind(params)
        .bind(class as i16)
        .fetch_one(conn)
        .await
}

/// Queues the delivery of `generation`'s result (a paid picture or its original): first in
/// line, retried without an attempt limit, parked while the user has blocked the bot.
pub async fn enqueue_delivery(
    conn: &mut PgConnection,
    chat_id: i64,
    method: &str,
    params: Value,
    generation: uuid::Uuid,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO outbox (chat_id, method, params, class, delivers) VALUES ($1, $2, $3, 0, $4) RETURNING id",
    )
    .bind(chat_id)
    .bind(method)
    .bind(params)
    .bind(generation)
    .fetch_one(conn)
    .await
}

/// The user wrote again: their parked deliveries (held while they had blocked the bot) are due.
/// Whether there were any.
pub async fn unpark(conn: &mut PgConnection, chat: i64) -> sqlx::Result<bool> {
    // `outbox_unpark`, shared with the intake's server-side paths.
    sqlx::query_scalar("SELECT outbox_unpark($1)").bind(chat).fetch_one(conn).await
}

/// Succeeded generations whose picture is neither delivered (no `file_id`) nor on its way (no
/// pending, parked or sent delivery row), finished more than `age` ago and less than a week
/// ago, with fewer than `max_tries` delivery rows so far: the delivery reconciler re-queues
/// them. With each one's user (its chat), stored preview and the parameters its last delivery
/// row had (caption, buttons), if any. Read through `generations_undelivered` (migration
/// `…343`), which holds only the pictures not delivered yet.
pub async fn undelivered(
    conn: &mut PgConnection,
    age: std::time::Duration,
    max_tries: i64,
    limit: i64,
) -> sqlx::Result<Vec<(uuid::Uuid, i64, String, Option<Value>)>> {
    sqlx::query_as(
        "SELECT g.id, g.user_id, g.preview_key,
                (SELECT o.params FROM outbox o WHERE o.delivers = g.id AND o.method = 'sendPhoto'
                 ORDER BY o.id DESC LIMIT 1)
         FROM generations g JOIN users u ON u.telegram_id = g.user_id
         WHERE g.status = 'succeeded' AND g.file_id IS NULL AND g.preview_key IS NOT NULL
           AND u.deleted_at IS NULL
           AND g.completed_at <= now() - make_interval(secs => $1)
           AND g.completed_at > now() - interval '7 days'
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.delivers = g.id AND o.method = 'sendPhoto'
                           AND o.state IN ('pending', 'parked', 'sent'))
           AND (SELECT COUNT(*) FROM outbox o WHERE o.delivers = g.id AND o.method = 'sendPhoto') < $2
         ORDER BY g.completed_at LIMIT $3",
    )
    .bind(age.as_secs_f64())
    .bind(max_tries)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The generation whose picture message `message_id` in `chat` shows (a delivery row Telegram
/// answered with that id), if it is one: a reply to it edits that picture.
pub async fn delivered_in(
    conn: &mut PgConnection,
    chat: i64,
    message_id: i64,
) -> sqlx::Result<Option<uuid::Uuid>> {
    sqlx::query_scalar(
        "SELECT delivers FROM outbox
         WHERE chat_id = $1 AND message_id = $2 AND delivers IS NOT NULL AND method = 'sendPhoto'
         ORDER BY id DESC LIMIT 1",
    )
    .bind(chat)
    .bind(message_id)
    .fetch_optional(conn)
    .await
}

/// A `sendMessage` in HTML with an optional inline keyboard.
pub async fn send_text(
    conn: &mut PgConnection,
    chat_id: i64,
    text: &str,
    keyboard: Option<Value>,
) -> sqlx::Result<i64> {
    let mut params = serde_json::json!({ "chat_id": chat_id, "text": text, "parse_mode": "HTML" });
    if let Some(keyboard) = keyboard {
        params["reply_markup"] = keyboard;
    }
    enqueue(conn, chat_id, "sendMessage", params).await
}

/// `/deleteme`: what was already sent to `chat` is reduced to a mark (captions and replies
/// quote prompts); what is still pending goes out as it is.
pub async fn erase_sent(conn: &mut PgConnection, chat: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET params = jsonb_build_object('erased', true) WHERE chat_id = $1 AND state <> 'pending'")
        .bind(chat)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows of `class` still waiting to be sent (the broadcast feeder keeps this small).
pub async fn pending_in_class(conn: &mut PgConnection, class: Class) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND class = $1")
        .bind(class as i16)
        .fetch_one(conn)
        .await
}

/// Drops the rows among `ids` not sent yet (a canceled broadcast); how many.
pub async fn cancel_pending(conn: &mut PgConnection, ids: &[i64], reason: &str) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'dropped', last_error = $2 WHERE id = ANY($1) AND state = 'pending'",
    )
    .bind(ids)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
