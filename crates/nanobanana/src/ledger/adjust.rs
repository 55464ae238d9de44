//! Operator adjustments: grant or deduct credits with a reason, an actor and an
//! idempotency key, so a repeated command never moves credits twice.

use sqlx::{Connection, PgConnection};

use super::movement::{apply, Kind, Refs};
use super::{LedgerError, Outcome};
use crate::domain::{Credits, TelegramId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Grant,
    Deduct,
}

impl Direction {
    fn kind(self) -> Kind {
        match self {
            Direction::Grant => Kind::Grant,
            Direction::Deduct => Kind::Deduct,
        }
    }
}

/// Why credits were adjusted: 1–500 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("a reason is required")]
    Empty,
    #[error("the reason is longer than 500 characters")]
    TooLong,
}

impl Reason {
    pub fn parse(text: &str) -> Result<Self, ReasonError> {
        let text = text.trim();
        if text.is_empty() {
            Err(ReasonError::Empty)
        } else if text.chars().count() > 500 {
            Err(ReasonError::TooLong)
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// A reason written in the code (valid by construction: short and not blank).
    pub(crate) fn fixed(text: &'static str) -> Self {
        debug_assert!(Self::parse(text).is_ok(), "{text:?}");
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct Adjustment<'a> {
    pub user_id: TelegramId,
    pub direction: Direction,
    pub credits: Credits,
    pub reason: &'a Reason,
    /// Who did it: `cli:<login>` or `telegram:<admin id>`.
    pub actor: &'a str,
    /// The same key with the same adjustment is `AlreadyDone`; with another, `KeyReused`.
    pub idempotency_key: &'a str,
}

/// Grants or deducts credits from the available balance. A deduct beyond it is
/// `Insufficient`; an unknown user is `UnknownUser`; in both cases nothing is written.
pub async fn adjust(conn: &mut PgConnection, adjustment: &Adjustment<'_>) -> Result<Outcome, LedgerError> {
    let kind = adjustment.direction.kind();
    let refs = Refs {
        idempotency_key: Some(adjustment.idempotency_key),
        actor: Some(adjustment.actor),
        reason: Some(adjustment.reason.as_str()),
        ..Refs::default()
    };
    // A repeat is recognised before the balance check, so repeating a deduct that already
    // happened is `AlreadyDone` even if the balance has fallen since.
    if earlier(conn, adjustment).await?.is_none() {
        if let Some(entry) = apply(conn, adjustment.user_id, kind, adjustment.credits.get(), &refs).await? {
            return Ok(Outcome::Applied(entry));
        }
    }
    // The key is taken (found above, or by a concurrent call the unique index caught).
    match earlier(conn, adjustment).await? {
        Some(row) if row == (adjustment.user_id, kind.as_str().to_owned(), adjustment.credits.get()) => {
            Ok(Outcome::AlreadyDone)
        }
        _ => Err(LedgerError::KeyReused(adjustment.idempotency_key.to_owned())),
    }
}

/// What an adjustment made in a transaction of its own did (the operator's shell, the
/// sandbox): `applied` with the journal row, or nothing because the key was used before.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Adjusted {
    pub applied: bool,
    pub entry: Option<super::Entry>,
}

/// `adjust` in a transaction of its own, committed: for callers that change nothing else.
pub async fn adjust_alone(conn: &mut PgConnection, adjustment: &Adjustment<'_>) -> Result<Adjusted, LedgerError> {
    let mut tx = conn.begin().await?;
    let outcome = adjust(&mut tx, adjustment).await?;
    tx.commit().await?;
    Ok(match outcome {
        Outcome::Applied(entry) => Adjusted { applied: true, entry: Some(entry) },
        Outcome::AlreadyDone => Adjusted { applied: false, entry: None },
    })
}

/// The adjustment already written under this key: (user, type, amount).
async fn earlier(
    conn: &mut PgConnection,
    adjustment: &Adjustment<'_>,
) -> Result<Option<(i64, String, i64)>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT user_id, type, amount FROM transactions
         WHERE idempotency_key = $1 AND type IN ('grant', 'deduct', 'bonus')",
    )
    .bind(adjustment.idempotency_key)
    .fetch_optional(&mut *conn)
    .await?)
}
