//! Broadcasts: compose (text in Telegram's HTML, an optional URL button), preview in the
//! admin's own chat, choose the segment, start after a confirmation that names how many users
//! it reaches, then pause, resume or cancel while its progress updates live (a JSON endpoint
//! that the page's script polls). Every step is the `broadcast` module's, as behind the bot's
//! `/broadcast`; the text and button are checked as the bot checks them (`domain::growth`).
//! Each action is recorded with its form's key in its transaction: a double submit does it once.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use sqlx::Connection;

use super::forms::{self, Choice};
use super::{Admin, Chrome, PanelError, PanelState};
use crate::broadcast::{self, Broadcast, Control, Draft, Progress};
use crate::db::panel::record_action;
use crate::domain::growth::{check_button, check_html, Segment};

const SEGMENTS: &[(&str, &str)] = &[
    ("all", "everyone active"),
    ("paid", "paid at least once"),
    ("unpaid", "never paid"),
    ("active7", "active in the last 7 days"),
    ("active30", "active in the last 30 days"),
    ("lang:ru", "Russian speakers"),
    ("lang:en", "English speakers"),
];

const NOTES: &[(&str, &str, bool)] = &[
    ("drafted", "Draft saved. Preview it, choose the segment, then start.", false),
    ("previewed", "Sent to your own chat with the bot.", false),
    ("segment", "Segment changed.", false),
    ("started", "Started: it goes out at the outbox's lowest priority, after paid deliveries.", false),
    ("paused", "Paused.", false),
    ("running", "Resumed.", false),
    ("canceled", "Canceled: what was not sent yet is dropped.", false),
    ("not_draft", "It is not a draft any more: nothing changed.", true),
    ("not_applicable", "That does not apply in its state: nothing changed.", true),
    ("again", "That form was already submitted: done once, not twice.", false),
];

pub fn routes() -> Router<PanelState> {
    Router::new()
        .route("/broadcasts", get(list).post(compose))
        .route("/broadcasts/{id}", get(show))
        .route("/broadcasts/{id}/progress", get(progress))
        .route("/broadcasts/{id}/segment", post(segment))
        .route("/broadcasts/{id}/preview", post(preview))
        .route("/broadcasts/{id}/start", post(start))
        .route("/broadcasts/{id}/control", post(control))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Shown {
    note: Option<String>,
    confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "panel/broadcasts.html")]
struct ListPage {
    chrome: Chrome,
    note: Option<(String, bool)>,
    key: uuid::Uuid,
    broadcasts: Vec<Broadcast>,
}

