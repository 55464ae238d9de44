//! editMessageText, editMessageCaption, editMessageReplyMarkup and deleteMessage, with
//! Telegram's rules: an edit without `reply_markup` removes the inline keyboard, an edit that
//! changes nothing is a 400 "message is not modified", a missing message is a 400.

use serde_json::{json, Value};

use super::{before_send, chat_id, message_id, unix_now, writable_chat};
use crate::telegram::entities::Formatted;
use crate::telegram::error::{TgError, TgResult};
use crate::telegram::markup::{check_caption, check_reply_markup, check_text, set_formatted};
use crate::telegram::params::Params;
use crate::telegram::state::TgState;

const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

#[derive(Clone, Copy, PartialEq)]
enum Change {
    Text,
    Caption,
    Markup,
}

pub fn edit_text(state: &TgState, p: &Params) -> TgResult {
    let text = p.str("text");
    let parse_mode = p.str("parse_mode");
    let formatted = check_text(text.as_deref(), parse_mode.as_deref())?;
    edit(state, p, Change::Text, Some(formatted))
}

pub fn edit_caption(state: &TgState, p: &Params) -> TgResult {
    let caption = p.str("caption");
    let formatted = check_caption(caption.as_deref(), p.str("parse_mode").as_deref())?;
    edit(state, p, Change::Caption, formatted)
}

pub fn edit_reply_markup(state: &TgState, p: &Params) -> TgResult {
    edit(state, p, Change::Markup, None)
}

fn edit(state: &TgState, p: &Params, change: Change, content: Option<Formatted>) -> TgResult {
    if p.has("inline_message_id") {
        return Err(TgError::bad_request("MESSAGE_ID_INVALID"));
    }
    let chat_id = chat_id(p)?;
    let message_id = message_id(p)?;
    let markup = check_reply_markup(p.json("reply_markup")?)?;
    let mut inner = state.lock();
    // Telegram's flood control counts edits too: a bot that edits a progress message too
    // often gets 429s.
    before_send(&mut inner, chat_id, 1)?;
    let chat = writable_chat(&mut inner, chat_id)?;
    let stored = chat
        .messages
        .get_mut(&message_id)
        .filter(|m| !m.deleted)
        .ok_or_else(|| TgError::bad_request("message to edit not found"))?;
    let mut updated = stored.message.clone();
    match change {
        Change::Text if updated.get("text").is_none() => {
            return Err(TgError::bad_request("there is no text in the message to edit"))
        }
        Change::Text => {
            if let Some(text) = &content {
                set_formatted(&mut updated, "text", text);
            }
        }
        Change::Caption if stored.kind == "text" || stored.kind == "invoice" => {
            return Err(TgError::bad_request("there is no caption in the message to edit"))
        }
        Change::Caption => match &content {
            Some(caption) => set_formatted(&mut updated, "caption", caption),
            None => {
                remove_key(&mut updated, "caption");
                remove_key(&mut updated, "caption_entities");
            }
        },
        Change::Markup => {}
    }
    match markup {
        Some(markup) => updated["reply_markup"] = markup,
        None => remove_key(&mut updated, "reply_markup"),
    }
    remove_key(&mut updated, "edit_date");
    let mut before = stored.message.clone();
    remove_key(&mut before, "edit_date");
    if before == updated {
        return Err(TgError::bad_request(NOT_MODIFIED));
    }
    updated["edit_date"] = json!(unix_now());
    let previous = std::mem::replace(&mut stored.message, updated.clone());
    stored.edits.push(previous);
    let method = match change {
        Change::Text => "editMessageText",
        Change::Caption => "editMessageCaption",
        Change::Markup => "editMessageReplyMarkup",
    };
    chat.push_event(method, updated.clone());
    drop(inner);
    state.chats_changed();
    Ok(updated)
}

pub fn delete_message(state: &TgState, p: &Params) -> TgResult {
    let chat_id = chat_id(p)?;
    let message_id = message_id(p)?;
    let mut inner = state.lock();
    let chat = inner.chat(chat_id).ok_or_else(TgError::chat_not_found)?;
    let not_found = || TgError::bad_request("message to delete not found");
    if let Some(message) = chat.messages.get_mut(&message_id) {
        if message.deleted {
            return Err(not_found());
        }
        message.deleted = true;
    } else if chat.user_messages.remove(&message_id).is_none() {
        return Err(not_found());
    }
    chat.push_event("deleteMessage", json!({ "message_id": message_id }));
    drop(inner);
    state.chats_changed();
    Ok(json!(true))
}

fn remove_key(value: &mut Value, key: &str) {
    if let Some(map) = value.as_object_mut() {
        map.remove(key);
    }
}
