//! The rules of a generation request (DESIGN §4 "Generation request"), pure: what is checked
//! before anything is locked (the ask itself), and what is checked under the user's balance
//! lock (pause, debt, caps, balance). Each refusal names the text that explains it; nothing
//! here reads the database or renders a message.

use super::Credits;

/// The limits one request is held to (from the configuration, for the request's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_prompt_chars: u32,
    pub max_references: u32,
    pub max_in_flight: u32,
    pub daily_generations: u32,
}

/// What the database says about the user and the service, read under the balance lock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Load {
    /// The user's generations queued or processing.
    pub in_flight: i64,
    /// The user's generations created today.
    pub today: i64,
    /// Why generation is paused for everyone, if it is.
    pub paused: Option<String>,
    /// What the user still owes after a refund made outside the bot.
    pub owed: i64,
    /// Why the requested model is missing at Gemini, if it is (the probe, or a 404).
    pub model_missing: Option<String>,
}

/// Why a request is refused, before anything is reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Banned,
    EmptyPrompt,
    PromptTooLong {
        length: usize,
        max: u32,
    },
    TooManyReferences {
        count: usize,
        max: u32,
    },
    /// Paused for everyone: Gemini's daily quota is spent (`quota`), or it is unavailable.
    Paused {
        quota: bool,
    },
    /// The chosen model is not served by Gemini now.
    ModelUnavailable,
    Debt {
        owed: i64,
    },
    TooManyInFlight {
        count: i64,
    },
    DailyCap {
        cap: u32,
    },
    ShortBalance {
        cost: Credits,
        available: i64,
    },
}

impl Refusal {
    /// The text that explains the refusal.
    pub fn text_key(&self) -> &'static str {
        match self {
            Refusal::Banned => "banned",
            Refusal::EmptyPrompt => "prompt_empty",
            Refusal::PromptTooLong { .. } => "prompt_too_long",
            Refusal::TooManyReferences { .. } => "too_many_references",
            Refusal::Paused { .. } => "progress_paused",
            Refusal::ModelUnavailable => "model_unavailable",
            Refusal::Debt { .. } => "debt_blocked",
            Refusal::TooManyInFlight { .. } => "too_many_in_flight",
            Refusal::DailyCap { .. } => "daily_cap",
            Refusal::ShortBalance { .. } => "insufficient",
        }
    }
}

/// The ask itself: not banned, a prompt of 1..=max characters (trimmed), few enough references.
pub fn check_ask(banned: bool, prompt: &str, references: usize, limits: &Limits) -> Result<(), Refusal> {
    let length = prompt.trim().chars().count();
    if banned {
        Err(Refusal::Banned)
    } else if length == 0 {
        Err(Refusal::EmptyPrompt)
    } else if length > limits.max_prompt_chars as usize {
        Err(Refusal::PromptTooLong { length, max: limits.max_prompt_chars })
    } else if references > limits.max_references as usize {
        Err(Refusal::TooManyReferences { count: references, max: limits.max_references })
    } else {
        Ok(())
    }
}

/// Whether generation is paused for everyone, or the model is missing: refused before
/// anything else under the lock.
pub fn check_pause(load: &Load) -> Result<(), Refusal> {
    match (&load.paused, &load.model_missing) {
        (Some(reason), _) => Err(Refusal::Paused { quota: reason.starts_with("daily_quota") }),
        (None, Some(_)) => Err(Refusal::ModelUnavailable),
        (None, None) => Ok(()),
    }
}

/// The caps and the balance, after any debt was repaid (`available` is the balance then).
pub fn check_caps(load: &Load, available: i64, cost: Credits, limits: &Limits) -> Result<(), Refusal> {
    check_caps_for(load, available, cost, 1, limits)
}

