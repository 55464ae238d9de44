//! ❌ on a status message (DESIGN §10 "Variants and cancel"): what of the request has not
//! started — the generation, or those of its variants no worker has claimed — is cancelled,
//! each through the ledger's fenced cancel, so each is released exactly once however often the
//! button is pressed and however it races a worker's claim (the claim wins or the cancel
//! does, never both). Started variants finish. The status message then shows the result.

use sqlx::PgConnection;
use uuid::Uuid;

use super::BotError;
use crate::ledger::{self, Settled};
use crate::texts::{render, Lang};

/// The press of ❌ for the request whose status message shows `generation` (its first
/// variant); the toast.
pub async fn press(
    conn: &mut PgConnection,
    lang: Lang,
    user: i64,
    generation: Uuid,
) -> Result<String, BotError> {
    let waiting: Vec<Uuid> = sqlx::query_scalar(
        "SELECT v.id FROM generations g
         JOIN generations v ON v.id = g.id OR (g.request_id IS NOT NULL AND v.request_id = g.request_id)
         WHERE g.id = $1 AND g.user_id = $2 AND v.user_id = $2
           AND v.status = 'queued' AND v.started_at IS NULL
         ORDER BY v.id",
    )
    .bind(generation)
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    let (mut count, mut credits) = (0u32, 0i64);
    for id in waiting {
        if let Settled::Now(entry) = ledger::cancel(conn, id, user).await? {
            count += 1;
            credits += entry.amount;
            tracing::info!(generation_id = %id, user, credits = entry.amount, "generation cancelled");
        }
    }
    if count == 0 {
        return Ok(render(lang, "cancel_too_late", &[]));
    }
    // The status message shows the request as it is now (final: due at once).
    crate::outbox::status::touch(conn, generation, true).await?;
    Ok(render(lang, "cancel_done", &[("count", &count.to_string()), ("credits", &credits.to_string())]))
}
