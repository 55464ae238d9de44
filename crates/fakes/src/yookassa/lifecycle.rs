//! Payment and refund state machines: pending → succeeded | waiting_for_capture | canceled,
//! waiting_for_capture → succeeded | canceled; refunds only of succeeded payments and up to
//! what is left. Every status change emits its notification. Shared by the API, the checkout
//! page and the control API.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use super::error::YkError;
use super::money::{amount, format_value};
use super::notify::emit;
use super::state::{Payment, YkState};
use super::validate::{NewPayment, NewRefund};

/// Cancellation reasons YooKassa documents, with the party that cancels for each.
pub const REASONS: [(&str, &str); 18] = [
    ("3d_secure_failed", "payment_network"),
    ("call_issuer", "payment_network"),
    ("canceled_by_merchant", "merchant"),
    ("card_expired", "payment_network"),
    ("country_forbidden", "yoo_money"),
    ("expired_on_capture", "yoo_money"),
    ("expired_on_confirmation", "yoo_money"),
    ("fraud_suspected", "yoo_money"),
    ("general_decline", "payment_network"),
    ("identification_required", "yoo_money"),
    ("insufficient_funds", "payment_network"),
    ("internal_timeout", "yoo_money"),
    ("invalid_card_number", "payment_network"),
    ("invalid_csc", "payment_network"),
    ("issuer_unavailable", "payment_network"),
    ("payment_method_limit_exceeded", "payment_network"),
    ("payment_method_restricted", "payment_network"),
    ("permission_revoked", "yoo_money"),
];

/// Why a status change is impossible (for the checkout page and the control API).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("no payment {0}")]
    NoSuchPayment(String),
    #[error("payment {0} is {1}; this change is not possible")]
    WrongStatus(String, String),
    #[error("unknown cancellation reason {0}")]
    UnknownReason(String),
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Payments and refunds kept at most; beyond, the API answers 429 too_many_requests.
pub const MAX_OBJECTS: usize = 1_000_000;

pub fn create_payment(state: &YkState, new: NewPayment) -> Result<Value, YkError> {
    if state.lock().payments.len() >= MAX_OBJECTS {
        return Err(YkError::too_many());
    }
    let id = format!("{}", uuid::Uuid::new_v4());
    let mut object = json!({
        "id": id, "status": "pending", "paid": false, "amount": amount(new.cents, &new.currency),
        "created_at": now(), "metadata": new.metadata.clone().unwrap_or_default(),
        "recipient": {"account_id": state.config.shop_id, "gateway_id": "1000001"},
        "refundable": false, "test": true,
    });
    if let Some(description) = &new.description {
        object["description"] = json!(description);
    }
    if new.has_receipt {
        object["receipt_registration"] = json!("pending");
    }
    if let Some(mut confirmation) = new.confirmation {
        if confirmation["type"] == "redirect" {
            confirmation["confirmation_url"] = json!(format!("{}/checkout/{id}", state.public_url));
        }
        object["confirmation"] = confirmation;
    }
    let payment = Payment {
        object: object.clone(),
        cents: new.cents,
        currency: new.currency,
        capture: new.capture,
        refunded_cents: 0,
        created: Instant::now(),
    };
    let mut inner = state.lock();
    if let Some(url) = object["confirmation"]["return_url"].as_str() {
        inner.return_urls.insert(id.clone(), url.to_string());
    }
    inner.payments.insert(id, payment);
    drop(inner);
    state.changed();
    Ok(object)
}

pub fn get_payment(state: &YkState, id: &str) -> Result<Value, YkError> {
    let inner = state.lock();
    let payment = inner.payments.get(id).ok_or_else(|| YkError::not_found("Payment", "payment_id"))?;
    Ok(payment.object.clone())
}

