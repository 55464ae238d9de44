//! The customer's contact for a 54-FZ receipt, as a user types it: an e-mail or a phone
//! number. Parsed once at the boundary; stored on the user as `email:…` or `phone:…`.

use crate::yookassa::Contact;

const MAX_EMAIL: usize = 254;

/// An e-mail (`local@domain.tld`, no spaces) or a phone of 10–15 digits (`+`, spaces, dashes
/// and brackets allowed; a Russian `8XXXXXXXXXX` becomes `7XXXXXXXXXX`).
pub fn parse(text: &str) -> Option<Contact> {
    let text = text.trim();
    if text.contains('@') {
        let (local, domain) = text.split_once('@')?;
        let valid = text.len() <= MAX_EMAIL
            && !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !text.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"(),;:".contains(c));
        return valid.then(|| Contact::Email(text.to_owned()));
    }
    if !text.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
        return None;
    }
    let mut digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 11 && digits.starts_with('8') && !text.starts_with('+') {
        digits.replace_range(0..1, "7");
    }
    (10..=15).contains(&digits.len()).then_some(Contact::Phone(digits))
}

/// Whether a text sent while the contact is asked is an attempt at one, so a typo is told
/// "not an e-mail or phone": it has an `@`, 7 or more digits, or is one word (a mistyped
/// address). Anything else — words with spaces, no `@`, few digits: a prompt, "I won't tell" —
/// means the user moved on, and the bot leaves the question.
pub fn attempted(text: &str) -> bool {
    let text = text.trim();
    text.contains('@')
        || !text.contains(char::is_whitespace)
        || text.chars().filter(char::is_ascii_digit).count() >= 7
}

/// How the contact is stored on the user's row.
pub fn to_stored(contact: &Contact) -> String {
    match contact {
        Contact::Email(email) => format!("email:{email}"),
        Contact::Phone(phone) => format!("phone:{phone}"),
    }
}

pub fn from_stored(stored: &str) -> Option<Contact> {
    match stored.split_once(':')? {
        ("email", email) => Some(Contact::Email(email.to_owned())),
        ("phone", phone) => Some(Contact::Phone(phone.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones_are_read_and_junk_refused() {
        assert_eq!(parse(" user@example.com "), Some(Contact::Email("user@example.com".into())));
        assert_eq!(parse("+7 (900) 123-45-67"), Some(Contact::Phone("79001234567".into())));
        assert_eq!(parse("8 900 123 45 67"), Some(Contact::Phone("79001234567".into())));
        for junk in ["", "user@", "@example.com", "a@b", "a b@c.d", "a@b@c.d", "12345", "call me", "a@.com"] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
        let stored = to_stored(&Contact::Phone("79001234567".into()));
        assert_eq!(from_stored(&stored), Some(Contact::Phone("79001234567".into())));
        assert_eq!(from_stored("fax:1"), None);
    }

    #[test]
    fn typos_are_attempts_and_sentences_are_not() {
        for attempt in ["buyer@example", "a b@c", "buyer.example.com", "+7 900 123", "8 900 12 34 5", "x"] {
            assert!(attempted(attempt), "{attempt:?}");
        }
        for other in ["call me maybe", "не скажу", "a cat on the moon", "2 cats, 3 dogs\nin 4k", " a b "]
        {
            assert!(!attempted(other), "{other:?}");
        }
    }
}
