//! The service-wide generation pause (DESIGN §4 "Generation request"): a spent
//! daily quota or an invalid Gemini key stops generation for everyone until a probe call
//! succeeds. The flag lives in Postgres (`service_state`) so every process sees it; the bot
//! refuses new requests while `is_paused` says so, and the worker sends one probe at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub(crate) const NAME: &str = "generation_pause";

/// Why and since when generation is paused.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pause {
    pub reason: String,
    pub since: DateTime<Utc>,
    /// A worker may send the next probe call from then on.
    pub probe_after: DateTime<Utc>,
}

/// The pause in force, if any.
pub async fn is_paused(conn: &mut PgConnection) -> sqlx::Result<Option<Pause>> {
    sqlx::query_as("SELECT reason, since, probe_after FROM service_state WHERE name = $1")
        .bind(NAME)
        .fetch_optional(conn)
        .await
}

/// Pauses generation (or, if already paused, moves the next probe to `probe_in` from now).
/// `true` when this call started the pause: then (and only then) the admins are alerted.
pub async fn pause(conn: &mut PgConnection, reason: &str, probe_in: Duration) -> sqlx::Result<bool> {
    let started: bool = sqlx::query_scalar(
        "INSERT INTO service_state (name, reason, probe_after) VALUES ($1, $2, now() + $3::interval)
         ON CONFLICT (name) DO UPDATE
             SET probe_after = EXCLUDED.probe_after, reason = EXCLUDED.reason, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(NAME)
    .bind(reason)
    .bind(probe_in)
    .fetch_one(conn)
    .await?;
    Ok(started)
}

/// A call succeeded: generation resumes. `true` when a pause was in force.
pub async fn resume(conn: &mut PgConnection) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM service_state WHERE name = $1").bind(NAME).execute(conn).await?;
    Ok(deleted.rows_affected() > 0)
}

/// Takes the right to send the next probe: `true` for one caller per `probe_in`.
pub async fn take_probe(conn: &mut PgConnection, probe_in: Duration) -> sqlx::Result<bool> {
    let taken = sqlx::query(
        "UPDATE service_state SET probe_after = now() + $2::interval
         WHERE name = $1 AND probe_after <= now()",
    )
    .bind(NAME)
    .bind(probe_in)
    .execute(conn)
    .await?;
    Ok(taken.rows_affected() == 1)
}
