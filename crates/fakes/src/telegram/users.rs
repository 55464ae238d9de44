//! Acting as a Telegram user: every action turns into the update Telegram would send the bot
//! (messages, commands, photos, albums, documents, button presses, blocking, Stars payments).
//! Shared by the Rust handle and the HTTP control API; all validation of the user's side
//! (the button exists, the invoice exists) happens here.

use std::time::Instant;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::methods::{photo_sizes, store_file, unix_now};
use super::state::{FileKind, Inner, PaymentRecord, PreCheckout, TgState};
use crate::common::image::{render_png, seed_of};
use crate::common::image_info::sniff;

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
    fn bytes(&self, salt: u64) -> Bytes {
        match &self.data_base64 {
            Some(bytes) => Bytes::from(bytes.clone()),
            None => {
                let (w, h) = (self.width.unwrap_or(640), self.height.unwrap_or(480));
                Bytes::from(render_png(
                    w,
                    h,
                    &seed_of(&[b"user photo", &salt.to_be_bytes()]),
                ))
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

fn message_locked(
    state: &TgState,
    inner: &mut Inner,
    user_id: i64,
    profile: &UserProfile,
    fill: impl FnOnce(&mut Value),
) -> Result<Sent, ActionError> {
    let chat = inner.ensure_user(user_object(user_id, profile));
    let message_id = chat.take_message_id();
    let mut message = json!({"message_id": message_id, "from": chat.user, "chat": chat.chat_object(), "date": unix_now()});
    fill(&mut message);
    chat.user_messages.insert(message_id, message.clone());
    let update_id = inner
        .enqueue(
            "message",
            user_id,
            message,
            state.config.max_pending_updates,
        )
        .ok_or(ActionError::NotQueued)?;
    Ok(Sent {
        update_id,
        message_id: Some(message_id),
        query_id: None,
        file_id: None,
    })
}

pub fn text(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    text: &str,
) -> Result<Sent, ActionError> {
    user_message(state, user_id, profile, |m| m["text"] = json!(text))
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

/// Sends a photo (or, with `media_group_id`, one item of an album).
pub fn photo(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    spec: &ImageSpec,
    media_group_id: Option<&str>,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let salt = inner.serial();
    let bytes = spec.bytes(salt);
    let info = sniff(&bytes).ok_or_else(|| {
        ActionError::Invalid("the photo is not a PNG, JPEG, GIF or WebP image".into())
    })?;
    let max = state.config.max_file_bytes;
    let file = store_file(
        &mut inner,
        max,
        FileKind::Photo,
        bytes,
        Some(info.mime.into()),
        None,
        (info.width, info.height),
    )
    .map_err(|e| ActionError::Invalid(e.description))?;
    let sizes =
        photo_sizes(&mut inner, max, &file).map_err(|e| ActionError::Invalid(e.description))?;
    let mut sent = message_locked(state, &mut inner, user_id, profile, |m| {
        m["photo"] = sizes;
        if let Some(caption) = &spec.caption {
            m["caption"] = json!(caption);
        }
        if let Some(group) = media_group_id {
            m["media_group_id"] = json!(group);
        }
    })?;
    drop(inner);
    state.updates_changed();
    sent.file_id = Some(file.file_id);
    Ok(sent)
}

/// Sends an album: one message per item sharing a `media_group_id`.
pub fn album(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    items: &[ImageSpec],
    as_documents: bool,
) -> Result<Vec<Sent>, ActionError> {
    if !(2..=10).contains(&items.len()) {
        return Err(ActionError::Invalid("an album has 2 to 10 items".into()));
    }
    let group = format!("{}", 14_000_000_000_000_000u64 + state.lock().serial());
    items
        .iter()
        .map(|item| match as_documents {
            true => document(state, user_id, profile, item, Some(&group)),
            false => photo(state, user_id, profile, item, Some(&group)),
        })
        .collect()
}

/// Sends a file as a document (an image sent "as file" arrives this way).
pub fn document(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    spec: &ImageSpec,
    media_group_id: Option<&str>,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let salt = inner.serial();
    let bytes = spec.bytes(salt);
    let sniffed = sniff(&bytes);
    let mime = spec
        .mime_type
        .clone()
        .or(sniffed.map(|i| i.mime.to_string()))
        .unwrap_or_else(|| "application/octet-stream".into());
    let name = spec
        .file_name
        .clone()
        .unwrap_or_else(|| format!("file_{salt}.{}", mime.rsplit('/').next().unwrap_or("bin")));
    let dims = sniffed.map_or((0, 0), |i| (i.width, i.height));
    let file = store_file(
        &mut inner,
        state.config.max_file_bytes,
        FileKind::Document,
        bytes,
        Some(mime.clone()),
        Some(name.clone()),
        dims,
    )
    .map_err(|e| ActionError::Invalid(e.description))?;
    let document = json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_name": name,
        "mime_type": mime, "file_size": file.bytes.len()});
    let mut sent = message_locked(state, &mut inner, user_id, profile, |m| {
        m["document"] = document;
        if let Some(caption) = &spec.caption {
            m["caption"] = json!(caption);
        }
        if let Some(group) = media_group_id {
            m["media_group_id"] = json!(group);
        }
    })?;
    drop(inner);
    state.updates_changed();
    sent.file_id = Some(file.file_id);
    Ok(sent)
}

/// Presses an inline button of a bot message; the button must exist.
pub fn press_button(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    message_id: i64,
    data: &str,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let query_id = format!("{}", 4_000_000_000_000_000_000i64 + inner.serial() as i64);
    let chat = inner.ensure_user(user_object(user_id, profile));
    let message = chat
        .messages
        .get(&message_id)
        .filter(|m| !m.deleted)
        .ok_or(ActionError::NoSuchMessage(user_id, message_id))?;
    if !message.callback_data().iter().any(|d| d == data) {
        return Err(ActionError::NoSuchButton(message_id, data.to_string()));
    }
    let query = json!({"id": query_id, "from": chat.user, "message": message.message,
        "chat_instance": format!("{}", -user_id.abs()), "data": data});
    inner.callback_queries.insert(
        query_id.clone(),
        super::state::CallbackQuery {
            chat_id: user_id,
            answered: false,
        },
    );
    let update_id = inner
        .enqueue(
            "callback_query",
            user_id,
            query,
            state.config.max_pending_updates,
        )
        .ok_or(ActionError::NotQueued)?;
    drop(inner);
    state.updates_changed();
    Ok(Sent {
        update_id,
        message_id: Some(message_id),
        query_id: Some(query_id),
        file_id: None,
    })
}

/// Blocks (or unblocks) the bot: a `my_chat_member` update, and sends fail with 403 while blocked.
pub fn set_blocked(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    blocked: bool,
) -> Result<Sent, ActionError> {
    let bot = state.bot_user();
    let mut inner = state.lock();
    let chat = inner.ensure_user(user_object(user_id, profile));
    chat.blocked = blocked;
    let (old, new) = if blocked {
        ("member", "kicked")
    } else {
        ("kicked", "member")
    };
    let mut new_member = json!({"user": bot, "status": new});
    if blocked {
        new_member["until_date"] = json!(0);
    }
    let update = json!({"chat": chat.chat_object(), "from": chat.user, "date": unix_now(),
        "old_chat_member": {"user": bot, "status": old}, "new_chat_member": new_member});
    let update_id = inner
        .enqueue(
            "my_chat_member",
            user_id,
            update,
            state.config.max_pending_updates,
        )
        .ok_or(ActionError::NotQueued)?;
    drop(inner);
    state.updates_changed();
    state.chats_changed();
    Ok(Sent {
        update_id,
        message_id: None,
        query_id: None,
        file_id: None,
    })
}

/// Pays an invoice the bot sent: a `pre_checkout_query`; the bot's ok answer completes it.
pub fn pay_invoice(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    message_id: i64,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let invoice = inner
        .invoices
        .get(&(user_id, message_id))
        .cloned()
        .ok_or(ActionError::NotAnInvoice(message_id))?;
    let query_id = format!("{}", 5_000_000_000_000_000_000i64 + inner.serial() as i64);
    let user = inner
        .ensure_user(user_object(user_id, profile))
        .user
        .clone();
    let query = json!({"id": query_id, "from": user, "currency": invoice.currency,
        "total_amount": invoice.total_amount, "invoice_payload": invoice.payload});
    inner.pre_checkouts.insert(
        query_id.clone(),
        PreCheckout {
            user_id,
            currency: invoice.currency.clone(),
            total_amount: invoice.total_amount,
            payload: invoice.payload.clone(),
            created: Instant::now(),
            answered: false,
        },
    );
    inner.payments.push(PaymentRecord {
        pre_checkout_query_id: query_id.clone(),
        user_id,
        currency: invoice.currency,
        total_amount: invoice.total_amount,
        invoice_payload: invoice.payload,
        status: "pending".into(),
        error_message: None,
        telegram_payment_charge_id: None,
    });
    let update_id = inner
        .enqueue(
            "pre_checkout_query",
            user_id,
            query,
            state.config.max_pending_updates,
        )
        .ok_or(ActionError::NotQueued)?;
    drop(inner);
    state.updates_changed();
    Ok(Sent {
        update_id,
        message_id: Some(message_id),
        query_id: Some(query_id),
        file_id: None,
    })
}

/// Queues a raw update; `update_id` is assigned when missing.
pub fn raw_update(state: &TgState, mut update: Value) -> Result<i64, ActionError> {
    if !update.is_object() {
        return Err(ActionError::Invalid("an update is a JSON object".into()));
    }
    let mut inner = state.lock();
    let update_id = match update.get("update_id").and_then(Value::as_i64) {
        Some(id) => {
            inner.next_update_id = inner.next_update_id.max(id + 1);
            id
        }
        None => {
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(id);
            id
        }
    };
    let chat_key = [
        "message",
        "edited_message",
        "callback_query",
        "pre_checkout_query",
        "my_chat_member",
    ]
    .iter()
    .find_map(|k| update.get(*k))
    .and_then(|o| {
        o.get("chat")
            .or_else(|| o.get("from"))
            .and_then(|c| c.get("id"))
            .and_then(Value::as_i64)
    })
    .unwrap_or(0);
    inner.push_raw(update_id, chat_key, update);
    drop(inner);
    state.updates_changed();
    Ok(update_id)
}
