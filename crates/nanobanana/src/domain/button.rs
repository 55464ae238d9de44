//! The buttons' callback protocol: what an inline button's `callback_data` says, as a type.
//! Every button the bot sends is a `Button` encoded here, and every press is parsed here once,
//! so a handler sees typed data (a pack id, a terms version, a generation id, a setting) and
//! never a prefix. The wire format is the one the bot has always used, so buttons already
//! sitting in users' chats keep working. Telegram allows at most 64 bytes of callback data;
//! `encode` never returns more.

use uuid::Uuid;

use super::SettingChange;
use crate::texts::Lang;

/// An inline button's meaning. Wire formats:
///
/// | variant | `callback_data` |
/// |---|---|
/// | `Buy` | `buy:<pack id>` |
/// | `AcceptTerms` | `terms:<version>:<pack id>`, `terms:<version>:` without a pack |
/// | `Setting` | `st:m:pro`, `st:s:2K`, `st:a:16:9`, `st:d:photo`, `st:d:file`, `st:n:on`, `st:n:off` |
/// | `Language` | `lang:ru`, `lang:en` |
/// | `SendAgain` | `h:send:<generation id>` |
/// | `Again` | `h:again:<generation id>` |
/// | `DeleteMe` | `del:yes`, `del:no` |
/// | `Result` | `regen:<generation id>`, `edit:<generation id>`, `orig:<generation id>`, `x4:<generation id>` |
/// | `Cancel` | `cancel:<generation id>` |
/// | `Style` | `sty:n:<key>` (next prompt), `sty:d:<key>` (default), `sty:off` |
/// | `Example` | `ex:<index>` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Button {
    /// `/buy`: a pack chosen.
    Buy { pack: String },
    /// The terms of `version` accepted, then `pack` (if any) bought. When the whole would not
    /// fit in 64 bytes the pack is dropped (the user chooses it again).
    AcceptTerms { version: String, pack: Option<String> },
    /// `/settings`: one setting changed.
    Setting(SettingChange),
    /// `/settings`: the bot's language changed.
    Language(Lang),
    /// `/history`: the delivered picture sent again.
    SendAgain { generation: Uuid },
    /// `/history`: the same prompt and references as a new request.
    Again { generation: Uuid },
    /// `/deleteme`: the personal data erased (`true`) or the request cancelled.
    DeleteMe { confirmed: bool },
    /// The buttons under a delivered picture.
    Result { action: ResultAction, generation: Uuid },
    /// ❌ on a status message: what of the request has not started is cancelled.
    Cancel { generation: Uuid },
    /// `/styles`: a preset for the next prompt, or as the default (`key: None`: default off).
    Style { key: Option<String>, default: bool },
    /// `/start`, `/help`: one of the prompt examples, as a prompt.
    Example { index: u8 },
}

/// The buttons under a delivered picture: 🔁, ✏️, 📎.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultAction {
    Regenerate,
    Edit,
    Original,
    /// ×4: four variants of the same prompt, settings and references.
    Variants4,
}

impl ResultAction {
    pub const ALL: [ResultAction; 4] = [Self::Regenerate, Self::Edit, Self::Original, Self::Variants4];

    fn prefix(self) -> &'static str {
        match self {
            Self::Regenerate => "regen",
            Self::Edit => "edit",
            Self::Original => "orig",
            Self::Variants4 => "x4",
        }
    }
}

impl Button {
    /// Telegram's limit on `callback_data`, in bytes.
    pub const MAX_BYTES: usize = 64;

    /// The `callback_data`: at most 64 bytes, cut at a character boundary if it must be.
    pub fn encode(&self) -> String {
        let data = match self {
            Self::Buy { pack } => format!("buy:{pack}"),
            Self::AcceptTerms { version, pack } => {
                let whole = format!("terms:{version}:{}", pack.as_deref().unwrap_or(""));
                if whole.len() <= Self::MAX_BYTES {
                    whole
                } else {
                    format!("terms:{version}:")
                }
            }
            Self::Setting(change) => format!("st:{}", change.encode()),
            Self::Language(lang) => format!("lang:{}", lang.code()),
            Self::SendAgain { generation } => format!("h:send:{generation}"),
            Self::Again { generation } => format!("h:again:{generation}"),
            Self::DeleteMe { confirmed: true } => "del:yes".to_owned(),
            Self::DeleteMe { confirmed: false } => "del:no".to_owned(),
            Self::Result { action, generation } => format!("{}:{generation}", action.prefix()),
            Self::Cancel { generation } => format!("cancel:{generation}"),
            Self::Style { key: None, .. } => "sty:off".to_owned(),
            Self::Style { key: Some(key), default } => {
                format!("sty:{}:{key}", if *default { "d" } else { "n" })
            }
            Self::Example { index } => format!("ex:{index}"),
        };
        cut(data)
    }

