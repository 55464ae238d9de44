//! What the list pages and the action forms share: the check every state-changing form passes
//! first (its session's CSRF token, then its key), filter values parsed at the boundary (a
//! bad one is a 400 naming it), a list's cursor, and the note a page shows after a redirect.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Admin, PanelError, PanelState};

/// The form's CSRF token, then its key: the key under which the action is recorded (and done
/// once). Nothing is read or written before this passes.
pub fn checked(admin: &Admin, csrf: &str, key: &str) -> Result<uuid::Uuid, PanelError> {
    admin.check_csrf(csrf)?;
    uuid::Uuid::try_parse(key.trim())
        .map_err(|_| PanelError::bad_request("This form has no valid key: reload the page and try again."))
}

/// The transaction of a form's action, begun with the action recorded under its key and admin
/// (`db::panel::record_action`); `None` when that form was already done — a double submit —
/// and then nothing is to be done.
pub async fn begin(
    state: &PanelState,
    key: uuid::Uuid,
    admin: &Admin,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, PanelError> {
    let mut tx = state.pool().begin().await?;
    let first = crate::db::panel::record_action(&mut tx, key, admin.id, action, target, detail).await?;
    Ok(first.then_some(tx))
}

/// An option of a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The choices `(value, label)` with `current` selected; the first is "any".
pub fn choices(any: &str, options: &[(&str, &str)], current: &str) -> Vec<Choice> {
    std::iter::once(("", any))
        .chain(options.iter().copied())
        .map(|(value, label)| Choice {
            value: value.to_owned(),
            label: label.to_owned(),
            selected: value == current,
        })
        .collect()
}

/// `value` if it is empty (no filter) or one of `allowed`; otherwise a 400 naming `what`.
pub fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<Option<String>, PanelError> {
    let value = value.trim();
    if value.is_empty() {
        Ok(None)
    } else if allowed.contains(&value) {
        Ok(Some(value.to_owned()))
    } else {
        Err(PanelError::bad_request(format!("Unknown {what}: {value:?}.")))
    }
}

/// A date range from two `YYYY-MM-DD` fields (UTC days, both included): the start, and the
/// end as the next day's midnight.
pub fn days(from: &str, to: &str) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), PanelError> {
    let day = |what: &str, text: &str| -> Result<Option<NaiveDate>, PanelError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| PanelError::bad_request(format!("The {what} date is not YYYY-MM-DD: {text:?}.")))
    };
    let start = day("from", from)?.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    let end =
        day("to", to)?.and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    Ok((start, end))
}

/// Where a newest-first list goes on: the last row's time (microseconds) and id, `T.ID`.
pub fn cursor(at: &DateTime<Utc>, id: impl std::fmt::Display) -> String {
    format!("{}.{id}", at.timestamp_micros())
}

/// A cursor back into its time and id (of the list's id type); `None` for no cursor, a 400 for
/// a bad one.
pub fn parse_cursor<I: std::str::FromStr>(text: &str) -> Result<Option<(DateTime<Utc>, I)>, PanelError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || PanelError::bad_request("This page link is broken: start from the first page.");
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(bad)?;
    if id.is_empty() || id.len() > 64 {
        return Err(bad());
    }
    Ok(Some((at, id.parse().map_err(|_| bad())?)))
}

/// A query string of the non-empty `pairs`.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(name, value);
    }
    out.finish()
}

/// The note shown after a redirect (`?note=CODE`), from the page's known notes; `(text, bad)`.
pub fn note(code: Option<&str>, known: &[(&str, &str, bool)]) -> Option<(String, bool)> {
    let code = code?;
    known.iter().find(|(c, _, _)| *c == code).map(|(_, text, bad)| ((*text).to_owned(), *bad))
}

/// Seconds for people: `42 s`, `3 min`, `2 h 5 min`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("time");
        let text = cursor(&at, 42);
        assert_eq!(parse_cursor(&text).expect("parses"), Some((at, "42".to_owned())));
        assert_eq!(parse_cursor::<i64>(&text).expect("parses"), Some((at, 42)));
        assert!(parse_cursor::<uuid::Uuid>(&text).is_err(), "not a generation's id");
        assert_eq!(parse_cursor::<String>("").expect("none"), None);
        for bad in ["x", "12", "abc.1", "1."] {
            assert!(parse_cursor::<String>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_include_the_last_one() {
        let (from, to) = days("2026-12-01", "2026-12-01").expect("dates");
        assert_eq!(from.expect("from").to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(to.expect("to").to_rfc3339(), "2026-12-02T00:00:00+00:00");
        assert!(days("01.12.2026", "").is_err());
        assert_eq!(days("", "").expect("none"), (None, None));
    }

    #[test]
    fn filters_accept_only_known_values() {
        assert_eq!(one_of("status", "", &["a"]).expect("any"), None);
        assert_eq!(one_of("status", "a", &["a"]).expect("a"), Some("a".to_owned()));
        assert!(one_of("status", "b'; --", &["a"]).is_err());
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(age(5), "5 s");
        assert_eq!(age(600), "10 min");
        assert_eq!(age(7500), "2 h 5 min");
    }
}
