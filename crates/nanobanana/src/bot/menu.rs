//! The command menu Telegram shows beside the input field (`setMyCommands`): Russian as the
//! default for every language, English for users whose Telegram speaks English. Descriptions
//! come from the texts; admin commands are never listed.

use serde_json::{json, Value};

use crate::telegram::client::BotApi;
use crate::texts::{render, Lang};

/// The commands in menu order; each has a `menu_<name>` text.
pub const COMMANDS: &[&str] = &[
    "start",
    "help",
    "balance",
    "buy",
    "settings",
    "history",
    "styles",
    "support",
    "terms",
    "paysupport",
    "deleteme",
];

/// `setMyCommands` parameters for `lang`: Russian without a language (the default), English
/// for `language_code: "en"`.
pub fn params(lang: Lang) -> Value {
    let commands: Vec<Value> = COMMANDS
        .iter()
        .map(|name| json!({ "command": name, "description": render(lang, &format!("menu_{name}"), &[]) }))
        .collect();
    match lang {
        Lang::Ru => json!({ "commands": commands }),
        Lang::En => json!({ "commands": commands, "language_code": "en" }),
    }
}

/// Registers the menu in both languages. A failure is logged, never fatal: the bot works
/// without a menu, and the next start tries again.
pub async fn register(api: &BotApi) {
    for lang in [Lang::Ru, Lang::En] {
        match api.call("setMyCommands", &params(lang)).await {
            Ok(_) => tracing::info!(lang = lang.code(), "command menu registered"),
            Err(e) => tracing::warn!(lang = lang.code(), error = %e, "setMyCommands failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_description_in_both_languages() {
        for lang in [Lang::Ru, Lang::En] {
            let params = params(lang);
            let list = params["commands"].as_array().cloned().unwrap_or_default();
            assert_eq!(list.len(), COMMANDS.len());
            for item in list {
                let description = item["description"].as_str().unwrap_or("");
                assert!(!description.starts_with("menu_") && !description.is_empty(), "{item}");
            }
        }
        assert_eq!(params(Lang::En)["language_code"], "en");
        assert!(params(Lang::Ru).get("language_code").is_none());
    }
}
