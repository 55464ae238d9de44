//! The operator panel's tables (DESIGN §10): one-time login links, sessions, and the admins'
//! actions. A link is signed with `PANEL_SECRET` (HMAC-SHA256 over its id, admin and expiry)
//! and has a row here, so it is also single use; a session cookie is a random token of which
//! only the SHA-256 is stored. Nothing here decides who is an admin: callers check `ADMIN_IDS`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::TelegramId;
use crate::secret::Secret;

/// How long a login link is valid.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(5);

/// Why a login link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this login link is malformed")]
    Malformed,
    #[error("this login link is not signed by this service")]
    BadSignature,
    #[error("this login link has expired; send /panel to the bot for a new one")]
    Expired,
    #[error("this login link was already used; send /panel to the bot for a new one")]
    Used,
}

/// A verified link's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub id: Uuid,
    pub admin: TelegramId,
    pub expires_at: i64,
}

fn signature(secret: &Secret<String>, id: Uuid, admin: TelegramId, expires_at: i64) -> Hmac<Sha256> {
    // Any key length is valid for HMAC.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|e| unreachable!("HMAC takes keys of any length: {e}"));
    mac.update(format!("panel-login:{}:{admin}:{expires_at}", id.simple()).as_bytes());
    mac
}

/// Creates a one-time login link for `admin`; returns its token (`id.admin.expiry.signature`).
pub async fn create_link(
    conn: &mut PgConnection,
    secret: &Secret<String>,
    admin: TelegramId,
) -> sqlx::Result<String> {
    let id = Uuid::new_v4();
    let expires: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO panel_links (id, admin_id, expires_at) VALUES ($1, $2, now() + $3) RETURNING expires_at",
    )
    .bind(id)
    .bind(admin)
    .bind(LINK_TTL)
    .fetch_one(conn)
    .await?;
    Ok(token(secret, &Link { id, admin, expires_at: expires.timestamp() }))
}

/// The signed token of `link`: `id.admin.expiry.signature`.
pub fn token(secret: &Secret<String>, link: &Link) -> String {
    let tag = URL_SAFE_NO_PAD
        .encode(signature(secret, link.id, link.admin, link.expires_at).finalize().into_bytes());
    format!("{}.{}.{}.{tag}", link.id.simple(), link.admin, link.expires_at)
}

/// Checks a token's form, signature and expiry (no database).
pub fn verify_link(secret: &Secret<String>, token: &str, now: DateTime<Utc>) -> Result<Link, LinkError> {
    let mut parts = token.trim().split('.');
    let (Some(id), Some(admin), Some(expires), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Malformed);
    };
    let id = Uuid::try_parse(id).map_err(|_| LinkError::Malformed)?;
    let admin: TelegramId = admin.parse().map_err(|_| LinkError::Malformed)?;
    let expires_at: i64 = expires.parse().map_err(|_| LinkError::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| LinkError::Malformed)?;
    signature(secret, id, admin, expires_at).verify_slice(&tag).map_err(|_| LinkError::BadSignature)?;
    if now.timestamp() >= expires_at {
        return Err(LinkError::Expired);
    }
    Ok(Link { id, admin, expires_at })
}

