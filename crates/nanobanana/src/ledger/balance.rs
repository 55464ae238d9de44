//! Reading a user's balance row (`balances`, owned by the ledger): as it is, or locked for
//! checks that must see no concurrent change (caps, a short balance) before a movement.

use sqlx::PgConnection;

use crate::domain::TelegramId;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Balance {
    pub credits_available: i64,
    pub credits_reserved: i64,
    /// The bonus part of `credits_available` (spent first, never refunded as money).
    pub bonus_available: i64,
    /// The bonus part of `credits_reserved`.
    pub bonus_reserved: i64,
}

/// The user's balance, or `None` for an unknown user.
pub async fn balance(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<Balance>> {
    sqlx::query_as("SELECT credits_available, credits_reserved, bonus_available, bonus_reserved FROM balances WHERE user_id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await
}

/// Locks the user's balance row for the rest of the transaction: checks made under it (caps,
/// balance) cannot be raced by the user's other requests. The available credits.
pub async fn lock_balance(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT credits_available FROM balances WHERE user_id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(conn)
        .await
}
