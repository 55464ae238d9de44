//! One credit movement, in one statement: lock the balance row, write the journal row with
//! the balance after it, update the balance.

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
    /// Credits given, not bought (DESIGN §10): starter, referral, promo, an admin's gift.
    Bonus,
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
            Kind::Bonus => "bonus",
        }
    }

    /// The signs of (Δ available, Δ reserved) for a movement of a positive amount.
    fn signs(self) -> (i64, i64) {
        match self {
            Kind::Topup | Kind::Grant | Kind::RefundRelease | Kind::Bonus => (1, 0),
            Kind::Deduct | Kind::Refund => (-1, 0),
            Kind::Reserve => (-1, 1),
            Kind::Commit => (0, -1),
            Kind::Release => (1, -1),
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

/// Locks the user's balance row for the rest of the transaction; returns what is available.
/// Only for checks that must see no concurrent change before `apply` (which locks by itself).
pub(super) async fn lock(conn: &mut PgConnection, user_id: TelegramId) -> Result<i64, LedgerError> {
    super::lock_balance(conn, user_id).await?.ok_or(LedgerError::UnknownUser(user_id))
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

/// A movement of an amount given by the caller: the ledger's SQL function `ledger_move`
/// (migration `…096_ledger_move`, owned by this module), which the server-side intake paths
/// call too. `$1`–`$9` as `statement` binds them, then the user (`$10`) and amount (`$11`).
static DIRECT: &str = "SELECT * FROM ledger_move($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// The settlement of a generation: `ledger_settle` moves it out of `processing` fenced by its
/// lease epoch and writes its movement (`ledger_move`) in the same call; a stale lease yields
/// no row and moves nothing. After the shared parameters: status (`$10`), error (`$11`), epoch
/// (`$12`), the credits charged when less than the cost (`$13`) and the size delivered (`$14`).
/// The shared `$5`–`$9` are bound but unused: a settlement refers to its generation only.
pub(super) static SETTLE: &str = "SELECT * FROM ledger_settle($1, $2, $3, $4, $10, $11, $12, $13, $14)";

/// The cancel of a generation that has not started (DESIGN §10 "Variants and cancel"):
/// `ledger_cancel` (migration `…151_ledger_cancel`, owned by this module) moves the user's own
/// generation `queued` (never claimed) → `failed` and releases its cost through `ledger_move`
/// in the same call; a claim that took it first, or an earlier cancel, yields no row and moves
/// nothing. After the shared parameters: the error (`$10`) and the user (`$11`).
pub(super) static CANCEL: &str = "SELECT * FROM ledger_cancel($1, $2, $3, $4, $10, $11)";

/// What a movement statement found and did.
pub(super) enum Moved {
    /// The source yielded nothing (a fenced update that matched no row).
    NoSource,
    Applied(Entry),
    /// Nothing written: the journal already holds this movement.
    AlreadyDone,
}

/// Moves `amount` on the user's balance in one statement. `Insufficient` when it would make
/// the available balance negative; `UnknownUser` without a balance row; nothing written then.
pub(super) async fn apply(
    conn: &mut PgConnection,
    user_id: TelegramId,
    kind: Kind,
    amount: i64,
    refs: &Refs<'_>,
) -> Result<Option<Entry>, LedgerError> {
    let query = statement(DIRECT, kind, refs).bind(user_id).bind(amount);
    match run(conn, query, kind, refs).await? {
        Moved::Applied(entry) => Ok(Some(entry)),
        Moved::AlreadyDone => Ok(None),
        Moved::NoSource => Err(LedgerError::UnknownUser(user_id)),
    }
}

type Row = (i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);
pub(super) type Query<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, Row, sqlx::postgres::PgArguments>;

/// The movement statement `sql` with the parameters every movement shares bound (`$1`–`$9`).
pub(super) fn statement<'q>(sql: &'q str, kind: Kind, refs: &Refs<'q>) -> Query<'q> {
    let (sign_available, sign_reserved) = kind.signs();
    sqlx::query_as(sql)
        .bind(kind.as_str())
        .bind(sign_available)
        .bind(sign_reserved)
        .bind(refs.generation_id)
        .bind(refs.payment_id)
        .bind(refs.refund_id)
        .bind(refs.idempotency_key)
        .bind(refs.actor)
        .bind(refs.reason)
}

pub(super) async fn run(
    conn: &mut PgConnection,
    query: Query<'_>,
    kind: Kind,
    refs: &Refs<'_>,
) -> Result<Moved, LedgerError> {
    let Some((user_id, amount, available, id, available_after, reserved_after)) =
        query.fetch_optional(&mut *conn).await?
    else {
        return Ok(Moved::NoSource);
    };
    let Some(available) = available else {
        return Err(LedgerError::UnknownUser(user_id));
    };
    let (Some(id), Some(available_after), Some(reserved_after)) = (id, available_after, reserved_after)
    else {
        if available + kind.signs().0 * amount < 0 {
            return Err(LedgerError::Insufficient { available, needed: amount });
        }
        return Ok(Moved::AlreadyDone);
    };
    tracing::info!(
        user_id,
        kind = kind.as_str(),
        amount,
        generation_id = ?refs.generation_id,
        payment_id = ?refs.payment_id,
        refund_id = ?refs.refund_id,
        available = available_after,
        reserved = reserved_after,
        "credits moved"
    );
    Ok(Moved::Applied(Entry { id, user_id, kind, amount, available_after, reserved_after }))
}
