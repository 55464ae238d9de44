//! Generations (which are also jobs): creation and the fenced start of processing.
//! Settlement — the move to a terminal state — is `ledger::settle`, never here.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Credits, ImageSize, Model, TelegramId};

#[derive(Debug, Clone)]
pub struct NewGeneration<'a> {
    pub id: Uuid,
    pub user_id: TelegramId,
    pub prompt: &'a str,
    pub model: Model,
    pub image_size: Option<ImageSize>,
    pub aspect_ratio: &'a str,
    pub cost: Credits,
    pub source_key: &'a str,
}

/// Inserts a queued generation; `false` when the same source already created one.
/// Call it in the transaction that reserves its cost (`ledger::reserve`).
pub async fn insert(conn: &mut PgConnection, generation: &NewGeneration<'_>) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO generations (id, user_id, prompt, model, image_size, aspect_ratio, cost, source_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (user_id, source_key) DO NOTHING",
    )
    .bind(generation.id)
    .bind(generation.user_id)
    .bind(generation.prompt)
    .bind(generation.model.as_str())
    .bind(generation.image_size.map(ImageSize::as_str))
    .bind(generation.aspect_ratio)
    .bind(generation.cost.get())
    .bind(generation.source_key)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Takes a queued generation into `processing` under a new lease epoch, which every
/// later write of this holder must present. `None` if it is not queued.
pub async fn start(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE generations
         SET status = 'processing', lease_epoch = lease_epoch + 1, started_at = now()
         WHERE id = $1 AND status = 'queued'
         RETURNING lease_epoch",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}
