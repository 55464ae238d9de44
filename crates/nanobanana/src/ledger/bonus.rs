//! Bonus money (DESIGN §10 "Growth money is bonus money"): credits given, not bought —
//! starter credits, referral rewards, promo codes, an admin's gift. Each is a `bonus` journal
//! row with its source (the row's `actor`) and an idempotency key, so a repeat gives nothing.
//! The balance keeps the bonus part of the available and reserved credits apart
//! (`bonus_available`, `bonus_reserved`); the movement statement spends bonus first, gives a
//! released reserve back in the mix it took, and never lets a refund take bonus credits.

use sqlx::PgConnection;

use super::movement::{apply, lock, Kind, Refs};
use super::{LedgerError, Outcome};
use crate::domain::{Credits, TelegramId};

/// Where bonus credits come from; stored as the journal row's `actor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BonusSource {
    Starter,
    Referral,
    Promo,
    Admin,
}

impl BonusSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BonusSource::Starter => "starter",
            BonusSource::Referral => "referral",
            BonusSource::Promo => "promo",
            BonusSource::Admin => "admin",
        }
    }
}

/// Gives `user` `credits` bonus credits from `source`, once per `key` (a repeat is
/// `AlreadyDone`). Inside the caller's transaction, beside the claim that earns them.
pub async fn grant_bonus(
    conn: &mut PgConnection,
    user: TelegramId,
    credits: Credits,
    source: BonusSource,
    key: &str,
    reason: &str,
) -> Result<Outcome, LedgerError> {
    let refs = Refs {
        idempotency_key: Some(key),
        actor: Some(source.as_str()),
        reason: Some(reason),
        ..Refs::default()
    };
    let entry = apply(conn, user, Kind::Bonus, credits.get(), &refs).await?;
    Ok(entry.map_or(Outcome::AlreadyDone, Outcome::Applied))
}

/// Takes back up to `credits` of `user`'s unspent bonus credits (what was spent stays spent):
/// a `deduct` from the bonus part only, once per `key`. What it took (0: nothing left, or
/// done before).
pub async fn take_back_bonus(
    conn: &mut PgConnection,
    user: TelegramId,
    credits: i64,
    source: BonusSource,
    key: &str,
    reason: &str,
) -> Result<i64, LedgerError> {
    lock(conn, user).await?;
    let bonus = super::balance(conn, user).await?.map_or(0, |b| b.bonus_available);
    let Ok(taken) = Credits::new(credits.min(bonus)) else {
        return Ok(0);
    };
    let refs = Refs {
        idempotency_key: Some(key),
        actor: Some(source.as_str()),
        reason: Some(reason),
        ..Refs::default()
    };
    // A deduct spends bonus first; `taken` is at most the bonus part, so it is all bonus.
    let entry = apply(conn, user, Kind::Deduct, taken.get(), &refs).await?;
    Ok(entry.map_or(0, |e| e.amount))
}
