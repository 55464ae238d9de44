//! `/settings`: the user's model, size, aspect ratio, delivery, news and language, as a message with
//! an inline keyboard whose buttons change one setting each and redraw the message. The models
//! are the catalog's, less those Gemini does not serve now; the sizes and ratios offered are
//! the chosen model's own (never a global list).

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::BotError;
use crate::config::Config;
use crate::db::users;
use crate::domain::{Button, Choice, Delivery, SettingChange, Settings};
use crate::texts::{render, Lang};

pub async fn load(conn: &mut PgConnection, user: i64) -> Result<Settings, BotError> {
    let stored = users::settings(conn, user).await?;
    Ok(stored.map(|v| Settings::from_json(&v)).unwrap_or_default())
}

pub async fn save(conn: &mut PgConnection, user: i64, settings: &Settings) -> Result<(), BotError> {
    Ok(users::save_settings(conn, user, settings.to_json()).await?)
}

/// The Google ids Gemini does not serve now (hidden from the screen, refused on request).
pub async fn missing(conn: &mut PgConnection) -> Result<Vec<String>, BotError> {
    Ok(crate::jobs::availability::missing(conn).await?)
}

/// `settings` after a button's `change`, fitted to the catalog: a model the catalog lacks or
/// Gemini does not serve is not taken, and the size and ratio become ones the model offers.
/// `None` when nothing changes.
pub fn changed(
    config: &Config,
    missing: &[String],
    settings: &Settings,
    change: SettingChange,
) -> Option<Settings> {
    if let SettingChange::Model(key) = &change {
        let model = config.catalog.get(key)?;
        if missing.contains(&model.id) {
            return None;
        }
    }
    let mut next = settings.clone();
    next.apply(change);
    let choice = next.choice(&config.catalog);
    next.model = Some(choice.model.key.clone());
    next.size = choice.size;
    next.aspect_ratio = choice.ratio.to_owned();
    (next != *settings).then_some(next)
}

/// The settings message: text and keyboard.
pub fn screen(lang: Lang, config: &Config, missing: &[String], settings: &Settings) -> (String, Value) {
    let en = lang == Lang::En;
    let choice = settings.choice(&config.catalog);
    let model = choice.model;
    let delivery = match settings.delivery {
        Delivery::Photo => render(lang, "delivery_photo", &[]),
        Delivery::PhotoAndFile => render(lang, "delivery_file", &[]),
    };
    let text = render(
        lang,
        "settings",
        &[
            ("model", &model.label(en, choice.size)),
            ("price", &model.price(choice.size).to_string()),
            ("aspect", choice.ratio),
            ("delivery", &delivery),
        ],
    );
    let mut rows = model_rows(en, config, missing, &choice);
    rows.push(delivery_row(lang, settings));
    let news = if settings.news { "settings_news_on" } else { "settings_news_off" };
    rows.push(vec![setting_button(render(lang, news, &[]), SettingChange::News(!settings.news))]);
    rows.push(variants_row(lang, settings));
    let other = match lang {
        Lang::Ru => Lang::En,
        Lang::En => Lang::Ru,
    };
    let language = Button::Language(other).encode();
    rows.push(vec![json!({ "text": render(lang, "language_button", &[]), "callback_data": language })]);
    (text, json!({ "inline_keyboard": rows }))
}

/// A button's label, ticked when it is the current choice.
fn mark(chosen: bool, label: String) -> String {
    if chosen {
        format!("✅ {label}")
    } else {
        label
    }
}

fn setting_button(label: String, change: SettingChange) -> Value {
    json!({ "text": label, "callback_data": Button::Setting(change).encode() })
}

/// The models offered now (two a row), the chosen model's sizes with their prices (when it has
/// more than one) and its aspect ratios (five a row).
fn model_rows(en: bool, config: &Config, missing: &[String], choice: &Choice<'_>) -> Vec<Vec<Value>> {
    let model = choice.model;
    let offered = config.catalog.models().iter().filter(|m| !missing.contains(&m.id));
    let models: Vec<Value> = offered
        .map(|m| {
            setting_button(
                mark(m.key == model.key, m.name(en).to_owned()),
                SettingChange::Model(m.key.clone()),
            )
        })
        .collect();
    let mut rows: Vec<Vec<Value>> = models.chunks(2).map(<[Value]>::to_vec).collect();
    if model.offers.len() > 1 {
        let sizes = model.offers.iter().map(|o| {
            let label = mark(o.size == choice.size, format!("{} · {}", o.size, o.price));
            setting_button(label, SettingChange::Size(o.size))
        });
        rows.push(sizes.collect());
    }
    for chunk in model.ratios.chunks(5) {
        let ratios = chunk
            .iter()
            .map(|&a| setting_button(mark(a == choice.ratio, a.to_owned()), SettingChange::AspectRatio(a)));
        rows.push(ratios.collect());
    }
    rows
}

/// Photo, or photo and the original as a file.
fn delivery_row(lang: Lang, settings: &Settings) -> Vec<Value> {
    [Delivery::Photo, Delivery::PhotoAndFile]
        .into_iter()
        .map(|delivery| {
            let key = if delivery == Delivery::Photo { "delivery_photo" } else { "delivery_file" };
            setting_button(
                mark(settings.delivery == delivery, render(lang, key, &[])),
                SettingChange::Delivery(delivery),
            )
        })
        .collect()
}

/// Pictures per prompt (DESIGN §10 "Variants"): ×1, ×2, ×4, each variant charged as one.
fn variants_row(lang: Lang, settings: &Settings) -> Vec<Value> {
    let row = crate::domain::VARIANTS.iter().map(|&n| {
        let label = render(lang, "variants_button", &[("n", &n.to_string())]);
        let label = if settings.variants == n { format!("✅ {label}") } else { label };
        json!({ "text": label, "callback_data": Button::Setting(SettingChange::Variants(n)).encode() })
    });
    row.collect()
}
