//! The `users` table (DESIGN §3): its only writer. Who a user is, their language, settings,
//! conversation state, terms accepted, receipt contact, ban and activity, and the erasure of
//! `/deleteme`. A user's balance row is created with them at zero by the database (a trigger,
//! migration `…080`), and changes only through `ledger`; this module only reads it.
//! Never moves credits; never decides what a state or a setting means (callers do).

use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;

use crate::domain::TelegramId;
use crate::texts::Lang;

/// What we know of a user from Telegram.
#[derive(Debug, Clone, Default)]
pub struct NewUser<'a> {
    pub telegram_id: TelegramId,
    pub username: Option<&'a str>,
    pub first_name: Option<&'a str>,
}

/// Creates the user (and, by the database, their zero balance) if missing; refreshes the
/// names otherwise.
pub async fn ensure(conn: &mut PgConnection, user: &NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (telegram_id, username, first_name) VALUES ($1, $2, $3)
         ON CONFLICT (telegram_id) DO UPDATE
             SET username = EXCLUDED.username, first_name = EXCLUDED.first_name",
    )
    .bind(user.telegram_id)
    .bind(user.username)
    .bind(user.first_name)
    .execute(conn)
    .await?;
    Ok(())
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
/// every update of a user runs it, so it also returns what handling the update needs. A user
/// seen this minute with nothing to change is locked (as the write would) and read, not
/// rewritten: `last_seen_at` is kept to the minute (migration `…341`).
pub async fn touch(conn: &mut PgConnection, user: &NewUser<'_>, language: &str) -> sqlx::Result<Touched> {
    // One implementation with the intake's server-side paths: `users_touch` (migration
    // `…220_owner_functions`, owned by this module).
    sqlx::query_as("SELECT * FROM users_touch($1, $2, $3, $4)")
        .bind(user.telegram_id)
        .bind(user.username)
        .bind(user.first_name)
        .bind(language)
        .fetch_one(conn)
        .await
}

/// The language the user chose or Telegram told us, if the user is known.
pub async fn language<'c>(conn: impl sqlx::PgExecutor<'c>, user: TelegramId) -> sqlx::Result<Option<Lang>> {
    let code: Option<String> = sqlx::query_scalar("SELECT language FROM users WHERE telegram_id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await?;
    Ok(code.as_deref().and_then(Lang::parse))
}

/// The languages of `users`, for the ones that are known.
pub async fn languages(
    conn: &mut PgConnection,
    users: &[TelegramId],
) -> sqlx::Result<Vec<(TelegramId, Lang)>> {
    let rows: Vec<(TelegramId, String)> =
        sqlx::query_as("SELECT telegram_id, language FROM users WHERE telegram_id = ANY($1)")
            .bind(users)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().filter_map(|(user, code)| Lang::parse(&code).map(|lang| (user, lang))).collect())
}

pub async fn set_language(conn: &mut PgConnection, user: TelegramId, lang: Lang) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET language = $2 WHERE telegram_id = $1")
        .bind(user)
        .bind(lang.code())
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the bot can write to the user (false after they blocked it or left the chat).
pub async fn set_active(conn: &mut PgConnection, user: TelegramId, active: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET is_active = $2 WHERE telegram_id = $1")
        .bind(user)
        .bind(active)
        .execute(conn)
        .await?;
    Ok(())
}

/// Bans or unbans; `false` for an unknown user.
pub async fn set_banned(conn: &mut PgConnection, user: TelegramId, banned: bool) -> sqlx::Result<bool> {
    let found = sqlx::query("UPDATE users SET is_banned = $2 WHERE telegram_id = $1")
        .bind(user)
        .bind(banned)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(found > 0)
}

/// The first deep link the user came with (`/start <payload>`) is kept; later ones are not.
pub async fn remember_deep_link(conn: &mut PgConnection, user: TelegramId, link: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET deep_link = COALESCE(deep_link, $2) WHERE telegram_id = $1")
        .bind(user)
        .bind(link)
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored settings (JSON), if the user is known.
pub async fn settings(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar("SELECT settings FROM users WHERE telegram_id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await
}

pub async fn save_settings(conn: &mut PgConnection, user: TelegramId, settings: Value) -> sqlx::Result<()> {
    // `users_save_settings` (migration `…222_intake_setting`), shared with the fast path.
    sqlx::query("SELECT users_save_settings($1, $2)").bind(user).bind(settings).execute(conn).await?;
    Ok(())
}

/// The version of the terms the user accepted last, if any.
pub async fn terms_version(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<String>> {
    let current: Option<Option<String>> =
        sqlx::query_scalar("SELECT terms_version FROM users WHERE telegram_id = $1")
            .bind(user)
            .fetch_optional(conn)
            .await?;
    Ok(current.flatten())
}

pub async fn accept_terms(conn: &mut PgConnection, user: TelegramId, version: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET terms_version = $2, terms_accepted_at = now() WHERE telegram_id = $1")
        .bind(user)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// The receipt contact as stored (`email:…`, `phone:…`), if the user gave one.
pub async fn receipt_contact<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    user: TelegramId,
) -> sqlx::Result<Option<String>> {
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT receipt_contact FROM users WHERE telegram_id = $1")
            .bind(user)
            .fetch_optional(conn)
            .await?;
    Ok(stored.flatten())
}

pub async fn set_receipt_contact(
    conn: &mut PgConnection,
    user: TelegramId,
    stored: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET receipt_contact = $2 WHERE telegram_id = $1")
        .bind(user)
        .bind(stored)
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts the user in conversation state `name` (with `data`) for `ttl` (at most a day),
/// replacing any other.
pub async fn set_awaiting(
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

/// The user's conversation state and its data, if one is set and has not expired.
pub async fn awaiting(
    conn: &mut PgConnection,
    user: TelegramId,
) -> sqlx::Result<Option<(String, Option<Value>)>> {
    sqlx::query_as(
        "SELECT awaiting, awaiting_data FROM users
         WHERE telegram_id = $1 AND awaiting IS NOT NULL AND awaiting_until > now()",
    )
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Leaves whatever state the user was in.
pub async fn clear_awaiting(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<()> {
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
pub async fn take_awaiting(
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

/// `/deleteme`: forgets who the user is, how to reach them (the receipt contact) and what they
/// chose; the row stays for the accounts
/// (balance, journal) and `deleted_at` says it was erased.
pub async fn anonymize(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET username = NULL, first_name = NULL, settings = '{}', deep_link = NULL,
                          receipt_contact = NULL,
                          awaiting = NULL, awaiting_data = NULL, awaiting_until = NULL,
                          deleted_at = now()
         WHERE telegram_id = $1",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}