    /// A press's `callback_data`; `None` for anything the bot never sends.
    pub fn parse(data: &str) -> Option<Button> {
        if data.len() > Self::MAX_BYTES {
            return None;
        }
        let (kind, rest) = data.split_once(':')?;
        let uuid = |text: &str| Uuid::parse_str(text).ok();
        let button = match kind {
            "buy" if !rest.is_empty() => Self::Buy { pack: rest.to_owned() },
            "terms" => {
                let (version, pack) = rest.rsplit_once(':').unwrap_or((rest, ""));
                let pack = (!pack.is_empty()).then(|| pack.to_owned());
                Self::AcceptTerms { version: version.to_owned(), pack }
            }
            "st" => Self::Setting(SettingChange::parse(rest)?),
            "lang" => Self::Language(Lang::parse(rest)?),
            "h" => match rest.split_once(':')? {
                ("send", id) => Self::SendAgain { generation: uuid(id)? },
                ("again", id) => Self::Again { generation: uuid(id)? },
                _ => return None,
            },
            "del" if rest == "yes" => Self::DeleteMe { confirmed: true },
            "del" if rest == "no" => Self::DeleteMe { confirmed: false },
            "cancel" => Self::Cancel { generation: uuid(rest)? },
            "sty" if rest == "off" => Self::Style { key: None, default: true },
            "sty" => match rest.split_once(':')? {
                ("n", key) if !key.is_empty() => Self::Style { key: Some(key.to_owned()), default: false },
                ("d", key) if !key.is_empty() => Self::Style { key: Some(key.to_owned()), default: true },
                _ => return None,
            },
            "ex" => Self::Example { index: rest.parse().ok()? },
            _ => {
                let action = ResultAction::ALL.into_iter().find(|a| a.prefix() == kind)?;
                Self::Result { action, generation: uuid(rest)? }
            }
        };
        Some(button)
    }
}

