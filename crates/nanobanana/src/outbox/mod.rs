//! The outbox (DESIGN §2, L3; §4 "Outbox sender"): Telegram requests written in the
//! transaction of the change that causes them (`enqueue`, `send_text`), the status message of
//! a generation (`status`), and the one active sender that delivers them (`sender`). The
//! sender is the only code that sends messages through the Bot API client.

mod attachment;
mod rows;
mod sender;
pub mod status;

pub use sender::Sender;

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
    sqlx::query_scalar("INSERT INTO outbox (chat_id, method, params) VALUES ($1, $2, $3) RETURNING id")
        .bind(chat_id)
        .bind(method)
        .bind(params)
        .fetch_one(conn)
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

