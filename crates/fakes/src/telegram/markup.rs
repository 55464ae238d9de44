//! Text rules of the Bot API: length limits (counted in UTF-16 units after entity parsing, as
//! Telegram counts), `parse_mode` HTML and MarkdownV2 syntax, and inline keyboard rules
//! (callback data 1–64 bytes). Pure functions; never touches state.

use serde_json::Value;

use super::error::TgError;

pub const MAX_TEXT: usize = 4096;
pub const MAX_CAPTION: usize = 1024;
pub const MAX_CALLBACK_DATA: usize = 64;

fn parse_error(what: String) -> TgError {
    TgError::bad_request(&format!("can't parse entities: {what}"))
}

/// The visible text of `text` under `parse_mode`, or Telegram's parse error.
pub fn visible_text(text: &str, parse_mode: Option<&str>) -> Result<String, TgError> {
    match parse_mode {
        None | Some("") => Ok(text.to_string()),
        Some(mode) if mode.eq_ignore_ascii_case("html") => html(text),
        Some(mode) if mode.eq_ignore_ascii_case("markdownv2") => markdown_v2(text),
        Some(mode) if mode.eq_ignore_ascii_case("markdown") => {
            Ok(text.replace(['*', '_', '`'], ""))
        }
        Some(_) => Err(TgError::bad_request("unsupported parse_mode")),
    }
}

/// Checks a message text: not empty, at most 4096 units once parsed.
pub fn check_text(text: Option<&str>, parse_mode: Option<&str>) -> Result<String, TgError> {
    let text = text.unwrap_or("");
    let visible = visible_text(text, parse_mode)?;
    if visible.trim().is_empty() {
        return Err(TgError::bad_request("message text is empty"));
    }
    if visible.encode_utf16().count() > MAX_TEXT {
        return Err(TgError::bad_request("message is too long"));
    }
    Ok(visible)
}

/// Checks an optional caption: at most 1024 units once parsed.
pub fn check_caption(caption: Option<&str>, parse_mode: Option<&str>) -> Result<(), TgError> {
    let Some(caption) = caption else {
        return Ok(());
    };
    if visible_text(caption, parse_mode)?.encode_utf16().count() > MAX_CAPTION {
        return Err(TgError::bad_request("message caption is too long"));
    }
    Ok(())
}

const HTML_TAGS: [&str; 16] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

fn html(text: &str) -> Result<String, TgError> {
    let mut out = String::new();
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        let offset = text.len() - rest.len();
        if ch == '<' {
            let end = rest.find('>').ok_or_else(|| {
                parse_error(format!("Unclosed start tag at byte offset {offset}"))
            })?;
            let inner = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                match stack.pop() {
                    Some(open) if open == name || name.is_empty() => {}
                    Some(open) => {
                        return Err(parse_error(format!(
                            "Unmatched end tag at byte offset {offset}, expected \"</{open}>\", found \"</{name}>\""
                        )))
                    }
                    None => return Err(parse_error(format!("Unexpected end tag at byte offset {offset}"))),
                }
                continue;
            }
            let name = inner
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !HTML_TAGS.contains(&name.as_str()) {
                return Err(parse_error(format!(
                    "Unsupported start tag \"{name}\" at byte offset {offset}"
                )));
            }
            stack.push(name);
        } else if ch == '&' {
            let (decoded, used) = entity(rest);
            out.push_str(&decoded);
            rest = &rest[used..];
        } else {
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    if let Some(open) = stack.pop() {
        return Err(parse_error(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        )));
    }
    Ok(out)
}

/// Decodes one HTML entity at the start of `s`; an unknown one stays literal text.
fn entity(s: &str) -> (String, usize) {
    let Some(end) = s.find(';').filter(|&e| e <= 10) else {
        return ("&".into(), 1);
    };
    let name = &s[1..end];
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .map_or_else(
                || {
                    name.strip_prefix('#')
                        .and_then(|d| d.parse().ok())
                        .and_then(char::from_u32)
                },
                |hex| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
            ),
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".into(), 1),
    }
}

const MD_RESERVED: &str = "_*[]()~`>#+-=|{}.!";

/// A basic MarkdownV2 check: reserved characters outside code and links must be escaped.
fn markdown_v2(text: &str) -> Result<String, TgError> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let (mut in_code, mut in_url, mut after_bracket) = (false, false, false);
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
            continue;
        }
        let link_open = after_bracket && c == '(';
        after_bracket = false;
        match c {
            '`' => in_code = !in_code,
            _ if in_code => out.push(c),
            '(' if link_open => in_url = true,
            ')' if in_url => in_url = false,
            _ if in_url => {}
            ']' => after_bracket = true,
            '*' | '_' | '~' | '|' | '[' => {}
            _ if MD_RESERVED.contains(c) => {
                return Err(parse_error(format!(
                    "Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )))
            }
            _ => out.push(c),
        }
    }
    Ok(out)
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
            let row = row.as_array().ok_or_else(|| {
                TgError::bad_request("field \"inline_keyboard\" must be an Array of Array")
            })?;
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
        let ok = link
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some();
        return if ok {
            Ok(())
        } else {
            Err(TgError::bad_request("BUTTON_URL_INVALID"))
        };
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
    Err(TgError::bad_request(
        "text buttons are unallowed in the inline keyboard",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_is_parsed_like_telegram() {
        assert_eq!(
            visible_text("<b>a</b> &lt;3 &amp; x", Some("HTML")).as_deref(),
            Ok("a <3 & x")
        );
        let err = visible_text("<div>x</div>", Some("HTML")).expect_err("div is not allowed");
        assert!(err.description.contains("Unsupported start tag \"div\""));
        assert!(visible_text("<b>x", Some("HTML")).is_err());
        assert!(visible_text("<b>x</i>", Some("HTML")).is_err());
    }

    #[test]
    fn markdown_v2_requires_escapes() {
        assert!(visible_text("Hello.", Some("MarkdownV2")).is_err());
        assert_eq!(
            visible_text("Hello\\. *bold* [x](http://a.b/c)", Some("MarkdownV2")).as_deref(),
            Ok("Hello. bold x")
        );
    }

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
