//! Broadcasts (DESIGN §10 "Broadcasts"; L4): an admin's message to a segment of users, sent at
//! the outbox's lowest priority class so paid deliveries always go first. Owns `broadcasts`
//! and `broadcast_recipients`. A draft is composed (text in Telegram's HTML, optional photo
//! and URL button), previewed, given a segment and confirmed; confirming fixes the recipients,
//! and the feeder (`feeder`) moves them into the outbox a few at a time — each recipient once,
//! in the transaction that records its outbox row — so pause and cancel take effect within a
//! second, the outbox never holds a backlog that slows its other classes, and a restart never
//! queues anyone twice. Never imports `bot`, `payments` or `worker`.

pub mod feeder;

use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::domain::growth::Segment;
use crate::domain::TelegramId;
use crate::outbox;

/// What an admin composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Telegram HTML, checked with `domain::growth::check_html`.
    pub text: String,
    /// A Telegram `file_id`.
    pub photo: Option<String>,
    /// A URL button: its text and URL.
    pub button: Option<(String, String)>,
}

/// A broadcast as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Broadcast {
    pub id: i64,
    pub admin_id: TelegramId,
    pub text: String,
    pub photo: Option<String>,
    pub button_text: Option<String>,
    pub button_url: Option<String>,
    pub segment: String,
    pub state: String,
    pub recipients: i64,
}

const COLUMNS: &str = "id, admin_id, text, photo, button_text, button_url, segment, state, recipients";

/// Saves a draft for `admin` (segment `all` until changed); its id.
pub async fn draft(conn: &mut PgConnection, admin: TelegramId, draft: &Draft) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO broadcasts (admin_id, text, photo, button_text, button_url)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(admin)
    .bind(&draft.text)
    .bind(&draft.photo)
    .bind(draft.button.as_ref().map(|(text, _)| text))
    .bind(draft.button.as_ref().map(|(_, url)| url))
    .fetch_one(conn)
    .await
}

/// `admin`'s newest draft, if any.
pub async fn latest_draft(conn: &mut PgConnection, admin: TelegramId) -> sqlx::Result<Option<Broadcast>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE admin_id = $1 AND state = 'draft' ORDER BY id DESC LIMIT 1"
    ))
    .bind(admin)
    .fetch_optional(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Broadcast>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM broadcasts WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The newest broadcasts, drafts included (the panel's list).
pub async fn recent(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Broadcast>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM broadcasts ORDER BY id DESC LIMIT $1"))
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// The newest broadcast that is not a draft, for `/broadcast status` without an id.
pub async fn latest(conn: &mut PgConnection) -> sqlx::Result<Option<Broadcast>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE state <> 'draft' ORDER BY id DESC LIMIT 1"
    ))
    .fetch_optional(conn)
    .await
}

pub async fn set_segment(conn: &mut PgConnection, id: i64, segment: &Segment) -> sqlx::Result<()> {
    sqlx::query("UPDATE broadcasts SET segment = $2 WHERE id = $1 AND state = 'draft'")
        .bind(id)
        .bind(segment.encode())
        .execute(conn)
        .await?;
    Ok(())
}

/// Users in `segment`: active (not blocked), not banned, not deleted, news not turned off.
const SEGMENT: &str = "SELECT u.telegram_id FROM users u
     WHERE u.is_active AND NOT u.is_banned AND u.deleted_at IS NULL
       AND COALESCE(u.settings->>'news', 'true') <> 'false'
       AND CASE $1::TEXT
             WHEN 'paid' THEN EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.telegram_id AND p.status = 'succeeded')
             WHEN 'unpaid' THEN NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.telegram_id AND p.status = 'succeeded')
             WHEN 'days' THEN u.last_seen_at > now() - make_interval(days => $2::INT)
             WHEN 'lang' THEN u.language = $3::TEXT
             ELSE TRUE END";

fn segment_params(segment: &Segment) -> (&'static str, i32, &'static str) {
    match segment {
        Segment::All => ("all", 0, ""),
        Segment::Paid => ("paid", 0, ""),
        Segment::NeverPaid => ("unpaid", 0, ""),
        Segment::ActiveDays(days) => ("days", i32::try_from(*days).unwrap_or(i32::MAX), ""),
        Segment::Language(lang) => ("lang", 0, lang.code()),
    }
}

/// How many users `segment` holds now.
pub async fn count(conn: &mut PgConnection, segment: &Segment) -> sqlx::Result<i64> {
    let (kind, days, lang) = segment_params(segment);
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({SEGMENT}) s"))
        .bind(kind)
        .bind(days)
        .bind(lang)
        .fetch_one(conn)
        .await
}

