//! The user's own account: `/terms`, and `/deleteme` — a confirmation button, then the
//! personal data erased (names, settings, deep link, conversation state) and the moment
//! recorded in `deleted_at`. Accounting rows (balance, journal, payments, generations) are
//! never touched here. A user who writes again afterwards starts fresh.

use super::BotError;
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::conversation;
use crate::texts::{render, Lang};
use crate::config::Config;
use crate::domain::{Awaiting, AwaitingKind, TelegramId};
use crate::outbox;

/// Callback data of the confirmation buttons.
pub const CONFIRM: &str = "del:yes";
pub const CANCEL: &str = "del:no";
/// The conversation state a pending confirmation holds.

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
    let keyboard = json!({ "inline_keyboard": [[
        { "text": render(lang, "deleteme_yes", &[]), "callback_data": CONFIRM },
        { "text": render(lang, "deleteme_no", &[]), "callback_data": CANCEL },
    ]]});
    outbox::send_text(conn, chat, &render(lang, "deleteme_confirm", &[]), Some(keyboard)).await?;
    Ok(())
}

/// A confirmation button: erases the data (`del:yes`) or cancels (`del:no`) if the request is
/// still pending; the confirmation message is edited to say what happened. The toast.
pub async fn confirm(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    chat_id: Option<i64>,
    message_id: Option<i64>,
    data: &str,
) -> Result<String, BotError> {
    if conversation::take(conn, user, AwaitingKind::DeleteConfirmation).await?.is_none() {
        return Ok(render(lang, "deleteme_expired", &[]));
    }
    let key = if data == CONFIRM {
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
    // their rows stay for the accounts), the raw updates they sent, and the texts already sent
    // to their chat (captions and replies quote prompts).
    crate::jobs::erase_prompts(conn, user).await?;
    super::inbox::erase_updates_of(conn, user).await?;
    Ok(outbox::erase_sent(conn, user).await?)
}
