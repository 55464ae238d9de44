//! What tests read from the fake Telegram: the messages the bot sent (with edits, files and
//! keyboards), the chat's events, Stars payments and webhook delivery attempts. Plain data.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::FileKind;

/// What a test sees about a file the bot sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub file_id: String,
    pub kind: FileKind,
    pub size: usize,
    pub sha256: String,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub width: u32,
    pub height: u32,
}

/// One message the bot sent, as it stands now, with its history of edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotMessage {
    pub message_id: i64,
    /// "text", "photo", "document" or "invoice".
    pub kind: String,
    /// The Telegram `Message` object as the bot last got it back (edits applied).
    pub message: Value,
    pub file: Option<FileRecord>,
    /// Earlier versions: each entry is the `Message` before an edit.
    pub edits: Vec<Value>,
    pub deleted: bool,
    /// For invoices: the `payload` the bot set (the `Message` does not show it).
    #[serde(default)]
    pub invoice_payload: Option<String>,
}

impl BotMessage {
    pub fn text(&self) -> Option<&str> {
        self.message.get("text").and_then(Value::as_str)
    }

    pub fn caption(&self) -> Option<&str> {
        self.message.get("caption").and_then(Value::as_str)
    }

    pub fn reply_markup(&self) -> Option<&Value> {
        self.message.get("reply_markup")
    }

    /// `callback_data` of every inline button, row by row.
    pub fn callback_data(&self) -> Vec<String> {
        let rows = self.reply_markup().and_then(|m| m.get("inline_keyboard")).and_then(Value::as_array);
        rows.into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|b| b.get("callback_data").and_then(Value::as_str).map(str::to_string))
            .collect()
    }
}

/// Something the bot did in a chat, in order: every send, edit, delete, chat action and answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub method: String,
    pub detail: Value,
}

/// Everything the bot did in a chat, as returned by the control API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    pub chat_id: i64,
    pub blocked: bool,
    pub messages: Vec<BotMessage>,
    pub chat_actions: Vec<String>,
    pub events: Vec<ChatEvent>,
}

/// A Stars payment the user made, as returned by the control API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub pre_checkout_query_id: String,
    pub user_id: i64,
    pub currency: String,
    pub total_amount: i64,
    pub invoice_payload: String,
    /// "pending", "rejected" (answered ok=false), "expired" (not answered in time), "paid", "refunded".
    pub status: String,
    pub error_message: Option<String>,
    pub telegram_payment_charge_id: Option<String>,
}

/// One attempt to deliver an update to the webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub update_id: i64,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
}
