//! Telegram Stars (DESIGN §4 "Telegram Stars"): the invoice (XTR, payload = topup id,
//! `start_parameter` set), the pre-checkout check (a known Stars topup of the same user for
//! the same amount) and the credit on `successful_payment`, once per
//! `telegram_payment_charge_id` — a second charge of one topup is credited too. Everything
//! runs inside the update's transaction; the pre-checkout answer is sent by the caller.

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::config::Pack;
use crate::db::payments::{self as db, Charge, ChargeStatus, NewTopup, Provider};
use crate::domain::TelegramId;
use crate::ledger::{self, LedgerError, Outcome};
use crate::outbox;
use crate::telegram::update::Payment;
use crate::texts::{render, Lang};

/// The invoice's deep-link parameter: a forwarded invoice opens the bot instead of paying.
pub const START_PARAMETER: &str = "buy";

/// Appends a Stars event (pre-checkout, successful payment) to the audit trail.
pub async fn record_event(
    conn: &mut PgConnection,
    event: &str,
    object_id: Option<&str>,
    payload: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO payment_events (provider, source, event, object_id, payload)
         VALUES ('stars', 'notification', $1, $2, $3)",
    )
    .bind(event)
    .bind(object_id)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// The order for `pack` keyed to the update, and its invoice queued in the outbox.
pub async fn send_invoice(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    chat: i64,
    pack: &Pack,
    source_key: &str,
) -> sqlx::Result<Uuid> {
    let topup = NewTopup::for_pack(user, Provider::Stars, pack, source_key);
    let topup_id = db::create_topup(conn, &topup).await?;
    let credits = pack.credits.to_string();
    let title = render(lang, "buy_invoice_title", &[("credits", &credits)]);
    let params = json!({
        "chat_id": chat,
        "title": title,
        "description": render(lang, "buy_invoice_description", &[("credits", &credits)]),
        "payload": topup_id.to_string(),
        "provider_token": "",
        "currency": "XTR",
        "prices": [{"label": title, "amount": pack.price}],
        "start_parameter": START_PARAMETER,
    });
    outbox::enqueue(conn, chat, "sendInvoice", params).await?;
    tracing::info!(%topup_id, user, stars = pack.price, "Stars invoice queued");
    Ok(topup_id)
}

async fn topup(conn: &mut PgConnection, payload: &str) -> sqlx::Result<Option<db::Order>> {
    let Ok(id) = Uuid::parse_str(payload) else {
        return Ok(None);
    };
    db::order(conn, id).await
}

/// The pre-checkout check, recorded in the audit trail: `None` when the payment may go ahead,
/// otherwise the reason to show.
pub async fn pre_checkout(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    query_id: &str,
    payment: &Payment,
) -> sqlx::Result<Option<String>> {
    let raw = json!({"id": query_id, "user": user, "currency": payment.currency,
        "total_amount": payment.total_amount, "invoice_payload": payment.payload});
    record_event(conn, "pre_checkout_query", Some(query_id), &raw).await?;
    let refusal = pre_checkout_refusal(conn, user, payment).await?;
    if let Some(key) = refusal {
        tracing::warn!(user, query_id, payload = %payment.payload, key, "pre-checkout declined");
    }
    Ok(refusal.map(|key| render(lang, key, &[])))
}

/// The pre-checkout decision alone, read-only (a redelivered query is answered again with
/// it, recording nothing): `None` to go ahead, otherwise the text key of the refusal.
pub async fn pre_checkout_refusal(
    conn: &mut PgConnection,
    user: TelegramId,
    payment: &Payment,
) -> sqlx::Result<Option<&'static str>> {
    Ok(match topup(conn, &payment.payload).await? {
        None => Some("buy_precheckout_unknown"),
        Some(t) if t.provider != Provider::Stars.as_str() || t.user_id != user => {
            Some("buy_precheckout_unknown")
        }
        Some(t) if t.currency != payment.currency || t.amount_minor != payment.total_amount => {
            Some("buy_precheckout_changed")
        }
        Some(t) if t.status == "canceled" => Some("buy_precheckout_unknown"),
        Some(_) => None,
    })
}

/// Credits a `successful_payment` once per charge, with the user's message.
pub async fn paid(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    chat: i64,
    payment: &Payment,
) -> Result<(), LedgerError> {
    let raw = json!({"user": user, "currency": payment.currency, "total_amount": payment.total_amount,
        "invoice_payload": payment.payload, "telegram_payment_charge_id": payment.charge_id});
    record_event(conn, "successful_payment", Some(&payment.charge_id), &raw).await?;
    let topup = topup(conn, &payment.payload).await?;
    let valid = topup.as_ref().is_some_and(|t| {
        t.provider == Provider::Stars.as_str()
            && t.user_id == user
            && t.currency == payment.currency
            && t.amount_minor == payment.total_amount
    });
    let (Some(topup), true, false) = (topup, valid, payment.charge_id.is_empty()) else {
        // Telegram took the Stars, but not for an order we know: an operator must look.
        tracing::error!(user, payload = %payment.payload, charge = %payment.charge_id,
            "successful_payment that matches no Stars order; not credited");
        outbox::send_text(conn, chat, &render(lang, "buy_paid_unknown", &[]), None).await?;
        return Ok(());
    };
    let charge = Charge {
        provider: Provider::Stars,
        payment_id: &payment.charge_id,
        topup_id: topup.id,
        amount_minor: payment.total_amount,
        status: ChargeStatus::Succeeded,
        raw_payload: Some(&raw),
    };
    let payment_row = db::record_charge(conn, &charge).await?;
    match ledger::credit_charge(conn, payment_row).await? {
        Outcome::Applied(entry) => {
            super::referral::reward(conn, payment_row, &entry).await?;
            let text = render(
                lang,
                "payment_credited",
                &[("credits", &entry.amount.to_string()), ("balance", &entry.available_after.to_string())],
            );
            outbox::send_text(conn, chat, &text, None).await?;
            tracing::info!(topup_id = %topup.id, user, charge = %payment.charge_id, credits = entry.amount,
                balance = entry.available_after, "Stars payment credited");
        }
        Outcome::AlreadyDone => {
            tracing::info!(charge = %payment.charge_id, "Stars payment already credited");
        }
    }
    Ok(())
}
