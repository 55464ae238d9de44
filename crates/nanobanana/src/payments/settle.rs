//! Settling a YooKassa charge on an answer read from the API — never on a notification body.
//! The payment must name a known YooKassa topup in `metadata.topup_id` and carry exactly its
//! amount and currency. Then, in one transaction: the charge row with the provider's status,
//! and for `succeeded` the credit (once per charge, by the ledger) with the user's message, for
//! `canceled` the topup closed and the user told why (once, by a conditional update).

use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use super::{PaymentError, YooKassa};
use crate::db::payments::{self as db, record_charge, Charge, ChargeStatus, Provider};
use crate::ledger::{self, LedgerError, Outcome};
use crate::outbox;
use crate::texts::{self, Lang};
use crate::yookassa::Payment;

/// Cancellation reasons with their own text; any other is told as "declined".
const KNOWN_REASONS: &[&str] = &[
    "insufficient_funds",
    "expired_on_confirmation",
    "card_expired",
    "3d_secure_failed",
    "fraud_suspected",
    "payment_method_limit_exceeded",
    "general_decline",
];

/// What settling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// This call credited the charge; the user was told.
    Credited { credits: i64, balance: i64 },
    /// Credited before; nothing changed.
    AlreadyCredited,
    /// The provider canceled it; `told` when this call queued the message.
    Canceled { told: bool },
    /// Not final yet.
    Pending,
    /// Not ours or not consistent with our topup: nothing was written.
    Ignored(&'static str),
}

/// Settles the charge on `payment`, an answer read from the API.
pub(super) async fn settle(yk: &YooKassa, payment: &Payment) -> Result<Settled, PaymentError> {
    let span = tracing::info_span!("payment", payment_id = %payment.id, status = %payment.status);
    settle_inner(yk, payment).instrument(span).await
}

async fn settle_inner(yk: &YooKassa, payment: &Payment) -> Result<Settled, PaymentError> {
    let (topup_id, topup, status) = match ours(yk, payment).await? {
        Ok(found) => found,
        Err(why) => return Ok(Settled::Ignored(why)),
    };
    let charge = Charge {
        provider: Provider::YooKassa,
        payment_id: &payment.id,
        topup_id,
        amount_minor: topup.amount_minor,
        status,
        raw_payload: Some(&payment.raw),
    };
    // Guarantee §1.1: the charge row, the credit and the message commit together or not at all.
    let mut tx = yk.pool.begin().await?;
    let charge_id = record_charge(&mut tx, &charge).await?;
    let settled = match status {
        ChargeStatus::Succeeded => match credit(&mut tx, charge_id, topup.user_id).await? {
            Some(settled) => settled,
            None => {
                // Our row holds another final status (canceled): the provider contradicts
                // itself. Nothing is credited; an operator must look, a retry would not help.
                tracing::error!(%topup_id, "YooKassa reports succeeded for a charge recorded canceled");
                return Ok(Settled::Ignored("charge already final with another status"));
            }
        },
        ChargeStatus::Canceled => {
            let told = cancel(&mut tx, topup_id, &topup, payment).await?;
            Settled::Canceled { told }
        }
        ChargeStatus::Pending | ChargeStatus::WaitingForCapture => {
            db::order_pending(&mut tx, topup_id).await?;
            Settled::Pending
        }
    };
    tx.commit().await?;
    if matches!(settled, Settled::Credited { .. } | Settled::Canceled { told: true }) {
        tracing::info!(%topup_id, user_id = topup.user_id, outcome = ?settled, "charge settled");
        if let Some(wake) = &yk.outbox_wake {
            wake.notify_one();
        }
    }
    Ok(settled)
}

/// The order `payment` pays, checked against it (a YooKassa order of ours, the same amount and
/// currency), and the charge status it reports; or why the payment is ignored.
async fn ours(
    yk: &YooKassa,
    payment: &Payment,
) -> Result<Result<(Uuid, db::Order, ChargeStatus), &'static str>, PaymentError> {
    let Some(topup_id) = payment.metadata_str("topup_id").and_then(|t| Uuid::parse_str(t).ok()) else {
        tracing::warn!("payment without our topup_id; ignored");
        return Ok(Err("no topup_id"));
    };
    let topup = db::order(&yk.pool, topup_id).await?;
    let Some(topup) = topup.filter(|t| t.provider == Provider::YooKassa.as_str()) else {
        tracing::warn!(%topup_id, "payment names no YooKassa topup of ours; ignored");
        return Ok(Err("unknown topup"));
    };
    let amount = payment.amount.minor().ok();
    if amount != Some(topup.amount_minor) || payment.amount.currency != topup.currency {
        tracing::warn!(%topup_id, value = %payment.amount.value, currency = %payment.amount.currency,
            expected = topup.amount_minor, "payment amount differs from its topup; ignored");
        return Ok(Err("amount mismatch"));
    }
    let Some(status) = payment.charge_status() else {
        tracing::warn!("unknown payment status; left as it was");
        return Ok(Err("unknown status"));
    };
    Ok(Ok((topup_id, topup, status)))
}

/// Credits the succeeded charge once, telling the user; `None` when the charge is recorded
/// with another final status.
async fn credit(conn: &mut PgConnection, charge_id: i64, user: i64) -> Result<Option<Settled>, PaymentError> {
    match ledger::credit_charge(conn, charge_id).await {
        Err(LedgerError::NotSucceeded(_)) => Ok(None),
        Err(e) => Err(e.into()),
        Ok(Outcome::Applied(entry)) => {
            super::referral::reward(conn, charge_id, &entry).await?;
            let lang = language(conn, user).await?;
            let (credits, balance) = (entry.amount.to_string(), entry.available_after.to_string());
            let text =
                texts::render(lang, "payment_credited", &[("credits", &credits), ("balance", &balance)]);
            outbox::send_text(conn, user, &text, None).await?;
            Ok(Some(Settled::Credited { credits: entry.amount, balance: entry.available_after }))
        }
        Ok(Outcome::AlreadyDone) => Ok(Some(Settled::AlreadyCredited)),
    }
}

/// Closes the order of a canceled payment and tells the user why; whether this did it.
async fn cancel(
    conn: &mut PgConnection,
    topup_id: Uuid,
    topup: &db::Order,
    payment: &Payment,
) -> Result<bool, PaymentError> {
    if !db::cancel_order(conn, topup_id).await? {
        return Ok(false);
    }
    let lang = language(conn, topup.user_id).await?;
    let reason = payment.cancel_reason();
    let key = if KNOWN_REASONS.contains(&reason) {
        format!("payment_reason_{reason}")
    } else {
        "payment_reason_other".to_owned()
    };
    let reason_text = texts::render(lang, &key, &[]);
    let amount =
        crate::domain::Kopecks::from_kopecks(topup.amount_minor).map(|k| k.to_string()).unwrap_or_default();
    let text = texts::render(lang, "payment_canceled", &[("amount", &amount), ("reason", &reason_text)]);
    outbox::send_text(conn, topup.user_id, &text, None).await?;
    Ok(true)
}

async fn language(conn: &mut sqlx::PgConnection, user: i64) -> sqlx::Result<Lang> {
    Ok(crate::db::users::language(conn, user).await?.unwrap_or(Lang::Ru))
}
