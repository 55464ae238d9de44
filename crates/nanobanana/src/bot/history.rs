//! `/history`: the user's last generations, newest first, with a "send again" button for each
//! finished one (`Button::SendAgain`) and an "again" button for each finished or failed one
//! (`Button::Again`): the same prompt and references as a new request, at the
//! user's current settings and price. Sending again sends the delivered photo by the Telegram
//! `file_id` the outbox recorded, or the stored preview when it was never delivered.

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::request::{self, Ask};
use super::BotError;
use crate::config::Config;
use crate::domain::{Button, Catalog, GenerationStatus, ImageSize, TelegramId};
use crate::outbox;
use crate::texts::{render, Lang};

const SHOWN: i64 = 10;
const PROMPT_EXCERPT: usize = 60;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    status: GenerationStatus,
    model: String,
    image_size: Option<String>,
    prompt: String,
    style: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// The history message: text and, when something can be sent again, its keyboard.
pub async fn screen(
    conn: &mut PgConnection,
    lang: Lang,
    catalog: &Catalog,
    user: TelegramId,
) -> Result<(String, Option<Value>), BotError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, status, model, COALESCE(delivered_size, image_size) AS image_size, prompt, style, created_at FROM generations
         WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(user)
    .bind(SHOWN)
    .fetch_all(conn)
    .await?;
    if rows.is_empty() {
        return Ok((render(lang, "history_empty", &[]), None));
    }
    let mut text = render(lang, "history_title", &[]);
    let mut keyboard = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let n = (i + 1).to_string();
        let size = row.image_size.as_deref().and_then(|s| ImageSize::parse(s).ok());
        let model = catalog.label(lang == Lang::En, &row.model, size);
        let mut prompt: String = row.prompt.chars().take(PROMPT_EXCERPT).collect();
        if row.prompt.chars().count() > PROMPT_EXCERPT {
            prompt.push('…');
        }
        // The user's own words, and the style the model got them in (DESIGN §10 "Styles").
        if let Some(style) = row.style.as_deref().and_then(crate::domain::styles::style) {
            let name = style.name(lang == Lang::En);
            prompt = format!("{prompt} ({})", render(lang, "history_style", &[("style", name)]));
        }
        text.push_str("\n\n");
        text.push_str(&render(
            lang,
            "history_item",
            &[
                ("n", &n),
                ("status", &render(lang, &format!("status_{}", row.status), &[])),
                ("model", &model),
                ("date", &row.created_at.format("%d.%m.%Y %H:%M").to_string()),
                ("prompt", &prompt),
            ],
        ));
        let buttons = buttons(lang, &n, row.id, row.status);
        if !buttons.is_empty() {
            keyboard.push(Value::Array(buttons));
        }
    }
    let keyboard = (!keyboard.is_empty()).then(|| json!({ "inline_keyboard": keyboard }));
    Ok((text, keyboard))
}

/// The buttons of the `n`th generation listed: "send again" when it succeeded, "again" when it
/// succeeded or failed.
pub(crate) fn buttons(lang: Lang, n: &str, generation: Uuid, status: GenerationStatus) -> Vec<Value> {
    let mut buttons = Vec::new();
    if status == GenerationStatus::Succeeded {
        buttons.push(json!({
            "text": render(lang, "history_button", &[("n", n)]),
            "callback_data": Button::SendAgain { generation }.encode(),
        }));
    }
    if status.is_final() {
        buttons.push(json!({
            "text": render(lang, "history_again_button", &[("n", n)]),
            "callback_data": Button::Again { generation }.encode(),
        }));
    }
    buttons
}

/// The "send again" button: the toast to answer with. Only the owner's own finished
/// generations are found.
pub async fn send_again(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    chat_id: Option<i64>,
    id: Uuid,
) -> Result<String, BotError> {
    let found: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT file_id, preview_key FROM generations WHERE id = $1 AND user_id = $2 AND status = 'succeeded'",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    let (Some((file_id, preview_key)), Some(chat)) = (found, chat_id) else {
        return Ok(render(lang, "history_not_found", &[]));
    };
    // Never delivered (no Telegram file id yet): the stored preview is uploaded instead.
    let photo = match (file_id, preview_key) {
        (Some(file_id), _) => json!(file_id),
        (None, Some(key)) => json!({ "storage_key": key, "generation_id": id }),
        (None, None) => return Ok(render(lang, "history_not_available", &[])),
    };
    outbox::enqueue_delivery(conn, chat, "sendPhoto", json!({ "chat_id": chat, "photo": photo }), id).await?;
    Ok(render(lang, "history_sent", &[]))
}

/// Who pressed "again", in which update (the new generation's source).
pub struct Again {
    pub user: TelegramId,
    pub chat_id: Option<i64>,
    pub update_id: i64,
    pub banned: bool,
}

/// The "again" button: a new generation request with the prompt and references of the user's
/// own finished or failed generation, refused or charged exactly like a typed prompt. The toast
/// and the generation it queued.
pub async fn again(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    again: &Again,
    id: Uuid,
) -> Result<(String, Option<Uuid>), BotError> {
    let found: Option<(String, Vec<String>)> = sqlx::query_as(
        "SELECT prompt, reference_file_ids FROM generations
         WHERE id = $1 AND user_id = $2 AND status IN ('succeeded', 'failed')",
    )
    .bind(id)
    .bind(again.user)
    .fetch_optional(&mut *conn)
    .await?;
    let (Some((prompt, references)), Some(chat)) = (found, again.chat_id) else {
        return Ok((render(lang, "history_not_found", &[]), None));
    };
    let ask = Ask {
        user: again.user,
        chat,
        prompt: &prompt,
        references: &references,
        source_key: format!("update:{}", again.update_id),
    };
    let created = request::generation(conn, config, lang, again.banned, &ask).await?;
    Ok((render(lang, "history_again", &[]), created))
}
