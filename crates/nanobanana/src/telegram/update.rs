//! Incoming updates, read leniently: unknown kinds and fields are skipped, never an error.
//! Only what the bot acts on is extracted; `telegram_updates` keeps an update's id and the
//! hash of its body, never the body.

use serde_json::Value;

use crate::domain::TelegramId;

/// Who sent something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub id: TelegramId,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub language_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `/name@bot args`: the name lower-cased without the bot's username.
    Command {
        name: String,
        args: String,
    },
    Text(String),
    /// A photo, or an image sent as a document: a prompt with a reference (the caption is the
    /// prompt); items of an album share `media_group_id`.
    Image {
        file_id: String,
        caption: Option<String>,
        media_group_id: Option<String>,
    },
    /// A Stars payment went through (`successful_payment`): credit it once per charge.
    Paid(Payment),
    /// Stickers, voice, location, …: something we do not take.
    Unsupported(&'static str),
}

/// A `successful_payment` or a `pre_checkout_query`: what the user pays and for which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub currency: String,
    pub total_amount: i64,
    /// Our topup id, as sent in the invoice.
    pub payload: String,
    /// `telegram_payment_charge_id` (empty in a pre-checkout query).
    pub charge_id: String,
}

fn payment(value: &Value) -> Option<Payment> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    Some(Payment {
        currency: text("currency"),
        total_amount: value.get("total_amount")?.as_i64()?,
        payload: text("invoice_payload"),
        charge_id: text("telegram_payment_charge_id"),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub chat_id: i64,
    pub message_id: i64,
    pub private: bool,
    pub from: From,
    pub content: Content,
    /// The message this one replies to (`reply_to_message.message_id`), if any: a reply to a
    /// delivered picture edits it.
    pub reply_to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Message(Message),
    Callback {
        id: String,
        from: From,
        chat_id: Option<i64>,
        message_id: Option<i64>,
        data: String,
    },
    /// Telegram asks whether a payment may go ahead; answered inline within 10 s.
    PreCheckout {
        id: String,
        from: From,
        payment: Payment,
    },
    /// The user blocked (`kicked`) or unblocked (`member`) the bot.
    ChatMember {
        from: From,
        status: String,
    },
    /// A kind we do not handle; recorded and answered 200.
    Other,
}

/// `update_id` and the update's kind (its one key besides `update_id`), if it has them.
pub fn envelope(update: &Value) -> Option<(i64, String)> {
    let id = update.get("update_id")?.as_i64()?;
    let kind = update.as_object()?.keys().find(|k| *k != "update_id").cloned().unwrap_or_default();
    Some((id, kind))
}

fn from(value: &Value) -> Option<From> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(From {
        id: value.get("id")?.as_i64()?,
        username: text("username"),
        first_name: text("first_name"),
        language_code: text("language_code"),
    })
}

const UNSUPPORTED: &[&str] =
    &["sticker", "voice", "video_note", "video", "audio", "location", "contact", "poll", "dice", "animation"];

/// The largest size of a photo, or an image document.
fn image_file_id(message: &Value) -> Option<String> {
    if let Some(sizes) = message.get("photo").and_then(Value::as_array) {
        return sizes.last()?.get("file_id")?.as_str().map(str::to_owned);
    }
    let document = message.get("document")?;
    let mime = document.get("mime_type").and_then(Value::as_str).unwrap_or("");
    if mime.starts_with("image/") {
        return document.get("file_id")?.as_str().map(str::to_owned);
    }
    None
}

fn content(message: &Value) -> Content {
    if let Some(paid) = message.get("successful_payment").and_then(payment) {
        return Content::Paid(paid);
    }
    if let Some(file_id) = image_file_id(message) {
        let text = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_owned);
        return Content::Image { file_id, caption: text("caption"), media_group_id: text("media_group_id") };
    }
    if let Some(text) = message.get("text").and_then(Value::as_str) {
        if let Some(command) = text.strip_prefix('/') {
            let (head, args) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
            let name = head.split('@').next().unwrap_or(head).to_ascii_lowercase();
            return Content::Command { name, args: args.trim().to_owned() };
        }
        return Content::Text(text.to_owned());
    }
    let kind = UNSUPPORTED.iter().find(|k| message.get(**k).is_some()).copied();
    Content::Unsupported(kind.unwrap_or("other"))
}

