//! Refunds in two phases: hold the credits, call the provider, then commit or release.

use sqlx::PgConnection;
use uuid::Uuid;

use super::movement::{apply, lock, Kind, Refs};
use super::{LedgerError, Outcome};
use crate::domain::Credits;

#[derive(Debug, Clone)]
pub struct RefundHold<'a> {
    /// Also the provider's idempotence key, so chosen before the hold.
    pub refund_id: Uuid,
    /// Our `payments.id` of the charge being refunded.
    pub payment_id: i64,
    pub credits: Credits,
    /// Money to return, in the charge's smallest unit.
    pub amount_minor: i64,
    pub reason: Option<&'a str>,
}

/// Phase one: takes `credits` out of the available balance into refund `refund_id` (`held`).
/// Only available paid credits can be held (`Insufficient` otherwise; bonus credits are never
/// refunded), and never more than the
/// charge's credits not already refunded or held. Repeating the same refund id: `AlreadyDone`.
pub async fn refund_hold(conn: &mut PgConnection, hold: &RefundHold<'_>) -> Result<Outcome, LedgerError> {
    let row: Option<(i64, i64, String)> =
        sqlx::query_as("SELECT user_id, credits, status FROM payments WHERE id = $1")
            .bind(hold.payment_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (user_id, charge_credits, status) = row.ok_or(LedgerError::UnknownPayment(hold.payment_id))?;
    if status != "succeeded" {
        return Err(LedgerError::NotSucceeded(hold.payment_id));
    }
    // The balance lock serializes this user's refunds, so the sum below cannot go stale. Only
    // paid credits can be refunded: bonus credits are never returned as money (DESIGN §10).
    lock(conn, user_id).await?;
    let available =
        super::balance(conn, user_id).await?.map_or(0, |b| b.credits_available - b.bonus_available);
    let already: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM refunds WHERE id = $1)")
        .bind(hold.refund_id)
        .fetch_one(&mut *conn)
        .await?;
    if already {
        return Ok(Outcome::AlreadyDone);
    }
    let refunded: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(credits), 0)::BIGINT FROM refunds WHERE payment_id = $1 AND status <> 'failed'",
    )
    .bind(hold.payment_id)
    .fetch_one(&mut *conn)
    .await?;
    let refundable = charge_credits - refunded;
    if hold.credits.get() > refundable {
        return Err(LedgerError::ExceedsCharge {
            payment_id: hold.payment_id,
            requested: hold.credits.get(),
            refundable,
        });
    }
    if hold.credits.get() > available {
        return Err(LedgerError::Insufficient { available, needed: hold.credits.get() });
    }
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, user_id, credits, amount_minor, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hold.refund_id)
    .bind(hold.payment_id)
    .bind(user_id)
    .bind(hold.credits.get())
    .bind(hold.amount_minor)
    .bind(hold.reason)
    .execute(&mut *conn)
    .await?;
    let refs = Refs { refund_id: Some(hold.refund_id), ..Refs::default() };
    let entry = apply(conn, user_id, Kind::Refund, hold.credits.get(), &refs).await?;
    Ok(entry.map_or(Outcome::AlreadyDone, Outcome::Applied))
}

/// Phase two, success: the provider returned the money; the held credits stay gone.
/// `true` if this call finished it, `false` if it was already finished either way.
pub async fn refund_commit(
    conn: &mut PgConnection,
    refund_id: Uuid,
    provider_refund_id: Option<&str>,
) -> Result<bool, LedgerError> {
    let done = sqlx::query(
        "UPDATE refunds SET status = 'succeeded', provider_refund_id = COALESCE($2, provider_refund_id),
                            updated_at = now()
         WHERE id = $1 AND status = 'held'",
    )
    .bind(refund_id)
    .bind(provider_refund_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if done == 1 {
        tracing::info!(%refund_id, "refund committed");
        take_back_referral(conn, refund_id).await?;
        return Ok(true);
    }
    ensure_exists(conn, refund_id).await?;
    Ok(false)
}

/// Phase two, failure: the provider did not refund; the held credits return to available.
pub async fn refund_release(conn: &mut PgConnection, refund_id: Uuid) -> Result<Outcome, LedgerError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE refunds SET status = 'failed', updated_at = now()
         WHERE id = $1 AND status = 'held' RETURNING user_id, credits",
    )
    .bind(refund_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user_id, credits)) = row else {
        ensure_exists(conn, refund_id).await?;
        return Ok(Outcome::AlreadyDone);
    };
    let refs = Refs { refund_id: Some(refund_id), ..Refs::default() };
    let entry = apply(conn, user_id, Kind::RefundRelease, credits, &refs).await?;
    Ok(entry.map_or(Outcome::AlreadyDone, Outcome::Applied))
}

/// The provider's id of a refund still held (its outcome unknown), once it is known.
pub async fn refund_provider_id(
    conn: &mut PgConnection,
    refund_id: Uuid,
    provider_refund_id: Option<&str>,
) -> Result<(), LedgerError> {
    sqlx::query(
        "UPDATE refunds SET provider_refund_id = COALESCE($2, provider_refund_id), updated_at = now()
         WHERE id = $1",
    )
    .bind(refund_id)
    .bind(provider_refund_id)
    .execute(conn)
    .await?;
    Ok(())
}

async fn ensure_exists(conn: &mut PgConnection, refund_id: Uuid) -> Result<(), LedgerError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM refunds WHERE id = $1)")
        .bind(refund_id)
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        Ok(())
    } else {
        Err(LedgerError::UnknownRefund(refund_id))
    }
}

/// The refund of a friend's charge takes back the referral reward that charge earned its
/// referrer (the bonus row keyed `referral:<payment>`), as far as it is unspent; once per
/// charge, whatever number of refunds it has.
async fn take_back_referral(conn: &mut PgConnection, refund_id: Uuid) -> Result<(), LedgerError> {
    let reward: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT t.user_id, t.amount, r.payment_id FROM refunds r
         JOIN transactions t ON t.idempotency_key = 'referral:' || r.payment_id AND t.type = 'bonus'
         WHERE r.id = $1",
    )
    .bind(refund_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((referrer, amount, payment_id)) = reward else {
        return Ok(());
    };
    let key = format!("referral-back:{payment_id}");
    let reason = format!("payment {payment_id} refunded");
    let taken =
        super::take_back_bonus(conn, referrer, amount, super::BonusSource::Referral, &key, &reason).await?;
    tracing::info!(referrer, payment_id, reward = amount, taken, "referral reward taken back");
    Ok(())
}
