//! The ledger: the only code that moves credits (DESIGN §1.1, §1.2; L2), and the owner of
//! `balances`, `transactions`, `refunds` and `credit_debts`.
//!
//! Every operation runs inside the caller's transaction, so a state change and the credits
//! it moves commit together. Each movement is one statement that locks the user's balance
//! row, writes one journal row (`transactions`) and updates the balance. Exactly-once comes
//! from the database — fenced conditional updates and unique journal rows (`ON CONFLICT DO
//! NOTHING`) — never from checks made in Rust beforehand. A repeat is `Outcome::AlreadyDone`,
//! which callers treat as success. The settlement of a generation moves its status in the same
//! statement as its journal row. Nothing here calls the outside world or holds a lock across
//! an await on anything but Postgres.

mod adjust;
mod balance;
mod bonus;
mod charges;
pub mod debt;
mod generations;
mod movement;
mod refunds;

use uuid::Uuid;

use crate::domain::TelegramId;

pub use adjust::{adjust, adjust_alone, Adjusted, Adjustment, Direction, Reason, ReasonError};
pub use balance::{balance, lock_balance, Balance};
pub use bonus::{grant_bonus, take_back_bonus, BonusSource};
pub use charges::credit_charge;
pub use generations::{cancel, reserve, settle, Settled, Settlement, CANCELLED_ERROR};
pub use movement::{Entry, Kind};
pub use refunds::{refund_commit, refund_hold, refund_provider_id, refund_release, RefundHold};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Nothing was written.
    #[error("insufficient credits: {available} available, {needed} needed")]
    Insufficient { available: i64, needed: i64 },
    #[error("no user with telegram id {0}")]
    UnknownUser(TelegramId),
    #[error("no payment with id {0}")]
    UnknownPayment(i64),
    #[error("payment {0} has not succeeded; only a succeeded charge can be credited or refunded")]
    NotSucceeded(i64),
    #[error("refunding {requested} credits would exceed the {refundable} still refundable from payment {payment_id}")]
    ExceedsCharge { payment_id: i64, requested: i64, refundable: i64 },
    #[error("no refund with id {0}")]
    UnknownRefund(Uuid),
    #[error("generation {0} already has a settlement")]
    AlreadySettled(Uuid),
    #[error("idempotency key {0:?} was already used for a different adjustment")]
    KeyReused(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The result of an idempotent movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This call moved the credits and wrote this journal row.
    Applied(Entry),
    /// An earlier call already did; nothing was written now.
    AlreadyDone,
}

impl Outcome {
    pub fn applied(&self) -> Option<&Entry> {
        match self {
            Outcome::Applied(entry) => Some(entry),
            Outcome::AlreadyDone => None,
        }
    }
}
