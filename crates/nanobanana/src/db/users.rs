//! Users and their balance rows. A user always has a balance row, created with them at zero;
//! balances change only through `ledger`.

use sqlx::PgConnection;

use crate::domain::TelegramId;

/// What we know of a user from Telegram.
#[derive(Debug, Clone, Default)]
pub struct NewUser<'a> {
    pub telegram_id: TelegramId,
    pub username: Option<&'a str>,
    pub first_name: Option<&'a str>,
}

/// Creates the user and their zero balance if missing; refreshes the names otherwise.
pub async fn ensure(conn: &mut PgConnection, user: &NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "WITH u AS (
             INSERT INTO users (telegram_id, username, first_name) VALUES ($1, $2, $3)
             ON CONFLICT (telegram_id) DO UPDATE
                 SET username = EXCLUDED.username, first_name = EXCLUDED.first_name
             RETURNING telegram_id)
         INSERT INTO balances (user_id) SELECT telegram_id FROM u
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user.telegram_id)
    .bind(user.username)
    .bind(user.first_name)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Balance {
    pub credits_available: i64,
    pub credits_reserved: i64,
}

/// The user's balance, or `None` for an unknown user.
pub async fn balance(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<Balance>> {
    sqlx::query_as("SELECT credits_available, credits_reserved FROM balances WHERE user_id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct UserRow {
    pub telegram_id: TelegramId,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub registered_at: chrono::DateTime<chrono::Utc>,
    pub is_active: bool,
    pub is_banned: bool,
}

pub async fn find(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        "SELECT telegram_id, username, first_name, registered_at, is_active, is_banned
         FROM users WHERE telegram_id = $1",
    )
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// What `touch` learned about the user who just wrote, in the same round trip.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Touched {
    pub language: String,
    pub is_banned: bool,
    pub created: bool,
    pub settings: serde_json::Value,
    /// The conversation state, when one is set and has not expired.
    pub awaiting: Option<String>,
    pub awaiting_data: Option<serde_json::Value>,
}

/// Records that the user wrote: creates them (with `language` and a zero balance) on first
/// contact, refreshes their names otherwise, and marks them active again. A user who deleted
/// their data starts fresh in `language`, the one their Telegram speaks now. One statement:
/// every update of a user runs it, so it also returns what handling the update needs.
pub async fn touch(conn: &mut PgConnection, user: &NewUser<'_>, language: &str) -> sqlx::Result<Touched> {
    sqlx::query_as(
        "WITH u AS (
             INSERT INTO users (telegram_id, username, first_name, language, last_seen_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (telegram_id) DO UPDATE
                 SET username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                     last_seen_at = now(), is_active = TRUE, deleted_at = NULL,
                     language = CASE WHEN users.deleted_at IS NULL THEN users.language
                                     ELSE EXCLUDED.language END
             RETURNING telegram_id, language, is_banned, (xmax = 0) AS created, settings,
                       CASE WHEN awaiting_until > now() THEN awaiting END AS awaiting,
                       CASE WHEN awaiting_until > now() THEN awaiting_data END AS awaiting_data),
         b AS (INSERT INTO balances (user_id) SELECT telegram_id FROM u ON CONFLICT (user_id) DO NOTHING)
         SELECT language, is_banned, created, settings, awaiting, awaiting_data FROM u",
    )
    .bind(user.telegram_id)
    .bind(user.username)
    .bind(user.first_name)
    .bind(language)
    .fetch_one(conn)
    .await
}

/// Locks the user's balance row for the rest of the transaction: checks made under it (caps,
/// balance) cannot be raced by the user's other requests. The available credits.
pub async fn lock_balance(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT credits_available FROM balances WHERE user_id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(conn)
        .await
}
