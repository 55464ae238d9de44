//! Money without floats: rubles as integer kopecks, provider prices as integer micro-dollars.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not an amount like 100 or 99.90")]
    Malformed(String),
    #[error("{0:?} has more than {1} digits after the point")]
    TooPrecise(String, u32),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a non-negative decimal such as `"99.9"` into an integer of `10^scale` units.
fn parse_fixed(text: &str, scale: u32) -> Result<i64, MoneyError> {
    let raw = text.trim();
    if raw.starts_with('-') {
        return Err(MoneyError::Negative(text.to_owned()));
    }
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (raw.contains('.') && !digits(frac)) {
        return Err(MoneyError::Malformed(text.to_owned()));
    }
    if frac.len() > scale as usize {
        return Err(MoneyError::TooPrecise(text.to_owned(), scale));
    }
    let too_large = || MoneyError::TooLarge(text.to_owned());
    let whole: i64 = whole.parse().map_err(|_| too_large())?;
    let frac_units: i64 = if frac.is_empty() {
        0
    } else {
        let parsed: i64 = frac.parse().map_err(|_| too_large())?;
        parsed * 10i64.pow(scale - frac.len() as u32)
    };
    whole.checked_mul(10i64.pow(scale)).and_then(|w| w.checked_add(frac_units)).ok_or_else(too_large)
}

/// Rubles as whole kopecks (1 ₽ = 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Kopecks(i64);

impl Kopecks {
    pub fn from_kopecks(value: i64) -> Result<Self, MoneyError> {
        if value < 0 {
            return Err(MoneyError::Negative(value.to_string()));
        }
        Ok(Self(value))
    }

    /// Parses `"100"`, `"100.5"` or `"100.50"` rubles.
    pub fn parse_rubles(text: &str) -> Result<Self, MoneyError> {
        parse_fixed(text, 2).map(Self)
    }

    /// The rubles as users read them: `100` for whole rubles, `99.90` otherwise.
    pub fn rubles(self) -> String {
        self.to_string().trim_end_matches(".00").to_owned()
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Kopecks {
    /// The form YooKassa wants in `amount.value`: `"100.00"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// US dollars in millionths, for the provider's price per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct MicroUsd(i64);

impl MicroUsd {
    pub fn parse_dollars(text: &str) -> Result<Self, MoneyError> {
        parse_fixed(text, 6).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// This many dollars in kopecks at `rate` kopecks per dollar, rounded up: a price
    /// compared against it errs on the side of warning.
    pub fn to_kopecks(self, rate: Kopecks) -> Kopecks {
        let product = i128::from(self.0) * i128::from(rate.get());
        let kopecks = (product + 999_999) / 1_000_000;
        Kopecks(i64::try_from(kopecks).unwrap_or(i64::MAX))
    }
}

/// An amount in a charge's smallest unit as users read it: `100 ₽` (kopecks of `RUB`) or
/// `80 ⭐` (Stars, `XTR`, which have no smaller unit).
pub fn format_amount(currency: &str, amount_minor: i64) -> String {
    match currency {
        "RUB" => Kopecks::from_kopecks(amount_minor).map(|k| format!("{} ₽", k.rubles())).unwrap_or_default(),
        _ => format!("{amount_minor} ⭐"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_users_expect() {
        assert_eq!(format_amount("RUB", 10_000), "100 ₽");
        assert_eq!(format_amount("RUB", 9_990), "99.90 ₽");
        assert_eq!(format_amount("XTR", 80), "80 ⭐");
        assert_eq!(format_amount("RUB", -1), "");
    }

    #[test]
    fn parses_rubles_to_kopecks() {
        assert_eq!(Kopecks::parse_rubles("100").map(Kopecks::get), Ok(10_000));
        assert_eq!(Kopecks::parse_rubles("99.9").map(Kopecks::get), Ok(9_990));
        assert_eq!(Kopecks::parse_rubles("0.05").map(Kopecks::get), Ok(5));
        assert_eq!(Kopecks::parse_rubles("100.00").map(|k| k.to_string()), Ok("100.00".into()));
    }

    #[test]
    fn rejects_bad_amounts() {
        assert!(matches!(Kopecks::parse_rubles("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(Kopecks::parse_rubles("1.234"), Err(MoneyError::TooPrecise(..))));
        assert!(matches!(Kopecks::parse_rubles("1e3"), Err(MoneyError::Malformed(_))));
        assert!(matches!(Kopecks::parse_rubles("1."), Err(MoneyError::Malformed(_))));
        assert!(matches!(Kopecks::parse_rubles(".5"), Err(MoneyError::Malformed(_))));
        assert!(matches!(Kopecks::parse_rubles("99999999999999999999"), Err(MoneyError::TooLarge(_))));
    }

    #[test]
    fn converts_dollars_at_a_rate_rounding_up() {
        let cost = MicroUsd::parse_dollars("0.134").unwrap();
        let rate = Kopecks::parse_rubles("95.50").unwrap();
        // 0.134 × 95.50 = 12.797 ₽ → 1280 kopecks.
        assert_eq!(cost.to_kopecks(rate).get(), 1_280);
    }
}
