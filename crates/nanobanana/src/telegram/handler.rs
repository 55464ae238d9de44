//! Update handling — synchronous, idempotent (DESIGN §4): one transaction records the
//! `update_id` and applies the update's effects with their outbox rows; a repeat of a handled
//! update changes nothing. Concurrent deliveries of one update queue on its row.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;

use super::client::BotApi;
use super::commands;
use super::update::{self, Incoming};
use crate::config::Config;
use crate::metrics;
use crate::signals::Notifier;

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Not an update at all (no `update_id`): the caller answers 400.
    #[error("not a Telegram update: {0}")]
    NotAnUpdate(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Everything handling needs.
pub struct Bot {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub api: BotApi,
    /// Wakes the outbox sender after a commit that queued messages.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the workers after a commit that queued a generation.
    pub workers: Notifier,
}

impl Bot {
    /// Handles one update exactly once, however often it is delivered.
    pub async fn handle(&self, raw: &Value) -> Result<(), HandleError> {
        let (update_id, kind) = update::envelope(raw).ok_or(HandleError::NotAnUpdate("no update_id"))?;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        if !claim(&mut tx, update_id, &kind, raw).await? {
            metrics::inc(&metrics::UPDATES_REPEATED);
            return Ok(());
        }
        let incoming = update::parse(raw);
        let effects = commands::apply(&mut tx, &self.config, update_id, &incoming).await?;
        sqlx::query("UPDATE telegram_updates SET state = 'handled', handled_at = now() WHERE update_id = $1")
            .bind(update_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::inc(&metrics::UPDATES_HANDLED);
        self.outbox_wake.notify_one();
        if let Some(generation) = effects.generation {
            // A hint only: workers also poll Postgres, so a lost signal merely delays.
            if let Err(e) = self.workers.notify(generation).await {
                tracing::warn!(%generation, error = %e, "could not signal the workers");
            }
        }
        if let (Incoming::Callback { id, .. }, Some(text)) = (&incoming, effects.callback_answer) {
            // Telegram wants callback queries answered within seconds, so not via the outbox.
            let params = serde_json::json!({ "callback_query_id": id, "text": text });
            if let Err(e) = self.api.call("answerCallbackQuery", &params).await {
                tracing::warn!(update_id, error = %e, "answerCallbackQuery failed");
            }
        }
        tracing::debug!(update_id, kind, "update handled");
        Ok(())
    }
}

/// Records the update; `false` if it was already handled (nothing more to do). Holding the
/// row lock, concurrent deliveries of the same update wait here for the first to finish.
async fn claim(conn: &mut PgConnection, update_id: i64, kind: &str, raw: &Value) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO telegram_updates (update_id, raw, kind) VALUES ($1, $2, $3)
         ON CONFLICT (update_id) DO NOTHING",
    )
    .bind(update_id)
    .bind(raw)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    let state: String =
        sqlx::query_scalar("SELECT state FROM telegram_updates WHERE update_id = $1 FOR UPDATE")
            .bind(update_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(state != "handled")
}