/// The user pays: succeeded (capture: true) or waiting_for_capture (capture: false).
pub fn pay(state: &YkState, id: &str) -> Result<Value, ChangeError> {
    let mut inner = state.lock();
    let payment = inner.payments.get_mut(id).ok_or_else(|| ChangeError::NoSuchPayment(id.into()))?;
    if payment.status() != "pending" {
        return Err(ChangeError::WrongStatus(id.into(), payment.status().into()));
    }
    let o = &mut payment.object;
    o["paid"] = json!(true);
    o["payment_method"] = json!({"type": "bank_card", "id": id, "saved": false, "status": "inactive",
        "title": "Bank card *4444", "card": {"first6": "555555", "last4": "4444", "expiry_year": "2030",
        "expiry_month": "12", "card_type": "MasterCard", "issuer_country": "RU"}});
    o["authorization_details"] = json!({"rrn": "603668680243", "auth_code": "000000",
        "three_d_secure": {"applied": false}});
    if let Some(map) = o.as_object_mut() {
        map.remove("confirmation");
    }
    let event = if payment.capture {
        mark_succeeded(payment);
        "payment.succeeded"
    } else {
        let expires = Utc::now() + chrono::Duration::days(7);
        payment.object["status"] = json!("waiting_for_capture");
        payment.object["expires_at"] = json!(expires.to_rfc3339_opts(SecondsFormat::Millis, true));
        "payment.waiting_for_capture"
    };
    let object = payment.object.clone();
    emit(state, &mut inner, event, object.clone());
    drop(inner);
    state.changed();
    Ok(object)
}

fn mark_succeeded(payment: &mut Payment) {
    let fee = payment.cents * 35 / 1000;
    let o = &mut payment.object;
    o["status"] = json!("succeeded");
    o["captured_at"] = json!(now());
    o["income_amount"] = amount(payment.cents - fee, &payment.currency);
    o["refunded_amount"] = amount(0, &payment.currency);
    o["refundable"] = json!(true);
    if o.get("receipt_registration").is_some() {
        o["receipt_registration"] = json!("succeeded");
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("expires_at");
    }
}

/// Captures a waiting_for_capture payment (the API's `/capture`).
pub fn capture(state: &YkState, id: &str) -> Result<Value, YkError> {
    let mut inner = state.lock();
    let payment = inner.payments.get_mut(id).ok_or_else(|| YkError::not_found("Payment", "payment_id"))?;
    match payment.status() {
        "succeeded" => return Ok(payment.object.clone()),
        "waiting_for_capture" => mark_succeeded(payment),
        other => {
            return Err(YkError::invalid(
                format!("Payment has status {other} and can't be captured"),
                "payment_id",
            ))
        }
    }
    let object = payment.object.clone();
    emit(state, &mut inner, "payment.succeeded", object.clone());
    drop(inner);
    state.changed();
    Ok(object)
}

/// Cancels a pending or waiting_for_capture payment with a documented reason.
pub fn cancel(state: &YkState, id: &str, reason: &str) -> Result<Value, ChangeError> {
    let party = REASONS.iter().find(|(r, _)| *r == reason).map(|(_, p)| *p);
    let party = party.ok_or_else(|| ChangeError::UnknownReason(reason.into()))?;
    let mut inner = state.lock();
    let payment = inner.payments.get_mut(id).ok_or_else(|| ChangeError::NoSuchPayment(id.into()))?;
    if !matches!(payment.status(), "pending" | "waiting_for_capture") {
        return Err(ChangeError::WrongStatus(id.into(), payment.status().into()));
    }
    let o = &mut payment.object;
    o["status"] = json!("canceled");
    o["paid"] = json!(false);
    o["cancellation_details"] = json!({"party": party, "reason": reason});
    if o.get("receipt_registration").is_some() {
        o["receipt_registration"] = json!("canceled");
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("confirmation");
        map.remove("expires_at");
    }
    let object = payment.object.clone();
    emit(state, &mut inner, "payment.canceled", object.clone());
    drop(inner);
    state.changed();
    Ok(object)
}

/// Cancels pending payments older than the confirmation deadline.
pub fn expire_overdue(state: &YkState, deadline: Duration) {
    let overdue: Vec<String> = state
        .lock()
        .payments
        .iter()
        .filter(|(_, p)| p.status() == "pending" && p.created.elapsed() >= deadline)
        .map(|(id, _)| id.clone())
        .collect();
    for id in overdue {
        let _ = cancel(state, &id, "expired_on_confirmation");
    }
}

