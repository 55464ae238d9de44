//! Prompt examples (DESIGN §10, issue 18): `/start` and `/help` show three tappable examples
//! that work on the default model, and a link to the operator's examples channel
//! (`EXAMPLES_URL`) when set. A tap is a prompt like any other (reserved and charged).

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::commands::Sender;
use super::request::{self, Ask};
use super::BotError;
use crate::config::Config;
use crate::domain::Button;
use crate::texts::{render, Lang};

/// How many examples there are (`example_1` … in the texts).
pub const COUNT: u8 = 3;

/// The example's prompt in `lang`, for `index` in `1..=COUNT`.
pub fn prompt(lang: Lang, index: u8) -> Option<String> {
    (1..=COUNT).contains(&index).then(|| render(lang, &format!("example_{index}"), &[]))
}

/// A `/start` or `/help` text with the hint to the examples under it.
pub fn under(lang: Lang, text: &str) -> String {
    format!("{text}\n\n{}", render(lang, "examples_hint", &[]))
}

/// The keyboard under `/start` and `/help`: one button an example, and the channel.
pub fn keyboard(lang: Lang, config: &Config) -> Value {
    let mut rows: Vec<Value> = (1..=COUNT)
        .filter_map(|index| {
            let text = prompt(lang, index)?;
            let data = Button::Example { index }.encode();
            Some(json!([{ "text": format!("✨ {text}"), "callback_data": data }]))
        })
        .collect();
    if let Some(url) = &config.operator.examples_url {
        rows.push(json!([{ "text": render(lang, "examples_channel", &[]), "url": url.as_str() }]));
    }
    json!({ "inline_keyboard": rows })
}

/// An example tapped: its prompt as a request of the user's. The toast and the generation.
pub async fn press(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    ask: (i64, i64, i64),
    index: u8,
) -> Result<(String, Option<uuid::Uuid>), BotError> {
    let (user, chat, update_id) = ask;
    let Some(text) = prompt(sender.lang, index) else {
        return Ok((String::new(), None));
    };
    let no_references: [String; 0] = [];
    let ask = Ask {
        user,
        chat,
        prompt: &text,
        references: &no_references,
        source_key: format!("update:{update_id}"),
    };
    let created =
        request::generation_with(conn, config, sender.lang, sender.banned, &ask, Some(&sender.settings))
            .await?;
    Ok((render(sender.lang, "example_toast", &[]), created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_examples_in_both_languages_and_buttons_that_fit() {
        for lang in [Lang::Ru, Lang::En] {
            for index in 1..=COUNT {
                let text = prompt(lang, index).expect("example");
                assert!(!text.is_empty() && !text.starts_with("example_"), "{text}");
            }
            assert_eq!(prompt(lang, 0), None);
            assert_eq!(prompt(lang, COUNT + 1), None);
        }
    }
}
