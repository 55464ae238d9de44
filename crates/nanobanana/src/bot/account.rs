//! The user's own account: `/terms`, and `/deleteme` — a confirmation button, then the
//! personal data erased (names, settings, deep link, conversation state) and the moment
//! recorded in `deleted_at`. Accounting rows (balance, journal, payments, generations) are
//! never touched here. A user who writes again afterwards starts fresh.

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::conversation;
use super::BotError;
use crate::config::Config;
use crate::domain::{Awaiting, AwaitingKind, Button, TelegramId};
use crate::outbox;
use crate::texts::{render, Lang};

pub fn terms(lang: Lang, config: &Config) -> String {
    let link = |url: &Option<url::Url>| {
        url.as_ref().map_or_else(|| render(lang, "terms_not_published", &[]), |u| u.to_string())
    };
    render(
        lang,
        "terms",
        &[
            ("version", &config.operator.terms_version),
            ("terms", &link(&config.operator.terms_url)),
            ("privacy", &link(&config.operator.privacy_url)),
        ],
    )
}

/// `/deleteme`: asks for confirmation, valid for `conversation::DEFAULT_TTL`.
pub async fn ask(conn: &mut PgConnection, lang: Lang, user: TelegramId, chat: i64) -> Result<(), BotError> {
    conversation::set(conn, user, &Awaiting::DeleteConfirmation, conversation::DEFAULT_TTL).await?;
    let keyboard = confirm_keyboard(lang);
    outbox::send_text(conn, chat, &render(lang, "deleteme_confirm", &[]), Some(keyboard)).await?;
    Ok(())
}

/// The `/deleteme` confirmation's buttons: yes, no.
pub(crate) fn confirm_keyboard(lang: Lang) -> Value {
    let (yes, no) = (Button::DeleteMe { confirmed: true }, Button::DeleteMe { confirmed: false });
    json!({ "inline_keyboard": [[
        { "text": render(lang, "deleteme_yes", &[]), "callback_data": yes.encode() },
        { "text": render(lang, "deleteme_no", &[]), "callback_data": no.encode() },
    ]]})
}

/// A confirmation button: erases the data (`confirmed`) or cancels if the request is still
/// pending; the confirmation message is edited to say what happened. The toast.
pub async fn confirm(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    chat_id: Option<i64>,
    message_id: Option<i64>,
    confirmed: bool,
) -> Result<String, BotError> {
    if conversation::take(conn, user, AwaitingKind::DeleteConfirmation).await?.is_none() {
        return Ok(render(lang, "deleteme_expired", &[]));
    }
    let key = if confirmed {
        anonymize(conn, user).await?;
        tracing::info!(user, "user data deleted on request");
        "deleteme_done"
    } else {
        "deleteme_cancelled"
    };
    let text = render(lang, key, &[]);
    if let (Some(chat_id), Some(message_id)) = (chat_id, message_id) {
        let params: Value = json!({ "chat_id": chat_id, "message_id": message_id, "text": text });
        outbox::enqueue(conn, chat_id, "editMessageText", params).await?;
    }
    Ok(text)
}

async fn anonymize(conn: &mut PgConnection, user: TelegramId) -> Result<(), BotError> {
    crate::db::users::anonymize(conn, user).await?;
    // What they wrote: the prompts of finished generations (unfinished ones still need theirs;
    // their rows stay for the accounts) and the texts already sent to their chat (captions and
    // replies quote prompts). Updates are kept as ids and hashes only (never their bodies).
    crate::jobs::erase_prompts(conn, user).await?;
    // Albums still gathering: their photos and caption are theirs too.
    super::album::erase_drafts(conn, user).await?;
    Ok(outbox::erase_sent(conn, user).await?)
}

/// Between passes of the eraser.
pub const ERASE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// One pass of the eraser: the stored pictures (original, preview, references) of generations
/// `/deleteme` marked are deleted, then recorded as erased. A crash between the two repeats the
/// deletion, which finds nothing the second time. Returns how many generations were erased.
pub async fn erase_stored(pool: &sqlx::PgPool, storage: &crate::storage::Storage) -> anyhow::Result<usize> {
    let ids = crate::jobs::to_erase(pool, 100).await?;
    for id in &ids {
        storage.delete_under(&format!("generations/{id}")).await?;
        storage.delete_under(&format!("references/{id}")).await?;
    }
    crate::jobs::erased(pool, &ids).await?;
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), "stored pictures erased on request");
    }
    Ok(ids.len())
}

/// The eraser until `shutdown`.
pub async fn erase_loop(
    pool: sqlx::PgPool,
    storage: crate::storage::Storage,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        if let Err(e) = erase_stored(&pool, &storage).await {
            tracing::warn!(error = %format!("{e:#}"), "erasing stored pictures failed; next pass retries");
        }
        tokio::select! {
            _ = tokio::time::sleep(ERASE_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}
