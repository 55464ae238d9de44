//! The buttons under a delivered picture (DESIGN §4 "Worker", §10 "Delivery is part of the sale"): 🔁 regenerate (the
//! same prompt, settings, style and references as a new request, reserved and charged like
//! any other), ×4 (the same, as four variants), ✏️ edit (the user's next text edits this
//! picture as a conversation with Gemini, `edit`; the state expires) and 📎 original (the
//! stored original as a document). Each acts only on the presser's own finished generation;
//! the answer is the callback's toast.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::conversation;
use super::request::{self, Ask, Extras};
use super::BotError;
use crate::config::Config;
use crate::domain::{Awaiting, AwaitingKind, ImageSize, ResultAction, Settings};
use crate::outbox;
use crate::texts::{render, Lang};

/// Who pressed, in which update.
pub struct Press {
    pub user: i64,
    pub chat_id: Option<i64>,
    pub update_id: i64,
    pub banned: bool,
}

#[derive(sqlx::FromRow)]
struct Done {
    prompt: String,
    model: String,
    image_size: Option<String>,
    aspect_ratio: String,
    reference_file_ids: Vec<String>,
    result_key: Option<String>,
    document_file_id: Option<String>,
    file_id: Option<String>,
    style: Option<String>,
    parent_id: Option<Uuid>,
}

/// Handles a press of `action` under generation `id` (`Button::Result`, as `worker::deliver`
/// puts them on the photo): the toast, and the generation it queued (🔁).
pub async fn press(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    press: &Press,
    action: ResultAction,
    id: Uuid,
) -> Result<(String, Option<Uuid>), BotError> {
    let not_found = || (render(lang, "result_not_found", &[]), None);
    let Some(chat) = press.chat_id else {
        return Ok(not_found());
    };
    let found: Option<Done> = sqlx::query_as(
        "SELECT prompt, model, image_size, aspect_ratio, reference_file_ids, result_key,
                document_file_id, file_id, style, parent_id
         FROM generations WHERE id = $1 AND user_id = $2 AND status = 'succeeded'",
    )
    .bind(id)
    .bind(press.user)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(done) = found else {
        return Ok(not_found());
    };
    match action {
        ResultAction::Regenerate | ResultAction::Variants4 => {
            let variants = if action == ResultAction::Variants4 { 4 } else { 1 };
            again(conn, config, lang, press, chat, &done, variants).await
        }
        ResultAction::Edit => {
            if done.file_id.is_none() {
                return Ok((render(lang, "result_not_ready", &[]), None));
            }
            let state = Awaiting::Edit { generation: id };
            conversation::set(conn, press.user, &state, conversation::DEFAULT_TTL).await?;
            outbox::send_text(conn, chat, &render(lang, "result_edit_ask", &[]), None).await?;
            Ok((render(lang, "result_edit_toast", &[]), None))
        }
        ResultAction::Original => {
            let document = match (done.document_file_id, done.result_key) {
                (Some(file_id), _) => json!(file_id),
                (None, Some(key)) => json!({ "storage_key": key, "generation_id": id }),
                (None, None) => return Ok(not_found()),
            };
            outbox::enqueue(conn, chat, "sendDocument", json!({ "chat_id": chat, "document": document }))
                .await?;
            Ok((render(lang, "result_original_sent", &[]), None))
        }
    }
}

/// 🔁 and ×4: the same prompt, references, style (and edit of the same picture, when it was
/// one) as a new request of `variants`, at the same model (a key of an earlier release maps to
/// its successor; one the catalog lacks becomes the default), size and ratio.
async fn again(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    press: &Press,
    chat: i64,
    done: &Done,
    variants: u8,
) -> Result<(String, Option<Uuid>), BotError> {
    let ask = Ask {
        user: press.user,
        chat,
        prompt: &done.prompt,
        references: &done.reference_file_ids,
        source_key: format!("update:{}", press.update_id),
    };
    let model = config.catalog.find(&done.model).map(|m| m.key.clone());
    let size = done.image_size.as_deref().and_then(|s| ImageSize::parse(s).ok());
    let mut same = Settings { model, aspect_ratio: done.aspect_ratio.clone(), ..Settings::default() };
    if let Some(size) = size {
        same.size = size;
    }
    let extras = Extras { parent: done.parent_id, style: done.style.as_deref(), variants: Some(variants) };
    let created =
        request::generation_extra(conn, config, lang, press.banned, &ask, Some(&same), &extras).await?;
    let toast = if variants > 1 { "result_variants" } else { "result_regenerating" };
    Ok((render(lang, toast, &[]), created))
}

/// If the user pressed ✏️ and the state has not expired, takes it: the generation their text
/// edits (their own, delivered). `None` otherwise: a plain prompt.
pub async fn take_edit(conn: &mut PgConnection, user: i64) -> Result<Option<Uuid>, BotError> {
    let Some(Awaiting::Edit { generation: id }) = conversation::take(conn, user, AwaitingKind::Edit).await?
    else {
        return Ok(None);
    };
    super::edit::editable(conn, user, id).await
}