async fn list(
    State(state): State<PanelState>,
    admin: Admin,
    Query(shown): Query<Shown>,
) -> Result<Response, PanelError> {
    let mut conn = state.pool().acquire().await?;
    let broadcasts = broadcast::recent(&mut conn, 30).await?;
    super::render(ListPage {
        chrome: Chrome::new(&admin, "broadcasts"),
        note: forms::note(shown.note.as_deref(), NOTES),
        key: super::form_key(),
        broadcasts,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ComposeForm {
    csrf: String,
    key: String,
    text: String,
    button_text: String,
    button_url: String,
}

async fn compose(
    State(state): State<PanelState>,
    admin: Admin,
    Form(form): Form<ComposeForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let text = form.text.trim().replace("\r\n", "\n");
    check_html(&text).map_err(|problem| PanelError::bad_request(format!("The text: {problem}.")))?;
    let button = match (form.button_text.trim(), form.button_url.trim()) {
        ("", "") => None,
        (label, url) => Some(check_button(label, url).ok_or_else(|| {
            PanelError::bad_request("The button: a label of 1–64 characters and an http(s) or tg:// URL.")
        })?),
    };
    let Some(mut tx) = forms::begin(&state, key, &admin, "broadcast_draft", "broadcast:new", None).await?
    else {
        return Ok(super::see_other("/panel/broadcasts?note=again"));
    };
    let id = broadcast::draft(&mut tx, admin.id, &Draft { text, photo: None, button }).await?;
    tx.commit().await?;
    tracing::info!(admin = admin.id, broadcast_id = id, "panel: broadcast drafted");
    Ok(super::see_other(&format!("/panel/broadcasts/{id}?note=drafted")))
}

struct Key(uuid::Uuid);

#[derive(Template)]
#[template(path = "panel/broadcast.html")]
struct ShowPage {
    chrome: Chrome,
    note: Option<(String, bool)>,
    b: Broadcast,
    progress: Progress,
    segments: Vec<Choice>,
    audience: i64,
    confirming: bool,
    keys: [Key; 5],
}

async fn find(conn: &mut sqlx::PgConnection, id: i64) -> Result<Broadcast, PanelError> {
    broadcast::find(conn, id).await?.ok_or_else(|| PanelError::not_found(format!("No broadcast {id}.")))
}

async fn show(
    State(state): State<PanelState>,
    admin: Admin,
    Path(id): Path<i64>,
    Query(shown): Query<Shown>,
) -> Result<Response, PanelError> {
    let mut conn = state.pool().acquire().await?;
    let b = find(&mut conn, id).await?;
    let progress = broadcast::progress(&mut conn, id).await?;
    let audience = match Segment::parse(&b.segment) {
        Some(segment) if b.state == "draft" => broadcast::count(&mut conn, &segment).await?,
        _ => b.recipients,
    };
    let segments = forms::choices("", SEGMENTS, &b.segment).into_iter().skip(1).collect();
    let fresh = || Key(super::form_key());
    super::render(ShowPage {
        chrome: Chrome::new(&admin, "broadcasts"),
        note: forms::note(shown.note.as_deref(), NOTES),
        confirming: shown.confirm.is_some() && b.state == "draft",
        b,
        progress,
        segments,
        audience,
        keys: [fresh(), fresh(), fresh(), fresh(), fresh()],
    })
}

/// The live figures the page polls.
async fn progress(
    State(state): State<PanelState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, PanelError> {
    let mut conn = state.pool().acquire().await?;
    let b = find(&mut conn, id).await?;
    let p = broadcast::progress(&mut conn, id).await?;
    let figures = serde_json::json!({
        "state": b.state, "recipients": b.recipients, "sent": p.sent, "failed": p.failed,
        "blocked": p.blocked, "waiting": p.waiting,
    });
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(figures)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActionForm {
    csrf: String,
    key: String,
    segment: String,
    action: String,
}

fn back(id: i64, note: &str) -> Response {
    super::see_other(&format!("/panel/broadcasts/{id}?note={note}"))
}

async fn segment(
    State(state): State<PanelState>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let segment = Segment::parse(&form.segment)
        .filter(|s| SEGMENTS.iter().any(|(code, _)| *code == s.encode()))
        .ok_or_else(|| PanelError::bad_request(format!("Unknown segment {:?}.", form.segment)))?;
    let mut conn = state.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    let b = find(&mut tx, id).await?;
    if b.state != "draft" {
        return Ok(back(id, "not_draft"));
    }
    let target = format!("broadcast:{id}");
    if !record_action(&mut tx, key, admin.id, "broadcast_segment", &target, Some(&segment.encode())).await? {
        return Ok(back(id, "again"));
    }
    broadcast::set_segment(&mut tx, id, &segment).await?;
    tx.commit().await?;
    Ok(back(id, "segment"))
}

async fn preview(
    State(state): State<PanelState>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let mut conn = state.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    let b = find(&mut tx, id).await?;
    let target = format!("broadcast:{id}");
    if !record_action(&mut tx, key, admin.id, "broadcast_preview", &target, None).await? {
        return Ok(back(id, "again"));
    }
    // The admin's private chat with the bot has the admin's id.
    broadcast::preview(&mut tx, &b, admin.id).await?;
    tx.commit().await?;
    Ok(back(id, "previewed"))
}

async fn start(
    State(state): State<PanelState>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let target = format!("broadcast:{id}");
    let Some(mut tx) = forms::begin(&state, key, &admin, "broadcast_start", &target, None).await? else {
        return Ok(back(id, "again"));
    };
    let Some(recipients) = broadcast::confirm(&mut tx, id).await? else {
        tx.rollback().await?;
        return Ok(back(id, "not_draft"));
    };
    tx.commit().await?;
    tracing::info!(admin = admin.id, broadcast_id = id, recipients, "panel: broadcast started");
    Ok(back(id, "started"))
}

async fn control(
    State(state): State<PanelState>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let control = match form.action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "cancel" => Control::Cancel,
        other => return Err(PanelError::bad_request(format!("Unknown action {other:?}."))),
    };
    let mut conn = state.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    let target = format!("broadcast:{id}");
    let action = format!("broadcast_{}", form.action);
    if !record_action(&mut tx, key, admin.id, &action, &target, None).await? {
        return Ok(back(id, "again"));
    }
    match broadcast::control(&mut tx, id, control).await? {
        None => Err(PanelError::not_found(format!("No broadcast {id}."))),
        Some(Err(_)) => {
            tx.rollback().await?;
            Ok(back(id, "not_applicable"))
        }
        Some(Ok(state)) => {
            tx.commit().await?;
            tracing::info!(admin = admin.id, broadcast_id = id, state = %state, "panel: broadcast state changed");
            Ok(back(id, &state))
        }
    }
}
