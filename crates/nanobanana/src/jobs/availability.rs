//! Which of the catalog's Google model ids Gemini does not serve now (DESIGN §10): the owner
//! of `unavailable_models`. The probe (`GET /v1beta/models`) and a 404 `NOT_FOUND` at generation
//! time mark an id missing; the probe marks it present again. Each change of state is one row
//! inserted or deleted, so of many workers exactly one sees it happen and tells the admins.
//! A missing model's queued generations end failed with their credits released, through
//! `ledger::settle` under an epoch claimed here (as the deadline sweep does).

use sqlx::{PgConnection, PgPool};

use super::deadline::{release_claimed, Expired};

/// The error a generation ends with when its model is gone.
pub const UNAVAILABLE_ERROR: &str = "model_unavailable";

/// Marks `model_id` missing; `true` when it was not already (then, and only then, tell).
pub async fn mark_missing(conn: &mut PgConnection, model_id: &str, reason: &str) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO unavailable_models (model_id, reason) VALUES ($1, $2) ON CONFLICT (model_id) DO NOTHING",
    )
    .bind(model_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Marks `model_id` served again; `true` when it had been missing.
pub async fn mark_present(conn: &mut PgConnection, model_id: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM unavailable_models WHERE model_id = $1")
        .bind(model_id)
        .execute(conn)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// The Google ids missing now.
pub async fn missing(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT model_id FROM unavailable_models ORDER BY model_id").fetch_all(conn).await
}

/// A missing model: its Google id, why and since when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Missing {
    pub model_id: String,
    pub reason: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// The Google ids missing now, with why and since when (the panel's System page).
pub async fn missing_since(conn: &mut PgConnection) -> sqlx::Result<Vec<Missing>> {
    sqlx::query_as("SELECT model_id, reason, since FROM unavailable_models ORDER BY model_id")
        .fetch_all(conn)
        .await
}

/// Claims the queued generations stored under any of `keys` (a model's key and aliases) under
/// a fresh epoch, and ends them `failed` with their credits released, in one transaction.
pub async fn release_queued(pool: &PgPool, keys: &[String], limit: u32) -> sqlx::Result<Vec<Expired>> {
    let mut tx = pool.begin().await?;
    let claimed: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "UPDATE generations AS g
         SET status = 'processing', lease_epoch = g.lease_epoch + 1,
             locked_until = now() + interval '1 minute', worker_id = 'model-probe'
         FROM (SELECT id FROM generations WHERE status = 'queued' AND model = ANY($1)
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) AS gone
         WHERE g.id = gone.id
         RETURNING g.id, g.lease_epoch",
    )
    .bind(keys)
    .bind(super::batch(limit))
    .fetch_all(&mut *tx)
    .await?;
    let released = release_claimed(&mut tx, claimed, UNAVAILABLE_ERROR).await?;
    tx.commit().await?;
    Ok(released)
}
