//! The answers made of the user's language, balance and the price list alone: `/start`'s
//! welcome and `/help`, which both the full path (`commands`) and the fast path (`fast`) give.

use crate::config::Config;
use crate::texts::{render, render_html, Lang};

/// The commands whose answer is a text made of the user's language and balance alone, which
/// the fast path (`bot::fast`) answers too.
pub const PLAIN: [&str; 2] = ["start", "help"];

/// The answer to a `PLAIN` command, for a user with `available` credits.
pub fn plain_reply(name: &str, lang: Lang, config: &Config, available: i64) -> Option<String> {
    let prices = price_list(lang, config);
    match name {
        "start" => {
            let welcome =
                render_html(lang, "welcome", &[("available", &available.to_string()), ("prices", &prices)]);
            Some(super::examples::under(lang, &welcome))
        }
        "help" => Some(super::examples::under(lang, &render_html(lang, "help", &[("prices", &prices)]))),
        _ => None,
    }
}

/// The keyboard under a `PLAIN` command's answer: the prompt examples (issue 18).
pub fn plain_keyboard(lang: Lang, config: &Config) -> serde_json::Value {
    super::examples::keyboard(lang, config)
}

/// The catalog's offers with their prices, one line.
pub fn price_list(lang: Lang, config: &Config) -> String {
    let en = lang == Lang::En;
    config
        .catalog
        .models()
        .iter()
        .flat_map(|model| model.offers.iter().map(move |offer| (model, offer)))
        .map(|(model, offer)| {
            let credits = offer.price.to_string();
            render(lang, "price_item", &[("model", &model.label(en, offer.size)), ("credits", &credits)])
        })
        .collect::<Vec<_>>()
        .join(", ")
}
