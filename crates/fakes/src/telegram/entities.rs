//! Formatted text as Telegram parses it: `parse_mode` HTML, MarkdownV2 and legacy Markdown
//! become the visible text plus `entities` (offsets and lengths in UTF-16 units), or a
//! "can't parse entities" error. Pure functions; never touches state.

use serde_json::{json, Value};

use super::error::TgError;

/// Visible text and its entities.
#[derive(Debug, Clone, PartialEq)]
pub struct Formatted {
    pub text: String,
    pub entities: Vec<Value>,
}

fn parse_error(what: String) -> TgError {
    TgError::bad_request(&format!("can't parse entities: {what}"))
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

pub fn parse(text: &str, parse_mode: Option<&str>) -> Result<Formatted, TgError> {
    let mut formatted = match parse_mode {
        None | Some("") => Formatted { text: text.to_string(), entities: vec![] },
        Some(mode) if mode.eq_ignore_ascii_case("html") => html(text)?,
        Some(mode) if mode.eq_ignore_ascii_case("markdownv2") => markdown(text, false)?,
        Some(mode) if mode.eq_ignore_ascii_case("markdown") => markdown(text, true)?,
        Some(_) => return Err(TgError::bad_request("unsupported parse_mode")),
    };
    formatted.entities.retain(|e| e["length"].as_u64().unwrap_or(0) > 0);
    formatted.entities.sort_by_key(|e| e["offset"].as_u64().unwrap_or(0));
    Ok(formatted)
}

fn entity(kind: &str, offset: usize, length: usize) -> Value {
    json!({"type": kind, "offset": offset, "length": length})
}

fn attribute(attrs: &str, name: &str) -> Option<String> {
    let at = attrs.find(&format!("{name}="))? + name.len() + 1;
    let rest = &attrs[at..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(decode_entities(&value[..value.find(quote)?]))
}

fn decode_entities(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '&' {
            let (decoded, used) = html_entity(rest);
            out.push_str(&decoded);
            rest = &rest[used..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Decodes one HTML entity at the start of `s`; an unknown one stays literal text.
fn html_entity(s: &str) -> (String, usize) {
    let Some(end) = s.find(';').filter(|&e| e <= 10) else {
        return ("&".into(), 1);
    };
    let name = &s[1..end];
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
            None => name.strip_prefix('#').and_then(|d| d.parse().ok()).and_then(char::from_u32),
        },
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".into(), 1),
    }
}

fn html_entity_kind(tag: &str, attrs: &str) -> Result<Option<Value>, String> {
    Ok(Some(match tag {
        "b" | "strong" => json!({"type": "bold"}),
        "i" | "em" => json!({"type": "italic"}),
        "u" | "ins" => json!({"type": "underline"}),
        "s" | "strike" | "del" => json!({"type": "strikethrough"}),
        "tg-spoiler" => json!({"type": "spoiler"}),
        "span" if attribute(attrs, "class").as_deref() == Some("tg-spoiler") => {
            json!({"type": "spoiler"})
        }
        "span" => return Err("Tag \"span\" must have class \"tg-spoiler\"".into()),
        "a" => match attribute(attrs, "href") {
            Some(url) => json!({"type": "text_link", "url": url}),
            None => return Ok(None),
        },
        "code" => json!({"type": "code"}),
        "pre" => json!({"type": "pre"}),
        "blockquote" if attrs.contains("expandable") => json!({"type": "expandable_blockquote"}),
        "blockquote" => json!({"type": "blockquote"}),
        "tg-emoji" => {
            json!({"type": "custom_emoji", "custom_emoji_id": attribute(attrs, "emoji-id").unwrap_or_default()})
        }
        _ => return Err(format!("Unsupported start tag \"{tag}\"")),
    }))
}

fn html(text: &str) -> Result<Formatted, TgError> {
    let mut out = String::new();
    let mut entities = Vec::new();
    let mut stack: Vec<(String, Option<Value>, usize)> = Vec::new();
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        let offset = text.len() - rest.len();
        if ch == '&' {
            let (decoded, used) = html_entity(rest);
            out.push_str(&decoded);
            rest = &rest[used..];
            continue;
        }
        if ch != '<' {
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
            continue;
        }
        let end = rest
            .find('>')
            .ok_or_else(|| parse_error(format!("Unclosed start tag at byte offset {offset}")))?;
        let inner = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match stack.pop() {
                Some((open, kind, start)) if open == name || name.is_empty() => {
                    if let Some(mut kind) = kind {
                        kind["offset"] = json!(start);
                        kind["length"] = json!(utf16(&out) - start);
                        entities.push(kind);
                    }
                }
                Some((open, ..)) => {
                    return Err(parse_error(format!(
                    "Unmatched end tag at byte offset {offset}, expected \"</{open}>\", found \"</{name}>\""
                )))
                }
                None => return Err(parse_error(format!("Unexpected end tag at byte offset {offset}"))),
            }
            continue;
        }
        let name = inner.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let attrs = inner.get(name.len()..).unwrap_or("");
        let kind = html_entity_kind(&name, attrs)
            .map_err(|e| parse_error(format!("{e} at byte offset {offset}")))?;
        stack.push((name, kind, utf16(&out)));
    }
    if let Some((open, ..)) = stack.pop() {
        return Err(parse_error(format!("Can't find end tag corresponding to start tag \"{open}\"")));
    }
    Ok(Formatted { text: out, entities })
}

const MD_RESERVED: &str = "_*[]()~`>#+-=|{}.!";

/// MarkdownV2 (or legacy Markdown when `legacy`): `*bold*`, `_italic_`, `__underline__`,
/// `~strike~`, `||spoiler||`, `` `code` ``, ```` ```pre``` ````, `[text](url)`; in V2 every other
/// reserved character must be escaped.
fn markdown(text: &str, legacy: bool) -> Result<Formatted, TgError> {
    let mut out = String::new();
    let mut entities = Vec::new();
    let mut open: Vec<(&'static str, usize, usize)> = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let next = chars.get(i + 1).map(|x| x.1);
        let pos = utf16(&out);
        match c {
            '\\' if !legacy => {
                if let Some(n) = next {
                    out.push(n);
                }
                i += 2;
                continue;
            }
            '`' => {
                let (visible, code, resume) = code_span(text, at, pos, legacy)?;
                entities.push(code);
                out.push_str(&visible);
                i = chars.iter().position(|(b, _)| *b >= resume).unwrap_or(chars.len());
                continue;
            }
            '*' => toggle(&mut open, &mut entities, "bold", pos, at),
            '_' if !legacy && next == Some('_') => {
                toggle(&mut open, &mut entities, "underline", pos, at);
                i += 1;
            }
            '_' => toggle(&mut open, &mut entities, "italic", pos, at),
            '~' if !legacy => toggle(&mut open, &mut entities, "strikethrough", pos, at),
            '|' if !legacy && next == Some('|') => {
                toggle(&mut open, &mut entities, "spoiler", pos, at);
                i += 1;
            }
            '[' => open.push(("text_link", pos, at)),
            ']' if open.iter().any(|(k, _, _)| *k == "text_link") => {
                let index = open.iter().rposition(|(k, _, _)| *k == "text_link").unwrap_or(0);
                let (_, start, _) = open.remove(index);
                let (link, resume) = text_link(text, at, start, pos)?;
                entities.push(link);
                i = chars.iter().position(|(b, _)| *b >= resume).unwrap_or(chars.len());
                continue;
            }
            _ if !legacy && MD_RESERVED.contains(c) => {
                return Err(parse_error(format!(
                    "Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )))
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if let Some((_, _, at)) = open.first() {
        return Err(parse_error(format!("Can't find end of the entity starting at byte offset {at}")));
    }
    Ok(Formatted { text: out, entities })
}

/// An entity marker at output position `pos` (byte `at`): closes the innermost open entity of
/// `kind`, or opens one.
fn toggle(
    open: &mut Vec<(&'static str, usize, usize)>,
    entities: &mut Vec<Value>,
    kind: &'static str,
    pos: usize,
    at: usize,
) {
    if let Some(index) = open.iter().rposition(|(k, _, _)| *k == kind) {
        let (_, start, _) = open.remove(index);
        entities.push(entity(kind, start, pos - start));
    } else {
        open.push((kind, pos, at));
    }
}

/// `` `code` `` or ```` ```pre``` ```` starting at byte `at` (output position `pos`): the
/// visible text, its entity, and the byte offset after the closing marker.
fn code_span(text: &str, at: usize, pos: usize, legacy: bool) -> Result<(String, Value, usize), TgError> {
    let fence = text[at..].starts_with("```");
    let marker = if fence { "```" } else { "`" };
    let body_start = at + marker.len();
    let close = text[body_start..].find(marker).ok_or_else(|| {
        parse_error(format!(
            "Can't find end of {} entity at byte offset {at}",
            if fence { "Pre" } else { "Code" }
        ))
    })?;
    let mut body = &text[body_start..body_start + close];
    if fence {
        // A first line without spaces names the language and is not shown.
        body =
            body.split_once('\n').map_or(body, |(first, rest)| if first.contains(' ') { body } else { rest });
    }
    let visible = if legacy { body.to_string() } else { body.replace("\\`", "`").replace("\\\\", "\\") };
    let code = entity(if fence { "pre" } else { "code" }, pos, utf16(&visible));
    Ok((visible, code, body_start + close + marker.len()))
}

/// The `](url)` closing a link opened at output position `start`, read at byte `at`: the
/// entity and the byte offset after the `)`.
fn text_link(text: &str, at: usize, start: usize, pos: usize) -> Result<(Value, usize), TgError> {
    let tail = &text[at + 1..];
    let url = tail.strip_prefix('(').and_then(|t| t.find(')').map(|end| &t[..end]));
    let Some(url) = url else {
        return Err(parse_error(format!("Can't find end of the entity starting at byte offset {at}")));
    };
    let mut link = entity("text_link", start, pos - start);
    link["url"] = json!(url.replace("\\)", ")"));
    Ok((link, at + 1 + url.len() + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text_and_entities() {
        let f = parse("<b>Hi</b> &lt;3 <a href=\"https://x.y/?a=1&amp;b=2\">link</a>", Some("HTML"))
            .expect("valid");
        assert_eq!(f.text, "Hi <3 link");
        assert_eq!(f.entities[0], json!({"type": "bold", "offset": 0, "length": 2}));
        assert_eq!(
            f.entities[1],
            json!({"type": "text_link", "offset": 6, "length": 4, "url": "https://x.y/?a=1&b=2"})
        );
        let err = parse("<div>x</div>", Some("HTML")).expect_err("div");
        assert!(err.description.contains("Unsupported start tag \"div\""), "{}", err.description);
        assert!(parse("<b>x", Some("HTML")).is_err());
        assert!(parse("<b>x</i>", Some("HTML")).is_err());
        assert!(parse("<span>x</span>", Some("HTML")).is_err());
    }

    #[test]
    fn markdown_v2_requires_escapes_and_yields_entities() {
        assert!(parse("Hello.", Some("MarkdownV2")).is_err());
        assert!(parse("*open", Some("MarkdownV2")).is_err());
        let f = parse("Hello\\. *bold* __u__ [x](http://a.b/c) `a.b`", Some("MarkdownV2")).expect("valid");
        assert_eq!(f.text, "Hello. bold u x a.b");
        let kinds: Vec<&str> = f.entities.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(kinds, ["bold", "underline", "text_link", "code"]);
        assert_eq!(f.entities[2]["url"], "http://a.b/c");
        assert_eq!(parse("a.b *c*", Some("Markdown")).expect("legacy").text, "a.b c");
    }

    #[test]
    fn offsets_are_utf16_units() {
        let f = parse("😀<b>x</b>", Some("HTML")).expect("valid");
        assert_eq!(f.entities[0]["offset"], 2);
    }
}
