//! Acting as a Telegram user: every action turns into the update Telegram would send the bot
//! (messages, commands, photos, albums, documents, button presses, blocking, Stars payments).
//! Shared by the Rust handle and the HTTP control API; all validation of the user's side
//! (the button exists, the invoice exists) happens here. Media in `media`, buttons, blocking,
//! payments and raw updates in `actions`.

mod actions;
mod media;

pub use actions::{pay_invoice, press_button, raw_update, set_blocked};
pub use media::{album, document, photo};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::methods::unix_now;
use super::state::{Inner, TgState};
use crate::common::image::{render_png, seed_of};

/// Why a user action could not happen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionError {
    #[error("chat {0} has no message {1} from the bot")]
    NoSuchMessage(i64, i64),
    #[error("message {0} has no button with callback_data {1:?}")]
    NoSuchButton(i64, String),
    #[error("message {0} is not an invoice")]
    NotAnInvoice(i64),
    #[error("the update queue is full or the update type is not allowed")]
    NotQueued,
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// Who the user is. Unset fields get defaults derived from the id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserProfile {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub language_code: Option<String>,
}

/// What an action produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub update_id: i64,
    pub message_id: Option<i64>,
    /// callback_query id or pre_checkout_query id when the action created one.
    pub query_id: Option<String>,
    pub file_id: Option<String>,
}

/// An image a user sends: given bytes, or a generated picture of the given size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageSpec {
    #[serde(default, with = "crate::common::b64::option")]
    pub data_base64: Option<Vec<u8>>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
}

impl ImageSpec {
    pub(super) fn bytes(&self, salt: u64) -> Bytes {
        match &self.data_base64 {
            Some(bytes) => Bytes::from(bytes.clone()),
            None => {
                // Telegram's own bound (width + height ≤ 10000) also bounds the memory used here.
                let clamp = |side: Option<u32>, default: u32| side.unwrap_or(default).clamp(1, 5000);
                let (w, h) = (clamp(self.width, 640), clamp(self.height, 480));
                Bytes::from(render_png(w, h, &seed_of(&[b"user photo", &salt.to_be_bytes()])))
            }
        }
    }
}

pub fn user_object(id: i64, profile: &UserProfile) -> Value {
    let mut user = json!({
        "id": id,
        "is_bot": false,
        "first_name": profile.first_name.clone().unwrap_or_else(|| format!("User{id}")),
        "language_code": profile.language_code.clone().unwrap_or_else(|| "en".into()),
    });
    if let Some(username) = &profile.username {
        user["username"] = json!(username);
    }
    user
}

/// Queues a message from `user_id`; `fill` adds the content fields.
pub fn user_message(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    fill: impl FnOnce(&mut Value),
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let sent = message_locked(state, &mut inner, user_id, profile, fill)?;
    drop(inner);
    state.updates_changed();
    Ok(sent)
}

pub(super) fn message_locked(
    state: &TgState,
    inner: &mut Inner,
    user_id: i64,
    profile: &UserProfile,
    fill: impl FnOnce(&mut Value),
) -> Result<Sent, ActionError> {
    // A user who blocked the bot must restart it to write to it: Telegram first reports the
    // bot as a member again.
    if inner.chat(user_id).is_some_and(|c| c.blocked) {
        actions::set_blocked_locked(state, inner, user_id, profile, false)?;
        state.chats_changed();
    }
    let chat = inner.ensure_user(user_object(user_id, profile));
    let message_id = chat.take_message_id();
    let mut message =
        json!({"message_id": message_id, "from": chat.user, "chat": chat.chat_object(), "date": unix_now()});
    fill(&mut message);
    chat.user_messages.insert(message_id, message.clone());
    let update_id = inner
        .enqueue("message", user_id, message, state.config.max_pending_updates)
        .ok_or(ActionError::NotQueued)?;
    Ok(Sent { update_id, message_id: Some(message_id), query_id: None, file_id: None })
}

pub fn text(state: &TgState, user_id: i64, profile: &UserProfile, text: &str) -> Result<Sent, ActionError> {
    user_message(state, user_id, profile, |m| m["text"] = json!(text))
}

/// A text that replies to message `reply_to` of the chat (a bot message, embedded as
/// Telegram embeds it in `reply_to_message`); the message must exist.
pub fn reply(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    text: &str,
    reply_to: i64,
) -> Result<Sent, ActionError> {
    let replied = {
        let mut inner = state.lock();
        let message =
            inner.chat(user_id).and_then(|chat| chat.messages.get(&reply_to)).filter(|m| !m.deleted);
        message.map(|m| m.message.clone()).ok_or(ActionError::NoSuchMessage(user_id, reply_to))?
    };
    user_message(state, user_id, profile, |m| {
        m["text"] = json!(text);
        m["reply_to_message"] = replied;
    })
}

pub fn command(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    command: &str,
    args: Option<&str>,
) -> Result<Sent, ActionError> {
    let command = command.trim_start_matches('/');
    let head = format!("/{command}");
    let text = match args {
        Some(args) if !args.is_empty() => format!("{head} {args}"),
        _ => head.clone(),
    };
    let length = head.encode_utf16().count();
    user_message(state, user_id, profile, |m| {
        m["text"] = json!(text);
        m["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
    })
}
