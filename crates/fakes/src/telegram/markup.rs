//! Text rules of the Bot API: length limits (counted in UTF-16 units after entity parsing, as
//! Telegram counts) and inline keyboard rules (callback data 1–64 bytes). Pure functions; never
//! touches state. Parsing of `parse_mode` lives in `entities`.

use serde_json::Value;

use super::entities::{parse, Formatted};
use super::error::TgError;

pub const MAX_TEXT: usize = 4096;
pub const MAX_CAPTION: usize = 1024;
pub const MAX_CALLBACK_DATA: usize = 64;

/// Checks a message text: not empty, at most 4096 units once parsed; returns what Telegram
/// stores (visible text and entities).
pub fn check_text(text: Option<&str>, parse_mode: Option<&str>) -> Result<Formatted, TgError> {
    let formatted = parse(text.unwrap_or(""), parse_mode)?;
    if formatted.text.trim().is_empty() {
        return Err(TgError::bad_request("message text is empty"));
    }
    if formatted.text.encode_utf16().count() > MAX_TEXT {
        return Err(TgError::bad_request("message is too long"));
    }
    Ok(formatted)
}

/// Checks an optional caption: at most 1024 units once parsed.
pub fn check_caption(caption: Option<&str>, parse_mode: Option<&str>) -> Result<Option<Formatted>, TgError> {
    let Some(caption) = caption else {
        return Ok(None);
    };
    let formatted = parse(caption, parse_mode)?;
    if formatted.text.encode_utf16().count() > MAX_CAPTION {
        return Err(TgError::bad_request("message caption is too long"));
    }
    Ok(Some(formatted))
}

/// Sets `field` (text or caption) and its entities on a `Message`.
pub fn set_formatted(message: &mut Value, field: &str, formatted: &Formatted) {
    message[field] = Value::String(formatted.text.clone());
    let entities_field = if field == "text" { "entities" } else { "caption_entities" };
    if let Some(map) = message.as_object_mut() {
        map.remove(entities_field);
    }
    if !formatted.entities.is_empty() {
        message[entities_field] = Value::Array(formatted.entities.clone());
    }
}

/// Validates `reply_markup`; returns what Telegram echoes back in the `Message` (only inline
/// keyboards are echoed).
pub fn check_reply_markup(markup: Option<Value>) -> Result<Option<Value>, TgError> {
    let Some(markup) = markup else {
        return Ok(None);
    };
    let invalid = || TgError::bad_request("can't parse reply keyboard markup JSON object");
    let object = markup.as_object().ok_or_else(invalid)?;
    if let Some(rows) = object.get("inline_keyboard") {
        let rows = rows
            .as_array()
            .ok_or_else(|| TgError::bad_request("field \"inline_keyboard\" must be an Array"))?;
        for row in rows {
            let row = row
                .as_array()
                .ok_or_else(|| TgError::bad_request("field \"inline_keyboard\" must be an Array of Array"))?;
            row.iter().try_for_each(check_inline_button)?;
        }
        return Ok(Some(markup));
    }
    let known = ["keyboard", "remove_keyboard", "force_reply"];
    if known.iter().any(|k| object.contains_key(*k)) {
        return Ok(None);
    }
    Err(invalid())
}

fn check_inline_button(button: &Value) -> Result<(), TgError> {
    let text = button.get("text").and_then(Value::as_str);
    if text.is_none_or(|t| t.is_empty()) {
        return Err(TgError::bad_request("can't find field \"text\""));
    }
    if let Some(data) = button.get("callback_data") {
        let data = data.as_str().unwrap_or("");
        if data.is_empty() || data.len() > MAX_CALLBACK_DATA {
            return Err(TgError::bad_request("BUTTON_DATA_INVALID"));
        }
        return Ok(());
    }
    if let Some(link) = button.get("url") {
        let ok = link.as_str().and_then(|u| url::Url::parse(u).ok()).is_some();
        return if ok { Ok(()) } else { Err(TgError::bad_request("BUTTON_URL_INVALID")) };
    }
    let actions = [
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    ];
    if actions.iter().any(|a| button.get(*a).is_some()) {
        return Ok(());
    }
    Err(TgError::bad_request("text buttons are unallowed in the inline keyboard"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_limits_count_utf16_units() {
        assert!(check_text(Some(&"a".repeat(4096)), None).is_ok());
        assert_eq!(
            check_text(Some(&"a".repeat(4097)), None).map_err(|e| e.description),
            Err("Bad Request: message is too long".into())
        );
        assert!(check_text(Some(&"😀".repeat(2049)), None).is_err());
        assert!(check_text(Some("  "), None).is_err());
    }

    #[test]
    fn callback_data_is_limited_to_64_bytes() {
        let ok = json!({"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(64)}]]});
        let long = json!({"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(65)}]]});
        assert!(check_reply_markup(Some(ok)).is_ok());
        assert_eq!(
            check_reply_markup(Some(long)).map_err(|e| e.description),
            Err("Bad Request: BUTTON_DATA_INVALID".into())
        );
    }
}
