//! The bot's words, in Russian and English, from the resource files `texts/ru.json` and
//! `texts/en.json`, with `texts/growth.{ru,en}.json` merged in (embedded at build time). Handlers name a key and its arguments; arguments
//! are escaped for Telegram's HTML, so user input can never change the formatting.

use std::collections::HashMap;
use std::sync::LazyLock;

/// A language the bot speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    /// Russian by default; English for users whose Telegram speaks English.
    pub fn from_telegram(language_code: Option<&str>) -> Self {
        match language_code {
            Some(code) if code.to_ascii_lowercase().starts_with("en") => Lang::En,
            _ => Lang::Ru,
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }
}

type Table = HashMap<String, String>;

fn load(source: &str, name: &str) -> Table {
    serde_json::from_str(source)
        .unwrap_or_else(|e| unreachable!("texts/{name}.json is checked by tests: {e}"))
}

/// The main table and, merged into it, the growth texts (starter, referrals, promo codes,
/// broadcasts) kept in a file of their own.
fn load_with(main: (&str, &str), growth: (&str, &str)) -> Table {
    let mut table = load(main.0, main.1);
    table.extend(load(growth.0, growth.1));
    table
}

static RU: LazyLock<Table> = LazyLock::new(|| {
    load_with(
        (include_str!("../texts/ru.json"), "ru"),
        (include_str!("../texts/growth.ru.json"), "growth.ru"),
    )
});
static EN: LazyLock<Table> = LazyLock::new(|| {
    load_with(
        (include_str!("../texts/en.json"), "en"),
        (include_str!("../texts/growth.en.json"), "growth.en"),
    )
});

fn table(lang: Lang) -> &'static Table {
    match lang {
        Lang::Ru => &RU,
        Lang::En => &EN,
    }
}

/// Escapes text for Telegram's HTML parse mode.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The text `key` in `lang` with `{name}` placeholders replaced by the escaped arguments.
/// A key missing from the resources renders as the key itself (and a test forbids that).
pub fn render(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let Some(template) = table(lang).get(key) else {
        tracing::error!(key, lang = lang.code(), "missing text");
        return key.to_owned();
    };
    fill(template, args, |value| escape(value))
}

/// Like `render`, but the arguments are already HTML (built from other rendered texts).
pub fn render_html(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let Some(template) = table(lang).get(key) else {
        tracing::error!(key, lang = lang.code(), "missing text");
        return key.to_owned();
    };
    fill(template, args, str::to_owned)
}

/// Replaces each `{name}` of `template` by its argument in one pass over the template, so a
/// value that itself contains `{other}` (a user's name, a prompt) is never read as a placeholder.
/// An unknown or unclosed `{…}` stays as written.
fn fill(template: &str, args: &[(&str, &str)], encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            args.iter().find(|(name, _)| *name == &after[..close]).map(|(_, v)| (close, v))
        });
        match value {
            Some((close, value)) => {
                out.push_str(&encode(value));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn placeholders(text: &str) -> BTreeSet<&str> {
        text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect()
    }

    #[test]
    fn both_languages_have_the_same_keys_and_placeholders() {
        let (ru, en) = (table(Lang::Ru), table(Lang::En));
        let keys = |t: &Table| t.keys().cloned().collect::<BTreeSet<_>>();
        assert_eq!(keys(ru), keys(en));
        for (key, text) in ru {
            assert_eq!(placeholders(text), placeholders(&en[key]), "placeholders of {key}");
        }
    }

    #[test]
    fn a_value_never_fills_another_placeholder() {
        let args = [("id", "7"), ("name", "{available} {reserved}"), ("available", "5"), ("reserved", "0")];
        let args: Vec<(&str, &str)> =
            args.into_iter().chain([("registered", "r"), ("seen", "s"), ("status", "st")]).collect();
        let text = render(Lang::En, "admin_user", &args);
        assert!(text.contains("{available} {reserved}"), "{text}");
        let html = render_html(Lang::En, "admin_user", &args);
        assert!(html.contains("{available} {reserved}"), "{html}");
        assert_eq!(fill("a {x} {y} {", &[("x", "{y}"), ("y", "2")], str::to_owned), "a {y} 2 {");
    }

    #[test]
    fn arguments_are_escaped_and_languages_chosen() {
        let text = render(Lang::En, "support", &[("contact", "<b>@x</b> & co")]);
        assert_eq!(text, "Support: &lt;b&gt;@x&lt;/b&gt; &amp; co");
        assert_eq!(Lang::from_telegram(Some("en-US")), Lang::En);
        assert_eq!(Lang::from_telegram(Some("de")), Lang::Ru);
        assert_eq!(Lang::from_telegram(None), Lang::Ru);
        assert_eq!(render(Lang::Ru, "no_such_key", &[]), "no_such_key");
    }
}
