//! Conversation state (DESIGN §4): what the user's next action is expected to be, with an
//! expiry. Stored on the user's row (`awaiting`, `awaiting_data`, `awaiting_until`); an expired
//! state reads as none. It never decides anything itself: callers ask and act.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;

use crate::domain::TelegramId;

/// How long a state waits for the user by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// A state the user is in: its name and optional data.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub name: String,
    pub data: Option<Value>,
}

/// Puts the user in state `name` for `ttl`, replacing any other.
pub async fn set(
    conn: &mut PgConnection,
    user: TelegramId,
    name: &str,
    data: Option<Value>,
    ttl: Duration,
) -> sqlx::Result<()> {
    let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).min(86_400);
    sqlx::query(
        "UPDATE users SET awaiting = $2, awaiting_data = $3,
                          awaiting_until = now() + make_interval(secs => $4)
         WHERE telegram_id = $1",
    )
    .bind(user)
    .bind(name)
    .bind(data)
    .bind(seconds as f64)
    .execute(conn)
    .await?;
    Ok(())
}

/// The user's current state, if one is set and has not expired.
pub async fn get(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<State>> {
    let row: Option<(String, Option<Value>)> = sqlx::query_as(
        "SELECT awaiting, awaiting_data FROM users
         WHERE telegram_id = $1 AND awaiting IS NOT NULL AND awaiting_until > now()",
    )
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(name, data)| State { name, data }))
}

/// Leaves whatever state the user was in.
pub async fn clear(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET awaiting = NULL, awaiting_data = NULL, awaiting_until = NULL
         WHERE telegram_id = $1",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// If the user is in the unexpired state `name`, leaves it and returns its data (`Some(None)`
/// for a state without data); otherwise `None` and nothing changes. Concurrent takers of one
/// state: the row lock lets only one see it (the lock is taken only when the state matches, so
/// a plain prompt — this runs for every text — locks nothing).
pub async fn take(
    conn: &mut PgConnection,
    user: TelegramId,
    name: &str,
) -> sqlx::Result<Option<Option<Value>>> {
    let row: Option<(Option<Value>,)> = sqlx::query_as(
        "UPDATE users u SET awaiting = NULL, awaiting_data = NULL, awaiting_until = NULL
         FROM (SELECT telegram_id, awaiting_data FROM users
               WHERE telegram_id = $1 AND awaiting = $2 AND awaiting_until > now() FOR UPDATE) old
         WHERE u.telegram_id = old.telegram_id AND u.awaiting = $2 AND u.awaiting_until > now()
         RETURNING old.awaiting_data",
    )
    .bind(user)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(data,)| data))
}
