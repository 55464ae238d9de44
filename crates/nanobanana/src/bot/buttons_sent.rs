//! Every keyboard the bot and the worker send carries buttons that `Button::parse` reads back
//! exactly (DESIGN §2, "Protocols are types"): the screens' keyboards are pure functions, and
//! this test builds each of them.

use std::collections::BTreeSet;

use serde_json::Value;
use uuid::Uuid;

use super::{account, buy, history, settings};
use crate::config::{Config, Role};
use crate::domain::{Button, Delivery, GenerationStatus, ImageSize, Model, Settings};
use crate::texts::Lang;

/// The kind of a button; a new variant does not compile until it is named here (and the test
/// then asks for a screen that sends it).
fn kind(button: &Button) -> &'static str {
    match button {
        Button::Buy { .. } => "buy",
        Button::AcceptTerms { .. } => "terms",
        Button::Setting(_) => "setting",
        Button::Language(_) => "language",
        Button::SendAgain { .. } => "send again",
        Button::Again { .. } => "again",
        Button::DeleteMe { .. } => "delete me",
        Button::Result { .. } => "result",
        Button::Cancel { .. } => "cancel",
        Button::Style { .. } => "style",
        Button::Example { .. } => "example",
    }
}

const KINDS: [&str; 11] = [
    "buy",
    "terms",
    "setting",
    "language",
    "send again",
    "again",
    "delete me",
    "result",
    "cancel",
    "style",
    "example",
];

/// The `callback_data` of every button of an `inline_keyboard` markup.
fn callback_data(markup: &Value) -> Vec<String> {
    let rows = markup["inline_keyboard"].as_array().expect("an inline keyboard");
    rows.iter()
        .flat_map(|row| row.as_array().expect("a row").iter())
        .filter_map(|button| button.get("callback_data"))
        .map(|data| data.as_str().expect("callback data is a string").to_owned())
        .collect()
}

fn config() -> Config {
    let lookup = |var: &str| match var {
        // The ruble packs are offered only with YooKassa configured.
        "YOOKASSA_SHOP_ID" => Some("123".to_owned()),
        "YOOKASSA_SECRET_KEY" => Some("test_secret".to_owned()),
        _ => None,
    };
    Config::from_lookup(Role::Tool, &lookup).expect("a test configuration")
}

#[test]
fn every_button_the_bot_sends_parses_back() {
    let config = config();
    let pro = Settings {
        model: Some(Model::parse("pro").expect("key")),
        size: ImageSize::K4,
        aspect_ratio: "21:9".to_owned(),
        delivery: Delivery::PhotoAndFile,
        news: false,
        variants: 4,
        style: Some("anime".to_owned()),
    };
    let mut keyboards = Vec::new();
    for lang in [Lang::Ru, Lang::En] {
        for settings in [Settings::default(), pro.clone()] {
            keyboards.push(settings::screen(lang, &config, &[], &settings).1);
        }
        keyboards.push(buy::screen(lang, &config).1);
        let packs = config.packs.rub.iter().chain(&config.packs.stars);
        for pack in packs {
            keyboards.push(buy::terms_keyboard(lang, &config.operator.terms_version, Some(&pack.id)));
            // A long terms version in Cyrillic: the button drops the pack, then is cut in bytes.
            for version in ["редакция-2025-01", &"редакция".repeat(4), &"редакция".repeat(9)]
            {
                keyboards.push(buy::terms_keyboard(lang, version, Some(&pack.id)));
            }
        }
        keyboards.push(buy::terms_keyboard(lang, &config.operator.terms_version, None));
        let statuses = [GenerationStatus::Succeeded, GenerationStatus::Failed, GenerationStatus::Queued];
        let history: Vec<Value> = statuses
            .into_iter()
            .enumerate()
            .flat_map(|(n, status)| history::buttons(lang, &(n + 1).to_string(), Uuid::new_v4(), status))
            .collect();
        keyboards.push(serde_json::json!({ "inline_keyboard": [history] }));
        keyboards.push(account::confirm_keyboard(lang));
        keyboards.push(crate::worker::result_buttons(lang, Uuid::max()));
        keyboards.push(crate::outbox::group::cancel_markup(lang, Uuid::max()));
        for default in [None, Some("anime")] {
            keyboards.push(super::styles::screen(lang, default).1);
        }
        keyboards.push(super::examples::keyboard(lang, &config));
    }

    let mut kinds = BTreeSet::new();
    for data in keyboards.iter().flat_map(callback_data) {
        assert!(data.len() <= Button::MAX_BYTES, "{} bytes: {data}", data.len());
        let button = Button::parse(&data).unwrap_or_else(|| panic!("{data:?} does not parse"));
        assert_eq!(button.encode(), data, "{button:?}");
        kinds.insert(kind(&button));
    }
    assert_eq!(kinds, BTreeSet::from(KINDS), "a screen for every kind of button");
}
