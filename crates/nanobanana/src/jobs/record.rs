//! What a generation's row records beside its place in the queue (DESIGN §3 `generations`):
//! the result a successful call produced, why a generation failed, the Telegram file ids of
//! its delivery, what its status message shows, and the erasure of what a user wrote. Part of
//! `jobs`, the table's owner; the status itself moves only through the claim, the lease and
//! `ledger::settle`, never here.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{GenerationStatus, TelegramId};

/// What a successful call produced; written in the transaction that commits its credits.
#[derive(Debug, Clone)]
pub struct Produced<'a> {
    pub result_key: &'a str,
    pub preview_key: &'a str,
    /// The stored conversation an edit continues (`storage::conversation_key`), if kept.
    pub turn_key: Option<&'a str>,
    pub usage: Option<Value>,
    pub provider_cost_micro_usd: Option<i64>,
    pub latency: Duration,
}

pub async fn record_result(conn: &mut PgConnection, id: Uuid, result: &Produced<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE generations SET result_key = $2, preview_key = $3, usage = $4,
                provider_cost_micro_usd = $5, latency_ms = $6, turn_key = $7
         WHERE id = $1",
    )
    .bind(id)
    .bind(result.result_key)
    .bind(result.preview_key)
    .bind(&result.usage)
    .bind(result.provider_cost_micro_usd)
    .bind(i64::try_from(result.latency.as_millis()).unwrap_or(i64::MAX))
    .bind(result.turn_key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why the generation failed (a `failed_*` text key), for its status message. Whether it has
/// one: `Some(false)` without a status message, `None` when the generation is gone.
pub async fn set_failure(conn: &mut PgConnection, id: Uuid, failure: &str) -> sqlx::Result<Option<bool>> {
    let status: Option<Option<i64>> =
        sqlx::query_scalar("UPDATE generations SET failure = $2 WHERE id = $1 RETURNING status_outbox_id")
            .bind(id)
            .bind(failure)
            .fetch_optional(conn)
            .await?;
    Ok(status.map(|outbox_id| outbox_id.is_some()))
}

/// How Telegram knows a delivered file, for sending it again without uploading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The picture, sent as a photo (its largest size).
    Photo,
    /// The original, sent as a document.
    Document,
}

/// Keeps the `file_id` Telegram returned for the generation's delivered `kind` of file.
pub async fn set_file_id<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    id: Uuid,
    kind: Delivered,
    file_id: &str,
) -> sqlx::Result<()> {
    let sql = match kind {
        Delivered::Photo => "UPDATE generations SET file_id = $2 WHERE id = $1",
        Delivered::Document => "UPDATE generations SET document_file_id = $2 WHERE id = $1",
    };
    sqlx::query(sql).bind(id).bind(file_id).execute(conn).await?;
    Ok(())
}

/// The status message showed `text` (rendered for `phase`): remembered, so an identical edit
/// is skipped and progress edits are spaced out. Waits for a transaction changing the
/// generation to end, and returns its status now (`None`: the generation is gone).
pub async fn status_shown(
    conn: &mut PgConnection,
    id: Uuid,
    text: &str,
    phase: GenerationStatus,
) -> sqlx::Result<Option<GenerationStatus>> {
    sqlx::query_scalar(
        "UPDATE generations SET status_shown = $2, status_phase = $3, status_shown_at = now()
         WHERE id = $1 RETURNING status",
    )
    .bind(id)
    .bind(text)
    .bind(phase)
    .fetch_optional(conn)
    .await
}

/// `/deleteme`: the prompts and reference photos of the user's finished generations (unfinished
/// ones still need theirs; the rows stay for the accounts), and their stored pictures marked
/// for the eraser (`to_erase`, `erased`).
pub async fn erase_prompts(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE generations SET prompt = '', reference_file_ids = '{}',
                                erase_requested_at = COALESCE(erase_requested_at, now())
         WHERE user_id = $1 AND status IN ('succeeded', 'failed')",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// Generations whose stored pictures `/deleteme` asked to erase and that are not erased yet.
pub async fn to_erase<'c>(conn: impl sqlx::PgExecutor<'c>, limit: i64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM generations WHERE erase_requested_at IS NOT NULL AND erased_at IS NULL
         ORDER BY erase_requested_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records that `ids`' objects are deleted: their keys name nothing any more.
pub async fn erased<'c>(conn: impl sqlx::PgExecutor<'c>, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE generations SET erased_at = now(), result_key = NULL, preview_key = NULL, turn_key = NULL
         WHERE id = ANY($1) AND erased_at IS NULL",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}
