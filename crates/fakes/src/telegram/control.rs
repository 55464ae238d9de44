//! The control API of the fake Telegram under `/_fake/…` (documented in the crate README).
//! Thin HTTP mapping onto [`super::users`] and the state; answers `{"error": "…"}` with 400 or
//! 404 when an action is impossible.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::Fault;
use super::methods::expire_payments;
use super::state::{FileKind, TgState};
use super::users::{self, ActionError, ImageSpec, UserProfile};

type St = State<Arc<TgState>>;

pub fn router() -> Router<Arc<TgState>> {
    Router::new()
        .route("/users/{id}/text", post(text))
        .route("/users/{id}/command", post(command))
        .route("/users/{id}/photo", post(photo))
        .route("/users/{id}/album", post(album))
        .route("/users/{id}/document", post(document))
        .route("/users/{id}/callback", post(callback))
        .route("/users/{id}/block", post(block))
        .route("/users/{id}/unblock", post(unblock))
        .route("/users/{id}/pay", post(pay))
        .route("/files", post(upload))
        .route("/updates", post(raw_update).get(pending_updates))
        .route("/chats", get(chats))
        .route("/chats/{id}", get(chat))
        .route("/payments", get(payments))
        .route("/faults", post(add_fault).delete(clear_faults).get(list_faults))
        .route("/pace", post(pace))
        .route("/webhook", get(webhook))
        .route("/commands", get(commands))
}

fn error(status: StatusCode, message: impl ToString) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn answer<T: serde::Serialize>(result: Result<T, ActionError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(
            e @ (ActionError::NoSuchMessage(..)
            | ActionError::NoSuchButton(..)
            | ActionError::NotAnInvoice(_)),
        ) => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct TextBody {
    text: String,
    /// A reply to this message of the chat (Telegram's `reply_to_message`).
    #[serde(default)]
    reply_to_message_id: Option<i64>,
    #[serde(flatten)]
    profile: UserProfile,
}

async fn text(State(s): St, Path(id): Path<i64>, Json(b): Json<TextBody>) -> Response {
    match b.reply_to_message_id {
        Some(reply_to) => answer(users::reply(&s, id, &b.profile, &b.text, reply_to)),
        None => answer(users::text(&s, id, &b.profile, &b.text)),
    }
}

#[derive(Deserialize)]
struct CommandBody {
    command: String,
    #[serde(default)]
    args: Option<String>,
    #[serde(flatten)]
    profile: UserProfile,
}

async fn command(State(s): St, Path(id): Path<i64>, Json(b): Json<CommandBody>) -> Response {
    answer(users::command(&s, id, &b.profile, &b.command, b.args.as_deref()))
}

#[derive(Deserialize)]
struct ImageBody {
    #[serde(flatten)]
    image: ImageSpec,
    #[serde(default)]
    media_group_id: Option<String>,
    #[serde(flatten)]
    profile: UserProfile,
}

async fn photo(State(s): St, Path(id): Path<i64>, Json(b): Json<ImageBody>) -> Response {
    answer(users::photo(&s, id, &b.profile, &b.image, b.media_group_id.as_deref()))
}

async fn document(State(s): St, Path(id): Path<i64>, Json(b): Json<ImageBody>) -> Response {
    answer(users::document(&s, id, &b.profile, &b.image, b.media_group_id.as_deref()))
}

#[derive(Deserialize)]
struct AlbumBody {
    items: Vec<ImageSpec>,
    #[serde(default)]
    as_documents: bool,
    #[serde(flatten)]
    profile: UserProfile,
}

async fn album(State(s): St, Path(id): Path<i64>, Json(b): Json<AlbumBody>) -> Response {
    answer(users::album(&s, id, &b.profile, &b.items, b.as_documents))
}

#[derive(Deserialize)]
struct CallbackBody {
    message_id: i64,
    data: String,
    #[serde(flatten)]
    profile: UserProfile,
}

async fn callback(State(s): St, Path(id): Path<i64>, Json(b): Json<CallbackBody>) -> Response {
    answer(users::press_button(&s, id, &b.profile, b.message_id, &b.data))
}

async fn block(State(s): St, Path(id): Path<i64>) -> Response {
    answer(users::set_blocked(&s, id, &UserProfile::default(), true))
}

async fn unblock(State(s): St, Path(id): Path<i64>) -> Response {
    answer(users::set_blocked(&s, id, &UserProfile::default(), false))
}

#[derive(Deserialize)]
struct PayBody {
    message_id: i64,
}

async fn pay(State(s): St, Path(id): Path<i64>, Json(b): Json<PayBody>) -> Response {
    answer(users::pay_invoice(&s, id, &UserProfile::default(), b.message_id))
}

#[derive(Deserialize)]
struct UploadBody {
    data_base64: String,
    #[serde(default)]
    kind: Option<FileKind>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
}

async fn upload(State(s): St, Json(b): Json<UploadBody>) -> Response {
    let Ok(bytes) = crate::common::b64::decode(&b.data_base64) else {
        return error(StatusCode::BAD_REQUEST, "data_base64 is not valid base64");
    };
    let kind = b.kind.unwrap_or(FileKind::Document);
    answer(
        super::upload_file(&s, bytes, kind, b.mime_type, b.file_name)
            .map(|file_id| json!({ "file_id": file_id })),
    )
}

async fn raw_update(State(s): St, Json(update): Json<Value>) -> Response {
    answer(users::raw_update(&s, update).map(|update_id| json!({ "update_id": update_id })))
}

async fn pending_updates(State(s): St) -> Response {
    let inner = s.lock();
    Json(inner.updates.iter().map(|u| u.body.clone()).collect::<Vec<_>>()).into_response()
}

async fn chats(State(s): St) -> Response {
    let inner = s.lock();
    let list: Vec<Value> = inner
        .chats
        .iter()
        .map(|(id, c)| json!({"chat_id": id, "user": c.user, "blocked": c.blocked, "messages": c.messages.len()}))
        .collect();
    Json(list).into_response()
}

async fn chat(State(s): St, Path(id): Path<i64>) -> Response {
    match s.lock().record(id) {
        Some(record) => Json(record).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no chat {id}")),
    }
}

async fn payments(State(s): St) -> Response {
    expire_payments(&s);
    Json(s.lock().payments.clone()).into_response()
}

async fn add_fault(State(s): St, Json(fault): Json<Fault>) -> Response {
    s.lock().faults.push(fault);
    Json(json!({ "ok": true })).into_response()
}

async fn clear_faults(State(s): St) -> Response {
    s.lock().faults.clear();
    Json(json!({ "ok": true })).into_response()
}

async fn list_faults(State(s): St) -> Response {
    Json(s.lock().faults.clone()).into_response()
}

#[derive(Deserialize)]
struct PaceBody {
    strict: bool,
}

async fn pace(State(s): St, Json(b): Json<PaceBody>) -> Response {
    s.lock().pace.strict = b.strict;
    Json(json!({ "strict": b.strict })).into_response()
}

async fn webhook(State(s): St) -> Response {
    let info = super::methods::webhook_info_value(&s);
    let deliveries: Vec<_> = s.lock().deliveries.iter().cloned().collect();
    Json(json!({ "info": info, "deliveries": deliveries })).into_response()
}

async fn commands(State(s): St) -> Response {
    Json(s.lock().commands.clone()).into_response()
}
