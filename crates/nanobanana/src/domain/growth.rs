//! The rules of growth money that need no I/O (DESIGN §10): promo code names, start-link
//! payloads, a referral reward's size, broadcast segments and a broadcast's formatting.

/// A promo code's name: 3–32 of `a-z 0-9 _ -`, case-insensitive (kept lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoName(String);

impl PromoName {
    pub fn parse(text: &str) -> Option<Self> {
        let name = text.trim().to_ascii_lowercase();
        let valid = (3..=32).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        valid.then_some(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a `/start` payload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPayload {
    /// `ref_CODE`: a referral link.
    Referral(String),
    /// `promo_CODE`: a promo code link.
    Promo(PromoName),
    Other,
}

impl StartPayload {
    pub fn parse(payload: &str) -> Self {
        let payload = payload.trim();
        if let Some(code) = payload.strip_prefix("ref_") {
            let code = code.to_ascii_lowercase();
            if (4..=16).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Self::Referral(code);
            }
        } else if let Some(name) = payload.strip_prefix("promo_").and_then(PromoName::parse) {
            return Self::Promo(name);
        }
        Self::Other
    }
}

/// What a referrer earns from one credited charge of their friend: `bonus` for the friend's
/// first charge, `percent` of the charge's credits (rounded down) for every later one.
pub fn referral_reward(first_charge: bool, charge_credits: i64, bonus: i64, percent: i64) -> i64 {
    if first_charge {
        bonus.max(0)
    } else {
        (charge_credits.max(0).saturating_mul(percent.clamp(0, 100))) / 100
    }
}

/// Who a broadcast goes to. Every segment leaves out users who are inactive (blocked the bot),
/// banned, deleted, or turned news off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    All,
    Paid,
    NeverPaid,
    ActiveDays(u32),
    Language(crate::texts::Lang),
}

impl Segment {
    /// `all`, `paid`, `unpaid`, `active7`, `active30`, `lang:ru`, `lang:en`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "all" => Self::All,
            "paid" => Self::Paid,
            "unpaid" => Self::NeverPaid,
            "active7" => Self::ActiveDays(7),
            "active30" => Self::ActiveDays(30),
            other => Self::Language(crate::texts::Lang::parse(other.strip_prefix("lang:")?)?),
        })
    }

    pub fn encode(&self) -> String {
        match self {
            Self::All => "all".to_owned(),
            Self::Paid => "paid".to_owned(),
            Self::NeverPaid => "unpaid".to_owned(),
            Self::ActiveDays(days) => format!("active{days}"),
            Self::Language(lang) => format!("lang:{}", lang.code()),
        }
    }
}

/// A broadcast's URL button: a label of 1–64 characters and an http, https or tg URL; both
/// trimmed. `None` when either is wrong.
pub fn check_button(label: &str, url: &str) -> Option<(String, String)> {
    let (label, url) = (label.trim(), url.trim());
    let url_ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "tg"));
    (!label.is_empty() && label.chars().count() <= 64 && url_ok).then(|| (label.to_owned(), url.to_owned()))
}

/// The tags Telegram's HTML parse mode knows.
const TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "blockquote",
    "span",
];

/// Checks a broadcast's text as Telegram's HTML parse mode reads it: known tags only, each
/// closed in order, entities `&lt; &gt; &amp; &quot;` or numeric, at most 4096 characters.
/// The problem, if any.
pub fn check_html(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the text is empty".to_owned());
    }
    if text.chars().count() > 4096 {
        return Err("the text is longer than 4096 characters".to_owned());
    }
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['<', '&']) {
        let after = &rest[at + 1..];
        if rest[at..].starts_with('&') {
            let end = after.find(';').ok_or("an & without ; (write &amp;)")?;
            let entity = &after[..end];
            let known = matches!(entity, "lt" | "gt" | "amp" | "quot")
                || entity
                    .strip_prefix('#')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if !known {
                return Err(format!("unknown entity &{entity};"));
            }
            rest = &after[end + 1..];
            continue;
        }
        let end = after.find('>').ok_or("a < without > (write &lt;)")?;
        let tag = &after[..end];
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(top) if top == name.trim() => {}
                _ => return Err(format!("</{name}> closes nothing open")),
            }
        } else {
            let name = tag.split_whitespace().next().unwrap_or("");
            if !TAGS.contains(&name) {
                return Err(format!("unknown tag <{name}>"));
            }
            open.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    match open.pop() {
        Some(tag) => Err(format!("<{tag}> is not closed")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_button_needs_a_short_label_and_a_web_or_tg_url() {
        use super::check_button;
        assert_eq!(
            check_button(" Open ", " https://example.com/x "),
            Some(("Open".to_owned(), "https://example.com/x".to_owned()))
        );
        assert!(check_button("Open", "tg://resolve?domain=x").is_some());
        assert_eq!(check_button("", "https://example.com"), None);
        assert_eq!(check_button(&"x".repeat(65), "https://example.com"), None);
        assert_eq!(check_button("Open", "javascript:alert(1)"), None);
        assert_eq!(check_button("Open", "not a url"), None);
    }

    use super::*;

    #[test]
    fn promo_names_and_payloads_parse() {
        assert_eq!(PromoName::parse(" Summer-25 ").map(|n| n.as_str().to_owned()), Some("summer-25".into()));
        for bad in ["ab", "with space", "ünï", &"x".repeat(33)] {
            assert_eq!(PromoName::parse(bad), None, "{bad}");
        }
        assert_eq!(StartPayload::parse("ref_AbCd1234"), StartPayload::Referral("abcd1234".into()));
        assert_eq!(
            StartPayload::parse("promo_SPRING"),
            StartPayload::Promo(PromoName::parse("spring").unwrap())
        );
        assert_eq!(StartPayload::parse("ref_x"), StartPayload::Other);
        assert_eq!(StartPayload::parse("hello"), StartPayload::Other);
    }

    #[test]
    fn rewards_round_down_and_segments_round_trip() {
        assert_eq!(referral_reward(true, 300, 20, 10), 20);
        assert_eq!(referral_reward(false, 199, 20, 10), 19);
        assert_eq!(referral_reward(false, 9, 20, 10), 0);
        for text in ["all", "paid", "unpaid", "active7", "active30", "lang:ru", "lang:en"] {
            assert_eq!(Segment::parse(text).map(|s| s.encode()), Some(text.to_owned()));
        }
        assert_eq!(Segment::parse("lang:de"), None);
    }

    #[test]
    fn html_is_checked_as_telegram_reads_it() {
        assert!(check_html("<b>New</b> model &amp; <a href=\"https://x\">more</a>").is_ok());
        for bad in ["", "<b>open", "<x>y</x>", "a < b", "</i>", "fish & chips", "<b><i>x</b></i>"] {
            assert!(check_html(bad).is_err(), "{bad}");
        }
    }
}
