//! Bot API methods, one file per family. Owns the table of supported method names and the
//! helpers every sending method shares (chat lookup, blocked users, pacing, `Message` shape).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::error::{TgError, TgResult};
use super::params::Params;
use super::state::{Chat, Inner, TgState};

mod edit;
mod input;
mod media;
mod misc;
mod payments;
mod send;
mod updates;

pub use media::{photo_sizes, store_file};
pub use payments::expire_payments;
pub use updates::webhook_info as webhook_info_value;

const METHODS: [&str; 28] = [
    "getMe",
    "logOut",
    "close",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "sendChatAction",
    "answerCallbackQuery",
    "getFile",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendInvoice",
    "answerPreCheckoutQuery",
    "refundStarPayment",
    "getStarTransactions",
    "getChat",
    "setMyDescription",
    "setMyShortDescription",
];

/// The canonical spelling of a method name; Telegram matches names case-insensitively.
pub fn canonical(name: &str) -> Option<&'static str> {
    METHODS.iter().copied().find(|m| m.eq_ignore_ascii_case(name))
}

pub async fn dispatch(state: &Arc<TgState>, method: &'static str, p: Params) -> TgResult {
    match method {
        "getMe" => Ok(misc::get_me(state)),
        "logOut" | "close" | "setMyDescription" | "setMyShortDescription" => Ok(json!(true)),
        "setWebhook" => updates::set_webhook(state, &p),
        "deleteWebhook" => updates::delete_webhook(state, &p),
        "getWebhookInfo" => Ok(updates::webhook_info(state)),
        "getUpdates" => updates::get_updates(state, &p).await,
        "sendMessage" => send::send_message(state, &p),
        "editMessageText" => edit::edit_text(state, &p),
        "editMessageCaption" => edit::edit_caption(state, &p),
        "editMessageReplyMarkup" => edit::edit_reply_markup(state, &p),
        "deleteMessage" => edit::delete_message(state, &p),
        "sendChatAction" => send::send_chat_action(state, &p),
        "sendPhoto" => media::send_photo(state, &p).await,
        "sendDocument" => media::send_document(state, &p).await,
        "sendMediaGroup" => media::send_media_group(state, &p).await,
        "getFile" => media::get_file(state, &p),
        "answerCallbackQuery" => misc::answer_callback_query(state, &p),
        "setMyCommands" => misc::set_my_commands(state, &p),
        "getMyCommands" => Ok(misc::get_my_commands(state)),
        "deleteMyCommands" => Ok(misc::delete_my_commands(state)),
        "getChat" => misc::get_chat(state, &p),
        "sendInvoice" => payments::send_invoice(state, &p),
        "answerPreCheckoutQuery" => payments::answer_pre_checkout_query(state, &p),
        "refundStarPayment" => payments::refund_star_payment(state, &p),
        "getStarTransactions" => payments::get_star_transactions(state, &p),
        _ => Err(TgError::not_found()),
    }
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `chat_id` as an integer; `@username` chats do not exist in the fake.
pub fn chat_id(p: &Params) -> Result<i64, TgError> {
    match p.str("chat_id") {
        None => Err(TgError::bad_request("chat_id is empty")),
        Some(s) if s.is_empty() => Err(TgError::bad_request("chat_id is empty")),
        Some(s) => s.trim().parse().map_err(|_| TgError::chat_not_found()),
    }
}

pub fn message_id(p: &Params) -> Result<i64, TgError> {
    p.i64("message_id")?.ok_or_else(|| TgError::bad_request("message_id is empty"))
}

/// The chat the bot may write to: known, not blocked.
pub fn writable_chat(inner: &mut Inner, chat_id: i64) -> Result<&mut Chat, TgError> {
    let chat = inner.chat(chat_id).ok_or_else(TgError::chat_not_found)?;
    if chat.blocked {
        return Err(TgError::blocked());
    }
    Ok(chat)
}

/// Checks the chat and spends `n` messages of its pace budget.
pub fn before_send(inner: &mut Inner, chat_id: i64, n: u32) -> Result<(), TgError> {
    writable_chat(inner, chat_id)?;
    inner.pace.spend(chat_id, n, Instant::now())
}

/// The common part of every `Message` the bot sends.
pub fn message_base(state: &TgState, chat: &Chat, message_id: i64) -> Value {
    json!({
        "message_id": message_id,
        "from": state.bot_user(),
        "chat": chat.chat_object(),
        "date": unix_now(),
    })
}

/// The message a send replies to (`reply_parameters` or the older `reply_to_message_id`), as
/// Telegram embeds it in `reply_to_message`; a missing one is a 400 unless
/// `allow_sending_without_reply`.
pub fn reply_to(inner: &mut Inner, chat_id: i64, p: &Params) -> Result<Option<Value>, TgError> {
    let parameters = p.json("reply_parameters")?;
    let (target, allow) = match &parameters {
        Some(r) => (r.get("message_id").and_then(Value::as_i64), r["allow_sending_without_reply"] == true),
        None => (p.i64("reply_to_message_id")?, p.bool("allow_sending_without_reply")),
    };
    let Some(target) = target else {
        return Ok(None);
    };
    let chat = inner.chat(chat_id).ok_or_else(TgError::chat_not_found)?;
    let found = chat
        .messages
        .get(&target)
        .filter(|m| !m.deleted)
        .map(|m| m.message.clone())
        .or_else(|| chat.user_messages.get(&target).cloned());
    match found {
        Some(mut message) => {
            if let Some(map) = message.as_object_mut() {
                map.remove("reply_to_message");
            }
            Ok(Some(message))
        }
        None if allow => Ok(None),
        None => Err(TgError::bad_request("message to be replied not found")),
    }
}
