//! The service-wide generation pause (DESIGN §4 "Generation request"): a spent
//! daily quota or an invalid Gemini key stops generation for everyone until a probe call
//! succeeds. The flag lives in Postgres (`service_state`) so every process sees it; the bot
//! refuses new requests while `is_paused` says so, and the worker sends one probe at a time.
//! An operator's pause (the panel's System page) is the same row with a reason starting
//! `operator`: no probe ends it and the worker's own pause and resume leave it alone; only the
//! operator's resume does.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub(crate) const NAME: &str = "generation_pause";
/// The start of an operator's pause reason.
const OPERATOR: &str = "operator";

/// Probes wait this long under an operator's pause: never, in practice.
const OPERATOR_PROBE_AFTER: &str = "100 years";

/// Why and since when generation is paused.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pause {
    pub reason: String,
    pub since: DateTime<Utc>,
    /// A worker may send the next probe call from then on.
    pub probe_after: DateTime<Utc>,
}

impl Pause {
    /// Whether an operator paused generation (rather than Gemini's answers).
    pub fn by_operator(&self) -> bool {
        self.reason.starts_with(OPERATOR)
    }
}

/// The pause in force, if any.
pub async fn is_paused(conn: &mut PgConnection) -> sqlx::Result<Option<Pause>> {
    sqlx::query_as("SELECT reason, since, probe_after FROM service_state WHERE name = $1")
        .bind(NAME)
        .fetch_optional(conn)
        .await
}

/// Pauses generation (or, if already paused, moves the next probe to `probe_in` from now).
/// `true` when this call started the pause: then (and only then) the admins are alerted. An
/// operator's pause stays as it is.
pub async fn pause(conn: &mut PgConnection, reason: &str, probe_in: Duration) -> sqlx::Result<bool> {
    let started: Option<bool> = sqlx::query_scalar(
        "INSERT INTO service_state (name, reason, probe_after) VALUES ($1, $2, now() + $3::interval)
         ON CONFLICT (name) DO UPDATE
             SET probe_after = EXCLUDED.probe_after, reason = EXCLUDED.reason, updated_at = now()
             WHERE NOT starts_with(service_state.reason, $4)
         RETURNING (xmax = 0)",
    )
    .bind(NAME)
    .bind(reason)
    .bind(probe_in)
    .bind(OPERATOR)
    .fetch_optional(conn)
    .await?;
    Ok(started.unwrap_or(false))
}

/// A call succeeded: generation resumes. `true` when a pause was in force. An operator's pause
/// stays.
pub async fn resume(conn: &mut PgConnection) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM service_state WHERE name = $1 AND NOT starts_with(reason, $2)")
        .bind(NAME)
        .bind(OPERATOR)
        .execute(conn)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// An operator pauses generation for everyone until they resume it (Gemini's own pause, if
/// one is in force, becomes theirs). `true` when it was not already an operator's pause.
pub async fn pause_by_operator(
    conn: &mut PgConnection,
    admin: crate::domain::TelegramId,
) -> sqlx::Result<bool> {
    let reason = format!("{OPERATOR}: paused by admin {admin}");
    let changed = sqlx::query(&format!(
        "INSERT INTO service_state (name, reason, probe_after) VALUES ($1, $2, now() + interval '{OPERATOR_PROBE_AFTER}')
         ON CONFLICT (name) DO UPDATE
             SET reason = EXCLUDED.reason, probe_after = EXCLUDED.probe_after, since = now(), updated_at = now()
             WHERE NOT starts_with(service_state.reason, $3)"
    ))
    .bind(NAME)
    .bind(reason)
    .bind(OPERATOR)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// An operator resumes generation, whoever paused it (if Gemini still refuses, the next call
/// pauses it again). `true` when a pause was in force.
pub async fn resume_by_operator(conn: &mut PgConnection) -> sqlx::Result<bool> {
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
