//! `Credits`: a positive whole number of credits, the unit every price and movement uses.

use std::fmt;

/// The largest amount a single movement may carry; far above any pack, low enough that no
/// sum of movements can overflow an `i64`.
const MAX_CREDITS: i64 = 1_000_000_000;

/// A positive amount of credits (1 credit = 1 ₽ by default). Never zero, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Credits(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    #[error("credits must be a positive whole number, got {0}")]
    NotPositive(i64),
    #[error("credits must be at most {MAX_CREDITS}, got {0}")]
    TooLarge(i64),
    #[error("credits must be a whole number, got {0:?}")]
    NotANumber(String),
}

impl Credits {
    pub fn new(value: i64) -> Result<Self, CreditsError> {
        if value <= 0 {
            Err(CreditsError::NotPositive(value))
        } else if value > MAX_CREDITS {
            Err(CreditsError::TooLarge(value))
        } else {
            Ok(Self(value))
        }
    }

    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        let value = text.trim().parse::<i64>().map_err(|_| CreditsError::NotANumber(text.to_owned()))?;
        Self::new(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_positive_whole_numbers() {
        assert_eq!(Credits::parse("10").map(Credits::get), Ok(10));
        assert_eq!(Credits::parse(" 7 ").map(Credits::get), Ok(7));
    }

    #[test]
    fn rejects_zero_negative_huge_and_garbage() {
        assert_eq!(Credits::parse("0"), Err(CreditsError::NotPositive(0)));
        assert_eq!(Credits::parse("-5"), Err(CreditsError::NotPositive(-5)));
        assert!(matches!(Credits::parse("2000000000"), Err(CreditsError::TooLarge(_))));
        assert!(matches!(Credits::parse("1.5"), Err(CreditsError::NotANumber(_))));
        assert!(matches!(Credits::parse(""), Err(CreditsError::NotANumber(_))));
    }
}
