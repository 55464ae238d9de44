//! `/settings`: the user's model, size, aspect ratio, delivery and language, as a message with
//! an inline keyboard whose buttons change one setting each and redraw the message.

use super::BotError;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::domain::model_name;
use crate::texts::{render, Lang};
use crate::config::Config;
use crate::db::users;
use crate::domain::{Delivery, ImageSize, Model, Settings, ASPECT_RATIOS};

/// Callback data prefixes (callback data is at most 64 bytes).
pub const CHANGE: &str = "st:";
pub const LANGUAGE: &str = "lang:";

pub async fn load(conn: &mut PgConnection, user: i64) -> Result<Settings, BotError> {
    let stored = users::settings(conn, user).await?;
    Ok(stored.map(|v| Settings::from_json(&v)).unwrap_or_default())
}

pub async fn save(conn: &mut PgConnection, user: i64, settings: &Settings) -> Result<(), BotError> {
    Ok(users::save_settings(conn, user, settings.to_json()).await?)
}

/// The settings message: text and keyboard.
pub fn screen(lang: Lang, config: &Config, settings: &Settings) -> (String, Value) {
    let price = config.pricing.prices.get(settings.model, settings.image_size());
    let delivery = match settings.delivery {
        Delivery::Photo => render(lang, "delivery_photo", &[]),
        Delivery::PhotoAndFile => render(lang, "delivery_file", &[]),
    };
    let text = render(
        lang,
        "settings",
        &[
            ("model", &model_name(settings.model, settings.image_size())),
            ("price", &price.to_string()),
            ("aspect", &settings.aspect_ratio),
            ("delivery", &delivery),
        ],
    );
    let mark = |chosen: bool, label: String| if chosen { format!("✅ {label}") } else { label };
    let button = |label: String, change: String| json!({ "text": label, "callback_data": format!("{CHANGE}{change}") });
    let mut rows = vec![Model::ALL
        .iter()
        .map(|m| button(mark(*m == settings.model, model_name(*m, None)), format!("m:{m}")))
        .collect::<Vec<_>>()];
    if settings.model == Model::Pro {
        rows.push(
            [ImageSize::K1, ImageSize::K2, ImageSize::K4]
                .iter()
                .map(|s| {
                    let price = config.pricing.prices.get(Model::Pro, Some(*s));
                    button(mark(*s == settings.size, format!("{s} · {price}")), format!("s:{s}"))
                })
                .collect(),
        );
    }
    for half in ASPECT_RATIOS.chunks(5) {
        rows.push(
            half.iter()
                .map(|a| button(mark(*a == settings.aspect_ratio, (*a).to_owned()), format!("a:{a}")))
                .collect(),
        );
    }
    rows.push(vec![
        button(
            mark(settings.delivery == Delivery::Photo, render(lang, "delivery_photo", &[])),
            "d:photo".into(),
        ),
        button(
            mark(settings.delivery == Delivery::PhotoAndFile, render(lang, "delivery_file", &[])),
            "d:file".into(),
        ),
    ]);
    let other = match lang {
        Lang::Ru => Lang::En,
        Lang::En => Lang::Ru,
    };
    rows.push(vec![json!({ "text": render(lang, "language_button", &[]), "callback_data": format!("{LANGUAGE}{}", other.code()) })]);
    (text, json!({ "inline_keyboard": rows }))
}
