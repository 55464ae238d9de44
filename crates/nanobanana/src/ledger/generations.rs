//! Reserving a generation's cost and settling it exactly once.

use sqlx::PgConnection;
use uuid::Uuid;

use super::movement::{apply, run, statement, Entry, Kind, Moved, Refs, CANCEL, SETTLE};
use super::{LedgerError, Outcome};
use crate::domain::{Credits, GenerationStatus, ImageSize, TelegramId};

/// Moves `cost` from available to reserved for generation `generation_id`. Short balance:
/// `Insufficient`, nothing written. The generation row may be inserted later in the same
/// transaction (the journal's reference to it is checked at commit).
pub async fn reserve(
    conn: &mut PgConnection,
    user_id: TelegramId,
    generation_id: Uuid,
    cost: Credits,
) -> Result<Outcome, LedgerError> {
    let refs = Refs { generation_id: Some(generation_id), ..Refs::default() };
    let entry = apply(conn, user_id, Kind::Reserve, cost.get(), &refs).await?;
    Ok(entry.map_or(Outcome::AlreadyDone, Outcome::Applied))
}

/// How a generation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement<'a> {
    /// `succeeded`: the reserved cost is spent. Only once the image is stored.
    Commit,
    /// `succeeded` with a picture smaller than the size bought: `charged` (the price of the
    /// size delivered, at most the cost) is spent and the rest of the reserved cost goes back
    /// to available — in the one settlement row, so a generation still settles exactly once.
    CommitSmaller { charged: Credits, delivered: ImageSize },
    /// `failed`: the reserved cost goes back to available.
    Release { error: &'a str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// This call ended the generation and wrote its settlement.
    Now(Entry),
    /// The generation is not `processing` under `epoch` any more (settled already, or another
    /// holder took it over): nothing changed, and the caller must discard its result.
    Stale,
}

/// Ends generation `generation_id`, held under lease `epoch`, exactly once: one transition out
/// of `processing` fenced by the epoch, and its `commit` or `release` journal row, in one
/// statement.
pub async fn settle(
    conn: &mut PgConnection,
    generation_id: Uuid,
    epoch: i64,
    settlement: Settlement<'_>,
) -> Result<Settled, LedgerError> {
    let (status, error, kind, charged, delivered) = match settlement {
        Settlement::Commit => (GenerationStatus::Succeeded, None, Kind::Commit, None, None),
        Settlement::CommitSmaller { charged, delivered } => {
            (GenerationStatus::Succeeded, None, Kind::Commit, Some(charged.get()), Some(delivered.as_str()))
        }
        Settlement::Release { error } => (GenerationStatus::Failed, Some(error), Kind::Release, None, None),
    };
    let refs = Refs { generation_id: Some(generation_id), ..Refs::default() };
    let query =
        statement(SETTLE, kind, &refs).bind(status).bind(error).bind(epoch).bind(charged).bind(delivered);
    match run(conn, query, kind, &refs).await? {
        Moved::Applied(entry) => Ok(Settled::Now(entry)),
        Moved::NoSource => Ok(Settled::Stale),
        // The fence passed but a settlement row exists: the data disagrees with itself.
        // Refuse, so the caller's transaction (and its status change) rolls back.
        Moved::AlreadyDone => Err(LedgerError::AlreadySettled(generation_id)),
    }
}

/// Why a cancelled generation ended (its `error`).
pub const CANCELLED_ERROR: &str = "cancelled by the user";

/// Cancels generation `generation_id` of `user` if no worker has started it: its status moves
/// `queued` → `failed` and its reserved cost is released, in one statement, exactly once.
/// `Stale` when it had started (the claim won), was settled already (a second press), or is
/// not theirs: nothing changed.
pub async fn cancel(
    conn: &mut PgConnection,
    generation_id: Uuid,
    user: TelegramId,
) -> Result<Settled, LedgerError> {
    let refs = Refs { generation_id: Some(generation_id), ..Refs::default() };
    let query = statement(CANCEL, Kind::Release, &refs).bind(CANCELLED_ERROR).bind(user);
    match run(conn, query, Kind::Release, &refs).await? {
        Moved::Applied(entry) => Ok(Settled::Now(entry)),
        Moved::NoSource => Ok(Settled::Stale),
        Moved::AlreadyDone => Err(LedgerError::AlreadySettled(generation_id)),
    }
}
