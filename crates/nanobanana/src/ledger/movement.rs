//! One credit movement: lock the balance row, write the journal row, update the balance.

use sqlx::PgConnection;
use uuid::Uuid;

use super::LedgerError;
use crate::domain::TelegramId;

/// The journal's row types that the ledger writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Topup,
    Reserve,
    Commit,
    Release,
    Grant,
    Deduct,
    Refund,
    RefundRelease,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Topup => "topup",
            Kind::Reserve => "reserve",
            Kind::Commit => "commit",
            Kind::Release => "release",
            Kind::Grant => "grant",
            Kind::Deduct => "deduct",
            Kind::Refund => "refund",
            Kind::RefundRelease => "refund_release",
        }
    }

    /// (Δ available, Δ reserved) for a movement of `amount`.
    fn deltas(self, amount: i64) -> (i64, i64) {
        match self {
            Kind::Topup | Kind::Grant | Kind::RefundRelease => (amount, 0),
            Kind::Deduct | Kind::Refund => (-amount, 0),
            Kind::Reserve => (-amount, amount),
            Kind::Commit => (0, -amount),
            Kind::Release => (amount, -amount),
        }
    }
}

/// A journal row as this call wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub user_id: TelegramId,
    pub kind: Kind,
    pub amount: i64,
    pub available_after: i64,
    pub reserved_after: i64,
}

/// The user's balance, locked for the rest of the transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Locked {
    pub user_id: TelegramId,
    pub available: i64,
    pub reserved: i64,
}

pub(super) async fn lock(conn: &mut PgConnection, user_id: TelegramId) -> Result<Locked, LedgerError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT credits_available, credits_reserved FROM balances WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (available, reserved) = row.ok_or(LedgerError::UnknownUser(user_id))?;
    Ok(Locked { user_id, available, reserved })
}

/// What a movement refers to; exactly the references its kind requires.
#[derive(Debug, Clone, Default)]
pub(super) struct Refs<'a> {
    pub generation_id: Option<Uuid>,
    pub payment_id: Option<i64>,
    pub refund_id: Option<Uuid>,
    pub idempotency_key: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// Moves `amount` on a locked balance. `None` when the journal already holds this movement
/// (a unique index matched): then nothing was written. A movement that would make the
/// available balance negative fails with `Insufficient`, also writing nothing.
pub(super) async fn apply(
    conn: &mut PgConnection,
    locked: &Locked,
    kind: Kind,
    amount: i64,
    refs: &Refs<'_>,
) -> Result<Option<Entry>, LedgerError> {
    let (d_available, d_reserved) = kind.deltas(amount);
    let available_after = locked.available + d_available;
    let reserved_after = locked.reserved + d_reserved;
    if available_after < 0 {
        return Err(LedgerError::Insufficient { available: locked.available, needed: amount });
    }
    let id: Option<i64> = sqlx::query_scalar(
        "WITH j AS (
             INSERT INTO transactions (user_id, type, amount, delta_available, delta_reserved,
                 balance_after, reserved_after, generation_id, payment_id, refund_id,
                 idempotency_key, actor, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING
             RETURNING id)
         UPDATE balances SET credits_available = $6, credits_reserved = $7, updated_at = now()
         FROM j WHERE balances.user_id = $1
         RETURNING j.id",
    )
    .bind(locked.user_id)
    .bind(kind.as_str())
    .bind(amount)
    .bind(d_available)
    .bind(d_reserved)
    .bind(available_after)
    .bind(reserved_after)
    .bind(refs.generation_id)
    .bind(refs.payment_id)
    .bind(refs.refund_id)
    .bind(refs.idempotency_key)
    .bind(refs.actor)
    .bind(refs.reason)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    tracing::info!(
        user_id = locked.user_id,
        kind = kind.as_str(),
        amount,
        generation_id = ?refs.generation_id,
        payment_id = ?refs.payment_id,
        refund_id = ?refs.refund_id,
        available = available_after,
        reserved = reserved_after,
        "credits moved"
    );
    Ok(Some(Entry { id, user_id: locked.user_id, kind, amount, available_after, reserved_after }))
}
