//! Albums (DESIGN §4): every item of an album is its own update sharing `media_group_id`, with
//! no count and no "last" marker. Each item upserts the album's draft, due a moment after the
//! latest item; a sweeper turns due drafts into one generation keyed to the album, so neither a
//! redelivered item nor a late one can create a second generation or a second charge.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use super::inbox::Bot;
use super::request::{self, Ask};
use super::BotError;
use crate::outbox;
use crate::texts::{render, Lang};

/// How long after its latest item an album is considered complete.
pub const GATHER: Duration = Duration::from_millis(1500);

/// One photo of an album, as its update brought it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub user: i64,
    pub chat: i64,
    pub media_group_id: &'a str,
    pub message_id: i64,
    pub file_id: &'a str,
    pub caption: Option<&'a str>,
}

#[derive(sqlx::FromRow)]
struct Draft {
    user_id: i64,
    media_group_id: String,
    chat_id: i64,
    items: Value,
    caption: Option<String>,
    language: String,
    is_banned: bool,
}

/// Adds an item to its album's draft; tells the user when the album was already submitted.
pub async fn add_item(conn: &mut PgConnection, lang: Lang, item: &Item<'_>) -> Result<(), BotError> {
    let (user, chat, media_group_id, caption) = (item.user, item.chat, item.media_group_id, item.caption);
    let item = json!([{ "message_id": item.message_id, "file_id": item.file_id }]);
    let gathering: Option<String> = sqlx::query_scalar(
        "INSERT INTO album_drafts (user_id, media_group_id, chat_id, items, caption, due_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
         ON CONFLICT (user_id, media_group_id) DO UPDATE
             SET items = CASE WHEN album_drafts.items @> EXCLUDED.items THEN album_drafts.items
                              ELSE album_drafts.items || EXCLUDED.items END,
                 caption = COALESCE(album_drafts.caption, EXCLUDED.caption),
                 due_at = EXCLUDED.due_at
             WHERE album_drafts.state = 'gathering'
         RETURNING state",
    )
    .bind(user)
    .bind(media_group_id)
    .bind(chat)
    .bind(item)
    .bind(caption)
    .bind(GATHER.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    if gathering.is_none() {
        outbox::send_text(conn, chat, &render(lang, "album_already_submitted", &[]), None).await?;
    }
    Ok(())
}

/// Submits due albums until `shutdown`; each in its own transaction.
pub async fn sweep(bot: Arc<Bot>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        match submit_due(&bot).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "album sweep failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Submits one due album if there is one; whether it did.
pub async fn submit_due(bot: &Bot) -> Result<bool, BotError> {
    let mut conn = bot.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let draft: Option<Draft> = sqlx::query_as(
        "SELECT d.user_id, d.media_group_id, d.chat_id, d.items, d.caption, u.language, u.is_banned
         FROM album_drafts d JOIN users u ON u.telegram_id = d.user_id
         WHERE d.state = 'gathering' AND d.due_at <= now()
         ORDER BY d.due_at LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Draft {
        user_id: user,
        media_group_id: group,
        chat_id: chat,
        items,
        caption,
        language,
        is_banned,
    }) = draft
    else {
        return Ok(false);
    };
    let banned = is_banned;
    let mut items: Vec<(i64, String)> = items
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    Some((i.get("message_id")?.as_i64()?, i.get("file_id")?.as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    let references: Vec<String> = items.into_iter().map(|(_, file_id)| file_id).collect();
    let lang = Lang::parse(&language).unwrap_or(Lang::Ru);
    let ask = Ask {
        user,
        chat,
        prompt: caption.as_deref().unwrap_or(""),
        references: &references,
        source_key: format!("album:{group}"),
    };
    let generation = request::generation(&mut tx, &bot.config, lang, banned, &ask).await?;
    sqlx::query("UPDATE album_drafts SET state = 'submitted' WHERE user_id = $1 AND media_group_id = $2")
        .bind(user)
        .bind(&group)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    bot.outbox_wake.notify_one();
    if let Some(generation) = generation {
        if let Err(e) = bot.workers.notify(generation).await {
            tracing::warn!(%generation, error = %e, "could not signal the workers");
        }
    }
    Ok(true)
}

/// `/deleteme`: the user's albums still gathering (their photos and captions) are dropped.
pub async fn erase_drafts(conn: &mut PgConnection, user: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM album_drafts WHERE user_id = $1").bind(user).execute(conn).await?;
    Ok(())
}
