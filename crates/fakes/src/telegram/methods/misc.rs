//! getMe, getChat, answerCallbackQuery and the bot command list.

use serde_json::{json, Value};

use super::{chat_id, unix_now};
use crate::telegram::error::{TgError, TgResult};
use crate::telegram::params::Params;
use crate::telegram::state::TgState;

pub fn get_me(state: &TgState) -> Value {
    let mut me = state.bot_user();
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    me["has_main_web_app"] = json!(false);
    me
}

pub fn get_chat(state: &TgState, p: &Params) -> TgResult {
    let chat_id = chat_id(p)?;
    let mut inner = state.lock();
    let chat = inner.chat(chat_id).ok_or_else(TgError::chat_not_found)?;
    let mut object = chat.chat_object();
    object["accent_color_id"] = json!(0);
    object["max_reaction_count"] = json!(11);
    Ok(object)
}

pub fn answer_callback_query(state: &TgState, p: &Params) -> TgResult {
    let id = p.str("callback_query_id").unwrap_or_default();
    let text = p.str("text");
    if text.as_deref().is_some_and(|t| t.chars().count() > 200) {
        return Err(TgError::bad_request("MESSAGE_TOO_LONG"));
    }
    let mut inner = state.lock();
    let query =
        inner.callback_queries.get_mut(&id).filter(|q| !q.answered).ok_or_else(TgError::query_too_old)?;
    query.answered = true;
    let chat_id = query.chat_id;
    let detail = json!({"callback_query_id": id, "text": text, "show_alert": p.bool("show_alert"), "date": unix_now()});
    if let Some(chat) = inner.chat(chat_id) {
        chat.push_event("answerCallbackQuery", detail);
    }
    drop(inner);
    state.chats_changed();
    Ok(json!(true))
}

fn commands_key(p: &Params) -> Result<String, TgError> {
    let scope = p.json("scope")?.and_then(|s| s.get("type").and_then(Value::as_str).map(str::to_string));
    let language = p.str("language_code").unwrap_or_default();
    Ok(format!("{}|{language}", scope.unwrap_or_else(|| "default".into())))
}

pub fn set_my_commands(state: &TgState, p: &Params) -> TgResult {
    let commands =
        p.json("commands")?.ok_or_else(|| TgError::bad_request("parameter \"commands\" is required"))?;
    let list = commands.as_array().ok_or_else(|| TgError::bad_request("can't parse commands JSON object"))?;
    if list.len() > 100 {
        return Err(TgError::bad_request("too many commands"));
    }
    for command in list {
        let name = command.get("command").and_then(Value::as_str).unwrap_or("");
        let valid = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(TgError::bad_request("BOT_COMMAND_INVALID"));
        }
        let description = command.get("description").and_then(Value::as_str).unwrap_or("");
        if !(1..=256).contains(&description.chars().count()) {
            return Err(TgError::bad_request("command description must be non-empty"));
        }
    }
    let key = commands_key(p)?;
    let mut inner = state.lock();
    if !inner.commands.is_object() {
        inner.commands = json!({});
    }
    inner.commands[key] = commands;
    Ok(json!(true))
}

pub fn get_my_commands(state: &TgState) -> Value {
    state.lock().commands.get("default|").cloned().unwrap_or_else(|| json!([]))
}

pub fn delete_my_commands(state: &TgState) -> Value {
    if let Some(map) = state.lock().commands.as_object_mut() {
        map.remove("default|");
    }
    json!(true)
}