/// `data` cut to at most `Button::MAX_BYTES` bytes, never inside a character.
fn cut(mut data: String) -> String {
    if data.len() > Button::MAX_BYTES {
        let mut end = Button::MAX_BYTES;
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        data.truncate(end);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Delivery, ImageSize, Model, ALL_ASPECT_RATIOS};

    /// One of each kind, with data that fits.
    fn every_kind() -> Vec<Button> {
        let id = Uuid::max();
        let mut buttons = vec![
            Button::Buy { pack: "rub100".into() },
            Button::Buy { pack: "xtr300".into() },
            Button::AcceptTerms { version: "1".into(), pack: Some("rub100".into()) },
            Button::AcceptTerms { version: "2025-01:ru".into(), pack: Some("xtr100".into()) },
            Button::AcceptTerms { version: "1".into(), pack: None },
            Button::AcceptTerms { version: "версия 3".into(), pack: None },
            Button::Language(Lang::Ru),
            Button::Language(Lang::En),
            Button::SendAgain { generation: id },
            Button::Again { generation: Uuid::nil() },
            Button::DeleteMe { confirmed: true },
            Button::DeleteMe { confirmed: false },
            Button::Setting(SettingChange::Delivery(Delivery::Photo)),
            Button::Setting(SettingChange::Delivery(Delivery::PhotoAndFile)),
            Button::Setting(SettingChange::News(true)),
            Button::Setting(SettingChange::News(false)),
        ];
        for model in crate::domain::default_catalog().models() {
            buttons.push(Button::Setting(SettingChange::Model(model.key.clone())));
        }
        buttons.push(Button::Setting(SettingChange::Model(
            Model::parse(&"k".repeat(Model::MAX_LEN)).expect("key"),
        )));
        buttons.extend(
            [ImageSize::K1, ImageSize::K2, ImageSize::K4].map(|s| Button::Setting(SettingChange::Size(s))),
        );
        buttons.extend(ALL_ASPECT_RATIOS.map(|a| Button::Setting(SettingChange::AspectRatio(a))));
        buttons.extend(ResultAction::ALL.map(|action| Button::Result { action, generation: id }));
        buttons.push(Button::Cancel { generation: id });
        buttons.push(Button::Style { key: None, default: true });
        buttons.push(Button::Example { index: 2 });
        for style in crate::domain::styles::styles() {
            for default in [false, true] {
                buttons.push(Button::Style { key: Some(style.key.clone()), default });
            }
        }
        buttons
    }

    #[test]
    fn every_kind_round_trips_within_64_bytes() {
        for button in every_kind() {
            let data = button.encode();
            assert!(data.len() <= Button::MAX_BYTES, "{data}");
            assert_eq!(Button::parse(&data), Some(button), "{data}");
        }
    }

    #[test]
    fn the_wire_format_is_the_one_already_in_users_chats() {
        let id = Uuid::parse_str("6f9619ff-8b86-d011-b42d-00cf4fc964ff").expect("uuid");
        let cases = [
            (Button::Buy { pack: "rub100".into() }, "buy:rub100".to_owned()),
            (
                Button::AcceptTerms { version: "1".into(), pack: Some("xtr100".into()) },
                "terms:1:xtr100".into(),
            ),
            (Button::AcceptTerms { version: "1".into(), pack: None }, "terms:1:".into()),
            (Button::Setting(SettingChange::Model(Model::parse("pro").expect("key"))), "st:m:pro".into()),
            (Button::Setting(SettingChange::Size(ImageSize::K4)), "st:s:4K".into()),
            (Button::Setting(SettingChange::AspectRatio("16:9")), "st:a:16:9".into()),
            (Button::Setting(SettingChange::Delivery(Delivery::PhotoAndFile)), "st:d:file".into()),
            (Button::Language(Lang::En), "lang:en".into()),
            (Button::SendAgain { generation: id }, format!("h:send:{id}")),
            (Button::Again { generation: id }, format!("h:again:{id}")),
            (Button::DeleteMe { confirmed: true }, "del:yes".into()),
            (Button::DeleteMe { confirmed: false }, "del:no".into()),
            (Button::Result { action: ResultAction::Regenerate, generation: id }, format!("regen:{id}")),
            (Button::Result { action: ResultAction::Edit, generation: id }, format!("edit:{id}")),
            (Button::Result { action: ResultAction::Original, generation: id }, format!("orig:{id}")),
        ];
        for (button, wire) in cases {
            assert_eq!(button.encode(), wire);
            assert_eq!(Button::parse(&wire), Some(button));
        }
        // Lenient where the handlers always were: a terms button without its last colon.
        assert_eq!(Button::parse("terms:1"), Some(Button::AcceptTerms { version: "1".into(), pack: None }));
    }

    #[test]
    fn worst_case_data_stays_within_64_bytes_and_whole_characters() {
        let long_pack = "p".repeat(200);
        let multibyte = |n: usize| "версия-€-🍌".repeat(n);
        let mut worst = vec![
            Button::Buy { pack: long_pack.clone() },
            Button::Buy { pack: "ü".repeat(100) },
            Button::AcceptTerms { version: "1".into(), pack: Some(long_pack.clone()) },
        ];
        for n in 1..=8 {
            worst.push(Button::AcceptTerms { version: multibyte(n), pack: Some("rub300".into()) });
            worst.push(Button::AcceptTerms { version: multibyte(n), pack: Some(long_pack.clone()) });
            worst.push(Button::AcceptTerms { version: multibyte(n), pack: None });
        }
        for button in worst {
            let data = button.encode();
            assert!(data.len() <= Button::MAX_BYTES, "{} bytes: {data}", data.len());
            assert!(Button::parse(&data).is_some(), "what the bot sends parses: {data}");
        }
    }

    #[test]
    fn a_terms_button_too_long_drops_the_pack_first() {
        // 52 bytes of version: with the pack `terms:` + 52 + `:rub100` = 65 bytes, without it 59.
        let version = "в".repeat(26);
        let button = Button::AcceptTerms { version: version.clone(), pack: Some("rub100".into()) };
        let data = button.encode();
        assert_eq!(data, format!("terms:{version}:"));
        assert_eq!(Button::parse(&data), Some(Button::AcceptTerms { version, pack: None }));
        // A version that cannot fit at all is cut in bytes, not characters (the old bug cut
        // at 64 characters: 128 bytes of Cyrillic).
        let version = "в".repeat(64);
        let data = Button::AcceptTerms { version: version.clone(), pack: None }.encode();
        assert_eq!(data.len(), 64);
        assert!(format!("terms:{version}:").starts_with(&data));
    }

    #[test]
    fn garbage_parses_to_none() {
        let id = Uuid::max();
        for garbage in [
            "".to_owned(),
            "buy".into(),
            "buy:".into(),
            "st:".into(),
            "st:m:ultra ultra".into(),
            format!("st:m:{}", "k".repeat(25)),
            "st:a:7:3".into(),
            "st:d:fax".into(),
            "lang:de".into(),
            "h:send:".into(),
            "h:send:not-a-uuid".into(),
            format!("h:later:{id}"),
            format!("h:{id}"),
            "del:maybe".into(),
            "regen:".into(),
            "edit:12345".into(),
            format!("zap:{id}"),
            format!("REGEN:{id}"),
            format!("buy:{}", "x".repeat(61)),
            "🍌🍌🍌".into(),
        ] {
            assert_eq!(Button::parse(&garbage), None, "{garbage}");
        }
    }
}
