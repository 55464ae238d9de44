//! `BotError`: what can go wrong handling an update, as it is (DESIGN §2: one error type at the
//! update boundary, never a disguised `sqlx::Error`). Whatever it is, the update's transaction
//! rolls back and the update stays open: Telegram delivers it again.

use crate::ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// Not an update at all (no `update_id`): the caller answers 400.
    #[error("not a Telegram update: {0}")]
    NotAnUpdate(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The ledger refused a movement the handler did not expect to be refused (a refusal it
    /// expects, such as a short balance, is answered to the user instead).
    #[error("ledger: {0}")]
    Ledger(LedgerError),
    /// The database disagrees with itself (a second generation from one source, a reservation
    /// already made): nothing is half-written, the transaction fails.
    #[error("inconsistent: {0}")]
    Inconsistent(String),
    /// An external call's outcome is unknown; the update stays open and is redelivered.
    #[error("outcome unknown, to be repeated: {0}")]
    Retry(String),
}

impl From<LedgerError> for BotError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Db(e) => BotError::Db(e),
            other => BotError::Ledger(other),
        }
    }
}