/// A new session: the cookie's token and the session's CSRF token.
pub struct NewSession {
    pub token: String,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Uses `link` (once, before it expires) and opens a session for its admin lasting `hours`, in
/// one statement: of two browsers racing with the same link, one gets the session.
pub async fn use_link(conn: &mut PgConnection, link: &Link, hours: u32) -> Result<NewSession, UseError> {
    let token = random_token();
    let csrf = random_token();
    let expires_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "WITH used AS (
             UPDATE panel_links SET used_at = now()
             WHERE id = $1 AND admin_id = $2 AND used_at IS NULL AND expires_at > now()
             RETURNING admin_id)
         INSERT INTO panel_sessions (token_sha256, admin_id, csrf, expires_at)
         SELECT $3, admin_id, $4, now() + make_interval(hours => $5) FROM used
         RETURNING expires_at",
    )
    .bind(link.id)
    .bind(link.admin)
    .bind(sha256(&token))
    .bind(&csrf)
    .bind(i32::try_from(hours).unwrap_or(i32::MAX))
    .fetch_optional(conn)
    .await?;
    match expires_at {
        Some(expires_at) => Ok(NewSession { token, csrf, expires_at }),
        None => Err(UseError::Link(LinkError::Used)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UseError {
    #[error(transparent)]
    Link(LinkError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A live session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub admin_id: TelegramId,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// The live session whose cookie token is `token`.
pub async fn session(conn: &mut PgConnection, token: &str) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(
        "SELECT admin_id, csrf, expires_at FROM panel_sessions
         WHERE token_sha256 = $1 AND ended_at IS NULL AND expires_at > now()",
    )
    .bind(sha256(token))
    .fetch_optional(conn)
    .await
}

/// Ends the session of `token` (logout).
pub async fn end_session(conn: &mut PgConnection, token: &str) -> sqlx::Result<bool> {
    let ended = sqlx::query(
        "UPDATE panel_sessions SET ended_at = now() WHERE token_sha256 = $1 AND ended_at IS NULL",
    )
    .bind(sha256(token))
    .execute(conn)
    .await?;
    Ok(ended.rows_affected() > 0)
}

/// Records that `admin` did `action` to `target` from the form `key`, in the caller's
/// transaction; false when that form was already done (a double submit), and the caller then
/// does nothing.
pub async fn record_action(
    conn: &mut PgConnection,
    key: Uuid,
    admin: TelegramId,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO panel_actions (key, admin_id, action, target, detail) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(admin)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An admin's action as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Action {
    pub admin_id: TelegramId,
    pub action: String,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The latest actions on `target`, newest first.
pub async fn actions_on(conn: &mut PgConnection, target: &str, limit: i64) -> sqlx::Result<Vec<Action>> {
    sqlx::query_as(
        "SELECT admin_id, action, detail, created_at FROM panel_actions
         WHERE target = $1 ORDER BY created_at DESC LIMIT $2",
    )
    .bind(target)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// 32 random bytes (two v4 UUIDs' randomness, from the OS generator), URL-safe.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret<String> {
        Secret::new("s".repeat(32))
    }

    fn token(id: Uuid, admin: TelegramId, expires_at: i64, key: &Secret<String>) -> String {
        super::token(key, &Link { id, admin, expires_at })
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let now = Utc::now();
        let id = Uuid::new_v4();
        let good = token(id, 7, now.timestamp() + 60, &secret());
        assert_eq!(
            verify_link(&secret(), &good, now),
            Ok(Link { id, admin: 7, expires_at: now.timestamp() + 60 })
        );
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(verify_link(&secret(), &good, later), Err(LinkError::Expired));
    }

    #[test]
    fn a_changed_admin_expiry_or_key_breaks_the_signature() {
        let now = Utc::now();
        let id = Uuid::new_v4();
        let good = token(id, 7, now.timestamp() + 60, &secret());
        let parts: Vec<&str> = good.split('.').collect();
        let other_admin = format!("{}.8.{}.{}", parts[0], parts[2], parts[3]);
        assert_eq!(verify_link(&secret(), &other_admin, now), Err(LinkError::BadSignature));
        let longer = format!("{}.7.{}.{}", parts[0], now.timestamp() + 6000, parts[3]);
        assert_eq!(verify_link(&secret(), &longer, now), Err(LinkError::BadSignature));
        let forged = token(id, 7, now.timestamp() + 60, &Secret::new("x".repeat(32)));
        assert_eq!(verify_link(&secret(), &forged, now), Err(LinkError::BadSignature));
        for bad in ["", "a.b.c", "a.7.1.x", "x.y.z.w.v"] {
            assert_eq!(verify_link(&secret(), bad, now), Err(LinkError::Malformed), "{bad}");
        }
    }
}
