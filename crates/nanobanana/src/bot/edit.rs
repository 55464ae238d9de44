//! Editing is a conversation (DESIGN §10): a text after ✏️, or a text *reply* to a message
//! showing one of the user's pictures, edits that picture — a new generation linked to it
//! (`parent_id`) whose worker sends Gemini the conversation that made it and the new
//! instruction (`worker::conversation`). Made with the model, size and ratio of the picture it
//! edits, and priced like a new generation of them. A reply to anything else — a text, a
//! picture of another user — is an ordinary prompt. A pending style (`/styles`, next prompt)
//! applies to a new prompt here too.

use sqlx::PgConnection;
use uuid::Uuid;

use super::commands::Sender;
use super::conversation;
use super::request::{self, Ask, Extras};
use super::BotError;
use crate::config::Config;
use crate::domain::{Awaiting, AwaitingKind, ImageSize, Settings};
use crate::telegram::update::Message;

/// A text message that is a prompt: an edit (after ✏️, or a reply to one of the user's
/// pictures), a styled prompt (a style chosen for the next one), or a plain one. The
/// generation it queued, if any.
pub async fn text_prompt(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    message: &Message,
    ask: &Ask<'_>,
) -> Result<Option<Uuid>, BotError> {
    let (user, lang, banned) = (message.from.id, sender.lang, sender.banned);
    // After ✏️ (and before the state expires), the text edits that picture.
    let mut parent = None;
    if sender.awaits(AwaitingKind::Edit) {
        parent = super::result::take_edit(conn, user).await?;
    }
    if parent.is_none() {
        if let Some(replied) = message.reply_to {
            if let Some(shown) = crate::outbox::delivered_in(conn, message.chat_id, replied).await? {
                parent = editable(conn, user, shown).await?;
            }
        }
    }
    if let Some(parent) = parent {
        return edit(conn, config, sender, ask, parent).await;
    }
    if sender.awaits(AwaitingKind::Styled) {
        if let Some(Awaiting::Styled { style }) = conversation::take(conn, user, AwaitingKind::Styled).await?
        {
            let extras = Extras { style: Some(&style), ..Extras::default() };
            return request::generation_extra(conn, config, lang, banned, ask, None, &extras).await;
        }
    }
    request::generation_with(conn, config, lang, banned, ask, Some(&sender.settings)).await
}

/// `id` if it is `user`'s own delivered picture (one that can be edited).
pub async fn editable(conn: &mut PgConnection, user: i64, id: Uuid) -> Result<Option<Uuid>, BotError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM generations WHERE id = $1 AND user_id = $2 AND status = 'succeeded'
                                      AND result_key IS NOT NULL",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await?)
}

/// The edit of `parent` with the instruction in `ask`: the parent's model, size and ratio.
async fn edit(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    ask: &Ask<'_>,
    parent: Uuid,
) -> Result<Option<Uuid>, BotError> {
    let (model, size, ratio): (String, Option<String>, String) =
        sqlx::query_as("SELECT model, image_size, aspect_ratio FROM generations WHERE id = $1")
            .bind(parent)
            .fetch_one(&mut *conn)
            .await?;
    let mut same = Settings {
        model: config.catalog.find(&model).map(|m| m.key.clone()),
        aspect_ratio: ratio,
        ..Settings::default()
    };
    if let Some(size) = size.as_deref().and_then(|s| ImageSize::parse(s).ok()) {
        same.size = size;
    }
    let extras = Extras { parent: Some(parent), variants: Some(1), style: None };
    tracing::info!(user = ask.user, %parent, "an edit of a picture");
    request::generation_extra(conn, config, sender.lang, sender.banned, ask, Some(&same), &extras).await
}