/// `check_caps` for a request of `variants` pictures at `cost` each (DESIGN §10 "Variants"):
/// each variant counts against the caps, and the balance must cover them all — otherwise the
/// whole request is refused before anything is reserved.
pub fn check_caps_for(
    load: &Load,
    available: i64,
    cost: Credits,
    variants: u8,
    limits: &Limits,
) -> Result<(), Refusal> {
    let n = i64::from(variants.max(1));
    let total = Credits::new(cost.get().saturating_mul(n)).unwrap_or(cost);
    if load.in_flight + n > i64::from(limits.max_in_flight) {
        Err(Refusal::TooManyInFlight { count: load.in_flight })
    } else if load.today + n > i64::from(limits.daily_generations) {
        Err(Refusal::DailyCap { cap: limits.daily_generations })
    } else if available < total.get() {
        Err(Refusal::ShortBalance { cost: total, available })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits =
        Limits { max_prompt_chars: 10, max_references: 2, max_in_flight: 2, daily_generations: 5 };

    fn credits(n: i64) -> Credits {
        Credits::new(n).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn an_ask_is_refused_for_a_ban_an_empty_or_long_prompt_or_too_many_references() {
        assert_eq!(check_ask(false, "a cat", 2, &LIMITS), Ok(()));
        assert_eq!(check_ask(true, "a cat", 0, &LIMITS), Err(Refusal::Banned));
        assert_eq!(check_ask(false, "   \n", 0, &LIMITS), Err(Refusal::EmptyPrompt));
        assert_eq!(check_ask(false, "ж".repeat(10).as_str(), 0, &LIMITS), Ok(()), "characters, not bytes");
        assert_eq!(
            check_ask(false, &"x".repeat(11), 0, &LIMITS),
            Err(Refusal::PromptTooLong { length: 11, max: 10 })
        );
        assert_eq!(
            check_ask(false, "a cat", 3, &LIMITS),
            Err(Refusal::TooManyReferences { count: 3, max: 2 })
        );
        assert_eq!(Refusal::Banned.text_key(), "banned");
    }

    #[test]
    fn a_pause_names_a_spent_quota_apart_from_other_reasons() {
        assert_eq!(check_pause(&Load::default()), Ok(()));
        let quota = Load { paused: Some("daily_quota: spent".into()), ..Load::default() };
        assert_eq!(check_pause(&quota), Err(Refusal::Paused { quota: true }));
        let key = Load { paused: Some("invalid_key".into()), ..Load::default() };
        assert_eq!(check_pause(&key), Err(Refusal::Paused { quota: false }));
        let gone = Load { model_missing: Some("not listed".into()), ..Load::default() };
        assert_eq!(check_pause(&gone), Err(Refusal::ModelUnavailable));
    }

    #[test]
    fn caps_come_before_the_balance_and_the_exact_price_is_enough() {
        let cost = credits(10);
        assert_eq!(check_caps(&Load::default(), 10, cost, &LIMITS), Ok(()));
        assert_eq!(
            check_caps(&Load::default(), 9, cost, &LIMITS),
            Err(Refusal::ShortBalance { cost, available: 9 })
        );
        let busy = Load { in_flight: 2, today: 5, ..Load::default() };
        assert_eq!(check_caps(&busy, 0, cost, &LIMITS), Err(Refusal::TooManyInFlight { count: 2 }));
        let done_for_today = Load { today: 5, ..Load::default() };
        assert_eq!(check_caps(&done_for_today, 100, cost, &LIMITS), Err(Refusal::DailyCap { cap: 5 }));
    }

    #[test]
    fn variants_count_against_the_caps_and_the_balance_covers_them_all() {
        let cost = credits(10);
        let limits = Limits { max_in_flight: 4, daily_generations: 8, ..LIMITS };
        assert_eq!(check_caps_for(&Load::default(), 40, cost, 4, &limits), Ok(()));
        assert_eq!(
            check_caps_for(&Load::default(), 20, cost, 4, &limits),
            Err(Refusal::ShortBalance { cost: credits(40), available: 20 })
        );
        let one_running = Load { in_flight: 1, ..Load::default() };
        assert_eq!(
            check_caps_for(&one_running, 100, cost, 4, &limits),
            Err(Refusal::TooManyInFlight { count: 1 })
        );
        let late = Load { today: 5, ..Load::default() };
        assert_eq!(check_caps_for(&late, 100, cost, 4, &limits), Err(Refusal::DailyCap { cap: 8 }));
        assert_eq!(check_caps_for(&late, 100, cost, 2, &limits), Ok(()));
    }
}
