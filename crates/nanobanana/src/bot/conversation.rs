//! Conversation state (DESIGN §4): what the user's next action is expected to be
//! (`domain::Awaiting`), with an expiry; an expired or unreadable state reads as none. Stored
//! on the user's row through `db::users`. It never decides anything itself: callers ask and act.

use super::BotError;
use std::time::Duration;

use sqlx::PgConnection;

use crate::db::users;
use crate::domain::{Awaiting, AwaitingKind, TelegramId};

/// How long a state waits for the user by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// Puts the user in `state` for `ttl`, replacing any other.
pub async fn set(conn: &mut PgConnection, user: TelegramId, state: &Awaiting, ttl: Duration) -> Result<(), BotError> {
    Ok(users::set_awaiting(conn, user, state.kind().name(), state.data(), ttl).await?)
}

/// The user's current state, if one is set, has not expired and can be read.
pub async fn get(conn: &mut PgConnection, user: TelegramId) -> Result<Option<Awaiting>, BotError> {
    let stored = users::awaiting(conn, user).await?;
    Ok(stored.and_then(|(name, data)| Awaiting::parse(&name, data.as_ref())))
}

/// Leaves whatever state the user was in.
pub async fn clear(conn: &mut PgConnection, user: TelegramId) -> Result<(), BotError> {
    Ok(users::clear_awaiting(conn, user).await?)
}

/// If the user is in an unexpired state of `kind`, leaves it and returns it; otherwise `None`
/// and nothing changes. Of concurrent takers of one state, only one sees it. A state of that
/// kind whose data cannot be read is left too, and reads as `None`.
pub async fn take(conn: &mut PgConnection, user: TelegramId, kind: AwaitingKind) -> Result<Option<Awaiting>, BotError> {
    let taken = users::take_awaiting(conn, user, kind.name()).await?;
    Ok(taken.and_then(|data| Awaiting::parse(kind.name(), data.as_ref())))
}
