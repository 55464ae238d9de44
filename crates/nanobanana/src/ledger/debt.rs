//! Debt left by a refund made outside the bot (DESIGN §4 "Refunds"): the credits it takes back
//! that were already spent. While a user owes anything, no generation starts; each request
//! first repays what the available balance allows, as a `deduct` through the ledger keyed
//! `debt:<user>:<n>` (n counts the repayments), so a repeat cannot take twice.

use sqlx::PgConnection;

use crate::domain::{Credits, TelegramId};
use crate::ledger::{self, Adjustment, Direction, LedgerError, Reason};

/// Adds `credits` to what `user` owes. Inside the caller's transaction.
pub async fn add(conn: &mut PgConnection, user: TelegramId, credits: i64) -> sqlx::Result<()> {
    if credits <= 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO credit_debts (user_id, owed) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET owed = credit_debts.owed + EXCLUDED.owed, updated_at = now()",
    )
    .bind(user)
    .bind(credits)
    .execute(conn)
    .await?;
    tracing::warn!(user, credits, "credits owed after a refund made outside the bot");
    Ok(())
}

/// Repays from the available balance as much as it covers; returns what is still owed
/// (0: nothing blocks). Inside the caller's transaction, holding the debt row's lock.
pub async fn repay(conn: &mut PgConnection, user: TelegramId) -> Result<i64, LedgerError> {
    let owed: Option<i64> =
        sqlx::query_scalar("SELECT owed FROM credit_debts WHERE user_id = $1 AND owed > 0 FOR UPDATE")
            .bind(user)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(owed) = owed else {
        return Ok(0);
    };
    let available = ledger::lock_balance(conn, user).await?.unwrap_or(0);
    let paid = owed.min(available);
    let Ok(credits) = Credits::new(paid) else {
        return Ok(owed);
    };
    let n: i64 = sqlx::query_scalar(
        "UPDATE credit_debts SET owed = owed - $2, repayments = repayments + 1, updated_at = now()
         WHERE user_id = $1 RETURNING repayments",
    )
    .bind(user)
    .bind(paid)
    .fetch_one(&mut *conn)
    .await?;
    let key = format!("debt:{user}:{n}");
    let reason = Reason::fixed("debt repayment after a refund made outside the bot");
    let adjustment = Adjustment {
        user_id: user,
        direction: Direction::Deduct,
        credits,
        reason: &reason,
        actor: "payments:debt",
        idempotency_key: &key,
    };
    ledger::adjust(conn, &adjustment).await?;
    tracing::info!(user, paid, still_owed = owed - paid, "debt repaid from the balance");
    Ok(owed - paid)
}