/// Refunds part or all of a succeeded payment; emits `refund.succeeded`.
pub fn refund(state: &YkState, new: NewRefund) -> Result<Value, YkError> {
    let mut inner = state.lock();
    if inner.refunds.len() >= MAX_OBJECTS {
        return Err(YkError::too_many());
    }
    let payment = inner
        .payments
        .get_mut(&new.payment_id)
        .ok_or_else(|| YkError::invalid("Payment doesn't exist or access denied", "payment_id"))?;
    if payment.status() != "succeeded" {
        return Err(YkError::invalid(
            format!("Payment has status {} and can't be refunded", payment.status()),
            "payment_id",
        ));
    }
    if new.currency != payment.currency {
        return Err(YkError::invalid("Invalid amount.currency", "amount.currency"));
    }
    let left = payment.cents - payment.refunded_cents;
    if left == 0 {
        return Err(YkError::invalid("Payment has been refunded in full", "payment_id"));
    }
    if new.cents <= 0 {
        return Err(YkError::invalid("Invalid amount.value", "amount.value"));
    }
    if new.cents > left {
        return Err(YkError::invalid(
            format!("Refund amount exceeds the amount available for refund ({})", format_value(left)),
            "amount.value",
        ));
    }
    payment.refunded_cents += new.cents;
    payment.object["refunded_amount"] = amount(payment.refunded_cents, &payment.currency);
    payment.object["refundable"] = json!(payment.refunded_cents < payment.cents);
    let id = format!("{}", uuid::Uuid::new_v4());
    let hold = inner.pending_refunds > 0;
    let status = if hold { "pending" } else { "succeeded" };
    let mut refund = json!({"id": id, "payment_id": new.payment_id, "status": status,
        "created_at": now(), "amount": amount(new.cents, &new.currency)});
    if let Some(description) = new.description {
        refund["description"] = json!(description);
    }
    inner.refunds.insert(id, refund.clone());
    if hold {
        inner.pending_refunds -= 1;
    } else {
        emit(state, &mut inner, "refund.succeeded", refund.clone());
    }
    drop(inner);
    state.changed();
    Ok(refund)
}

/// Finishes a `pending` refund: `succeeded` (with its `refund.succeeded` notification), or
/// `canceled` with `cancellation_details` and the amount refundable again (no notification, as
/// YooKassa sends none for a canceled refund).
pub fn finish_refund(state: &YkState, id: &str, succeed: bool, reason: &str) -> Result<Value, ChangeError> {
    let mut inner = state.lock();
    let refund = inner.refunds.get(id).cloned().ok_or_else(|| ChangeError::NoSuchPayment(id.into()))?;
    let status = refund["status"].as_str().unwrap_or("");
    if status != "pending" {
        return Err(ChangeError::WrongStatus(id.into(), status.into()));
    }
    let mut refund = refund;
    if succeed {
        refund["status"] = json!("succeeded");
        inner.refunds.insert(id.to_owned(), refund.clone());
        emit(state, &mut inner, "refund.succeeded", refund.clone());
    } else {
        refund["status"] = json!("canceled");
        refund["cancellation_details"] = json!({"party": "yoo_money", "reason": reason});
        let cents = refund["amount"]["value"].as_str().and_then(super::money::parse_value);
        let payment_id = refund["payment_id"].as_str().unwrap_or("").to_owned();
        if let (Some(cents), Some(payment)) = (cents, inner.payments.get_mut(&payment_id)) {
            payment.refunded_cents -= cents;
            payment.object["refunded_amount"] = amount(payment.refunded_cents, &payment.currency);
            payment.object["refundable"] = json!(true);
        }
        inner.refunds.insert(id.to_owned(), refund.clone());
    }
    drop(inner);
    state.changed();
    Ok(refund)
}

pub fn list_refunds(state: &YkState, payment_id: Option<&str>) -> Value {
    let inner = state.lock();
    let items: Vec<Value> = inner
        .refunds
        .values()
        .filter(|r| payment_id.is_none_or(|p| r["payment_id"].as_str() == Some(p)))
        .cloned()
        .collect();
    json!({ "type": "list", "items": items })
}

pub fn get_refund(state: &YkState, id: &str) -> Result<Value, YkError> {
    state.lock().refunds.get(id).cloned().ok_or_else(|| YkError::not_found("Refund", "refund_id"))
}
