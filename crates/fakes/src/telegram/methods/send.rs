//! sendMessage and sendChatAction, and the bookkeeping shared by every method that creates a
//! bot message (recording it in the chat so tests can read it).

use serde_json::{json, Value};

use super::{before_send, chat_id, message_base, reply_to, writable_chat};
use crate::telegram::error::{TgError, TgResult};
use crate::telegram::markup::{check_reply_markup, check_text, set_formatted};
use crate::telegram::params::Params;
use crate::telegram::state::{BotMessage, FileRecord, Inner, TgState, MAX_RECORDS};

const CHAT_ACTIONS: [&str; 11] = [
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

pub fn send_message(state: &TgState, p: &Params) -> TgResult {
    let chat_id = chat_id(p)?;
    let text = p.str("text");
    let parse_mode = p.str("parse_mode");
    let formatted = check_text(text.as_deref(), parse_mode.as_deref())?;
    let markup = check_reply_markup(p.json("reply_markup")?)?;
    let mut inner = state.lock();
    let reply = reply_to(&mut inner, chat_id, p)?;
    before_send(&mut inner, chat_id, 1)?;
    let message = new_message(state, &mut inner, chat_id, |m| {
        set_formatted(m, "text", &formatted);
        if let Some(reply) = reply {
            m["reply_to_message"] = reply;
        }
        if let Some(markup) = &markup {
            m["reply_markup"] = markup.clone();
        }
    })?;
    let record = record_message(&mut inner, chat_id, "text", message.clone(), None, "sendMessage");
    drop(inner);
    state.chats_changed();
    Ok(record.unwrap_or(message))
}

/// Builds a bot `Message` in `chat_id` with a fresh id; `fill` adds the content fields.
pub fn new_message(
    state: &TgState,
    inner: &mut Inner,
    chat_id: i64,
    fill: impl FnOnce(&mut Value),
) -> TgResult {
    let chat = writable_chat(inner, chat_id)?;
    let id = chat.take_message_id();
    let mut message = message_base(state, chat, id);
    fill(&mut message);
    Ok(message)
}

/// Stores a message the bot sent and logs the call in the chat's events.
pub fn record_message(
    inner: &mut Inner,
    chat_id: i64,
    kind: &str,
    message: Value,
    file: Option<FileRecord>,
    method: &str,
) -> Option<Value> {
    let chat = inner.chat(chat_id)?;
    let message_id = message["message_id"].as_i64().unwrap_or(0);
    if chat.messages.len() >= MAX_RECORDS {
        chat.messages.pop_first();
    }
    let bot_message = BotMessage {
        message_id,
        kind: kind.into(),
        message: message.clone(),
        file,
        edits: vec![],
        deleted: false,
        invoice_payload: None,
    };
    chat.messages.insert(message_id, bot_message);
    chat.push_event(method, message.clone());
    Some(message)
}

pub fn send_chat_action(state: &TgState, p: &Params) -> TgResult {
    let chat_id = chat_id(p)?;
    let action = p.str("action").unwrap_or_default();
    if !CHAT_ACTIONS.contains(&action.as_str()) {
        return Err(TgError::bad_request("wrong parameter action in request"));
    }
    let mut inner = state.lock();
    let chat = writable_chat(&mut inner, chat_id)?;
    chat.push_event("sendChatAction", json!({ "action": action }));
    drop(inner);
    state.chats_changed();
    Ok(json!(true))
}
