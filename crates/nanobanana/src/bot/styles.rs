//! `/styles` (DESIGN §10 "Styles"): the presets of `domain::styles` as buttons — a tap on a
//! name applies it to the next prompt (a conversation state that expires), ⭐ makes it the
//! default until turned off (the user's settings). The model gets the template applied; the
//! generation keeps the user's words and the style's key, and history shows both.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::commands::Sender;
use super::{conversation, settings, BotError};
use crate::domain::{styles, Awaiting, Button};
use crate::outbox;
use crate::texts::{render, Lang};

/// How long a style chosen for the next prompt waits for it.
pub const NEXT_TTL: Duration = Duration::from_secs(3600);

/// The `/styles` message: text and keyboard, the default style marked.
pub fn screen(lang: Lang, default: Option<&str>) -> (String, Value) {
    let en = lang == Lang::En;
    let mut rows: Vec<Value> = styles::styles()
        .iter()
        .map(|style| {
            let next = Button::Style { key: Some(style.key.clone()), default: false }.encode();
            let as_default = Button::Style { key: Some(style.key.clone()), default: true }.encode();
            let star = if default == Some(style.key.as_str()) { "✅" } else { "⭐" };
            json!([
                { "text": style.name(en), "callback_data": next },
                { "text": format!("{star} {}", render(lang, "style_default_button", &[])), "callback_data": as_default },
            ])
        })
        .collect();
    let current = default
        .and_then(styles::style)
        .map_or_else(|| render(lang, "style_none", &[]), |style| style.name(en).to_owned());
    if default.is_some() {
        let off = Button::Style { key: None, default: true }.encode();
        rows.push(json!([{ "text": render(lang, "style_off_button", &[]), "callback_data": off }]));
    }
    (render(lang, "styles", &[("current", &current)]), json!({ "inline_keyboard": rows }))
}

/// `/styles`: the screen as a command's answer.
pub fn command(lang: Lang, default: Option<&str>) -> (String, Option<Value>) {
    let (text, keyboard) = screen(lang, default);
    (text, Some(keyboard))
}

/// A press on the `/styles` screen; the toast. An unknown key (a preset since removed) changes
/// nothing.
pub async fn press(
    conn: &mut PgConnection,
    sender: &Sender,
    user: i64,
    place: (Option<i64>, Option<i64>),
    key: Option<String>,
    default: bool,
) -> Result<String, BotError> {
    let (lang, en) = (sender.lang, sender.lang == Lang::En);
    let style = key.as_deref().map(styles::style);
    if let Some(None) = style {
        return Ok(render(lang, "style_unknown", &[]));
    }
    let style = style.flatten();
    let chat = place.0.unwrap_or(user);
    if !default {
        let Some(style) = style else { return Ok(String::new()) };
        let state = Awaiting::Styled { style: style.key.clone() };
        conversation::set(conn, user, &state, NEXT_TTL).await?;
        let text = render(lang, "style_next", &[("style", style.name(en))]);
        outbox::send_text(conn, chat, &text, None).await?;
        return Ok(render(lang, "style_next_toast", &[("style", style.name(en))]));
    }
    let mut current = sender.settings.clone();
    current.style = style.map(|s| s.key.clone());
    if current.style != sender.settings.style {
        settings::save(conn, user, &current).await?;
        if let (Some(chat), Some(message_id)) = place {
            let (text, keyboard) = screen(lang, current.style.as_deref());
            let params = json!({ "chat_id": chat, "message_id": message_id, "text": text,
                "parse_mode": "HTML", "reply_markup": keyboard });
            outbox::enqueue(conn, chat, "editMessageText", params).await?;
        }
    }
    Ok(match style {
        Some(style) => render(lang, "style_default_on", &[("style", style.name(en))]),
        None => render(lang, "style_default_off", &[]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_has_a_next_and_a_default_button_and_the_default_is_marked() {
        let (text, keyboard) = screen(Lang::En, Some("anime"));
        let rows = keyboard["inline_keyboard"].as_array().expect("rows");
        assert_eq!(rows.len(), styles::styles().len() + 1, "one row a style, and turning the default off");
        assert!(text.contains("🌸 Anime"), "{text}");
        let anime = rows.iter().find(|r| r[0]["text"] == "🌸 Anime").expect("anime");
        assert!(anime[1]["text"].as_str().is_some_and(|t| t.starts_with('✅')));
        let (_, plain) = screen(Lang::Ru, None);
        assert_eq!(plain["inline_keyboard"].as_array().map(Vec::len), Some(styles::styles().len()));
    }
}