/// The Telegram request that shows `broadcast` in `chat`.
pub fn message(broadcast: &Broadcast, chat: i64) -> (&'static str, Value) {
    let mut params = match &broadcast.photo {
        Some(photo) => {
            json!({"chat_id": chat, "photo": photo, "caption": broadcast.text, "parse_mode": "HTML"})
        }
        None => json!({"chat_id": chat, "text": broadcast.text, "parse_mode": "HTML"}),
    };
    if let (Some(text), Some(url)) = (&broadcast.button_text, &broadcast.button_url) {
        params["reply_markup"] = json!({"inline_keyboard": [[{"text": text, "url": url}]]});
    }
    (if broadcast.photo.is_some() { "sendPhoto" } else { "sendMessage" }, params)
}

/// Sends `broadcast` to `chat` alone (the admin's preview), as an ordinary reply.
pub async fn preview(conn: &mut PgConnection, broadcast: &Broadcast, chat: i64) -> sqlx::Result<()> {
    let (method, params) = message(broadcast, chat);
    outbox::enqueue(conn, chat, method, params).await?;
    Ok(())
}

/// Confirms draft `id`: fixes its recipients (the segment as it is now) and starts it. The
/// number of recipients, or `None` if it is not a draft any more.
pub async fn confirm(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<i64>> {
    let segment: Option<String> =
        sqlx::query_scalar("SELECT segment FROM broadcasts WHERE id = $1 AND state = 'draft' FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(segment) = segment.and_then(|s| Segment::parse(&s)) else {
        return Ok(None);
    };
    let (kind, days, lang) = segment_params(&segment);
    let added = sqlx::query(&format!(
        "INSERT INTO broadcast_recipients (broadcast_id, user_id) SELECT $4, telegram_id FROM ({SEGMENT}) s"
    ))
    .bind(kind)
    .bind(days)
    .bind(lang)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let recipients = i64::try_from(added).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE broadcasts SET state = 'running', recipients = $2, confirmed_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(recipients)
    .execute(conn)
    .await?;
    tracing::info!(broadcast_id = id, recipients, segment = %segment.encode(), "broadcast confirmed");
    Ok(Some(recipients))
}

/// Where a broadcast stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct Progress {
    pub sent: i64,
    /// Telegram refused the message, or the outcome of its send is unknown (on the wire for over
    /// a minute: its sender died mid-send).
    pub failed: i64,
    /// The recipient had blocked the bot (and is now inactive).
    pub blocked: i64,
    /// Not sent yet (in the outbox, on the wire, or still to be fed to it).
    pub waiting: i64,
}

pub async fn progress(conn: &mut PgConnection, id: i64) -> sqlx::Result<Progress> {
    sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE o.state = 'sent') AS sent,
                COUNT(*) FILTER (WHERE (o.state = 'sending' AND o.next_attempt_at <= now() - interval '1 minute')
                                    OR (o.state = 'dropped' AND o.last_error IS DISTINCT FROM 'bot blocked')) AS failed,
                COUNT(*) FILTER (WHERE o.state = 'dropped' AND o.last_error = 'bot blocked') AS blocked,
                COUNT(*) FILTER (WHERE r.outbox_id IS NULL OR o.state = 'pending'
                                    OR (o.state = 'sending' AND o.next_attempt_at > now() - interval '1 minute')) AS waiting
         FROM broadcast_recipients r LEFT JOIN outbox o ON o.id = r.outbox_id
         WHERE r.broadcast_id = $1",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

/// What an admin can do to a running broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
}

/// Pauses, resumes or cancels broadcast `id`: its new state, or `Err` with the state it is in
/// when the change does not apply. A cancel also drops what the outbox still holds of it.
pub async fn control(
    conn: &mut PgConnection,
    id: i64,
    control: Control,
) -> sqlx::Result<Option<Result<String, String>>> {
    let (from, to): (&[&str], &str) = match control {
        Control::Pause => (&["running"], "paused"),
        Control::Resume => (&["paused"], "running"),
        Control::Cancel => (&["running", "paused", "draft"], "canceled"),
    };
    let current: Option<String> = sqlx::query_scalar("SELECT state FROM broadcasts WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(current) = current else {
        return Ok(None);
    };
    if !from.contains(&current.as_str()) {
        return Ok(Some(Err(current)));
    }
    sqlx::query(
        "UPDATE broadcasts SET state = $2, finished_at = CASE WHEN $2 = 'canceled' THEN now() END WHERE id = $1",
    )
    .bind(id)
    .bind(to)
    .execute(&mut *conn)
    .await?;
    if control == Control::Cancel {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT outbox_id FROM broadcast_recipients WHERE broadcast_id = $1 AND outbox_id IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        outbox::cancel_pending(conn, &rows, "broadcast canceled").await?;
    }
    tracing::info!(broadcast_id = id, state = to, "broadcast state changed");
    Ok(Some(Ok(to.to_owned())))
}