pub fn parse(update: &Value) -> Incoming {
    if let Some(message) = update.get("message") {
        let chat = message.get("chat");
        let chat_id = chat.and_then(|c| c.get("id")).and_then(Value::as_i64);
        let private = chat.and_then(|c| c.get("type")).and_then(Value::as_str) == Some("private");
        if let (Some(chat_id), Some(from)) = (chat_id, message.get("from").and_then(from)) {
            let message_id = message.get("message_id").and_then(Value::as_i64).unwrap_or(0);
            return Incoming::Message(Message {
                chat_id,
                message_id,
                private,
                from,
                content: content(message),
                reply_to: message.pointer("/reply_to_message/message_id").and_then(Value::as_i64),
            });
        }
    }
    if let Some(query) = update.get("callback_query") {
        if let (Some(id), Some(from)) =
            (query.get("id").and_then(Value::as_str), query.get("from").and_then(from))
        {
            let message = query.get("message");
            return Incoming::Callback {
                id: id.to_owned(),
                from,
                chat_id: message.and_then(|m| m.pointer("/chat/id")).and_then(Value::as_i64),
                message_id: message.and_then(|m| m.get("message_id")).and_then(Value::as_i64),
                data: query.get("data").and_then(Value::as_str).unwrap_or("").to_owned(),
            };
        }
    }
    if let Some(query) = update.get("pre_checkout_query") {
        let id = query.get("id").and_then(Value::as_str);
        if let (Some(id), Some(from), Some(payment)) = (id, query.get("from").and_then(from), payment(query))
        {
            return Incoming::PreCheckout { id: id.to_owned(), from, payment };
        }
    }
    if let Some(member) = update.get("my_chat_member") {
        let status = member.pointer("/new_chat_member/status").and_then(Value::as_str);
        if let (Some(from), Some(status)) = (member.get("from").and_then(from), status) {
            return Incoming::ChatMember { from, status: status.to_owned() };
        }
    }
    Incoming::Other
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(body: Value) -> Value {
        let mut m = json!({"message_id": 1, "chat": {"id": 7, "type": "private"}, "from": {"id": 7, "first_name": "A"}});
        if let (Some(m), Some(b)) = (m.as_object_mut(), body.as_object()) {
            m.extend(b.clone());
        }
        json!({"update_id": 10, "message": m})
    }

    #[test]
    fn reads_commands_text_and_unsupported_content() {
        let Incoming::Message(m) = parse(&message(json!({"text": "/Start@nano_bot ref-42"}))) else {
            panic!()
        };
        assert_eq!(m.content, Content::Command { name: "start".into(), args: "ref-42".into() });
        let Incoming::Message(m) = parse(&message(json!({"text": "a cat"}))) else { panic!() };
        assert_eq!((m.content, m.reply_to), (Content::Text("a cat".into()), None));
        let reply = json!({"text": "bluer", "reply_to_message": {"message_id": 41, "photo": []}});
        let Incoming::Message(m) = parse(&message(reply)) else { panic!() };
        assert_eq!(m.reply_to, Some(41));
        let Incoming::Message(m) = parse(&message(json!({"sticker": {}}))) else { panic!() };
        assert_eq!(m.content, Content::Unsupported("sticker"));
        let photo = json!({"photo": [{"file_id": "small"}, {"file_id": "big"}], "caption": "cat", "media_group_id": "g1"});
        let Incoming::Message(m) = parse(&message(photo)) else { panic!() };
        let expected = Content::Image {
            file_id: "big".into(),
            caption: Some("cat".into()),
            media_group_id: Some("g1".into()),
        };
        assert_eq!(m.content, expected);
        let pdf = json!({"document": {"file_id": "d", "mime_type": "application/pdf"}});
        let Incoming::Message(m) = parse(&message(pdf)) else { panic!() };
        assert_eq!(m.content, Content::Unsupported("other"));
        let png = json!({"document": {"file_id": "d", "mime_type": "image/png"}});
        let Incoming::Message(m) = parse(&message(png)) else { panic!() };
        assert!(matches!(m.content, Content::Image { .. }));
    }

    #[test]
    fn reads_payments() {
        let paid = json!({"successful_payment": {"currency": "XTR", "total_amount": 80,
            "invoice_payload": "t1", "telegram_payment_charge_id": "c1"}});
        let Incoming::Message(m) = parse(&message(paid)) else { panic!() };
        let expected = Payment {
            currency: "XTR".into(),
            total_amount: 80,
            payload: "t1".into(),
            charge_id: "c1".into(),
        };
        assert_eq!(m.content, Content::Paid(expected));
        let query = json!({"update_id": 3, "pre_checkout_query": {"id": "q", "from": {"id": 7},
            "currency": "XTR", "total_amount": 80, "invoice_payload": "t1"}});
        let Incoming::PreCheckout { id, payment, .. } = parse(&query) else { panic!() };
        assert_eq!((id.as_str(), payment.total_amount), ("q", 80));
    }

    #[test]
    fn unknown_or_broken_updates_are_other() {
        assert_eq!(parse(&json!({"update_id": 1, "poll_answer": {}})), Incoming::Other);
        assert_eq!(parse(&json!({"update_id": 1, "message": {"text": "no chat"}})), Incoming::Other);
        assert_eq!(
            envelope(&json!({"update_id": 5, "edited_message": {}})),
            Some((5, "edited_message".into()))
        );
        assert_eq!(envelope(&json!({"no": "id"})), None);
    }
}
