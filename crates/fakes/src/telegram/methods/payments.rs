//! sendInvoice, answerPreCheckoutQuery and refundStarPayment. Owns the Stars payment flow of the
//! fake: a user's payment is a `pre_checkout_query`; only an ok answer within the deadline
//! produces the `successful_payment` message; a refund produces a `refunded_payment` message.

use std::time::Instant;

use serde_json::{json, Value};

use super::send::{new_message, record_message};
use super::{before_send, chat_id, unix_now};
use crate::telegram::error::{TgError, TgResult};
use crate::telegram::params::Params;
use crate::telegram::state::{Invoice, TgState};

pub fn send_invoice(state: &TgState, p: &Params) -> TgResult {
    let chat_id = chat_id(p)?;
    let title = p.str("title").unwrap_or_default();
    let description = p.str("description").unwrap_or_default();
    let payload = p.str("payload").unwrap_or_default();
    let currency = p.str("currency").unwrap_or_default();
    let provider_token = p.str("provider_token").unwrap_or_default();
    if !(1..=32).contains(&title.chars().count()) {
        return Err(TgError::bad_request("INVOICE_TITLE_INVALID"));
    }
    if !(1..=255).contains(&description.chars().count()) {
        return Err(TgError::bad_request("INVOICE_DESCRIPTION_INVALID"));
    }
    if !(1..=128).contains(&payload.len()) {
        return Err(TgError::bad_request("INVOICE_PAYLOAD_INVALID"));
    }
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(TgError::bad_request("CURRENCY_INVALID"));
    }
    let stars = currency == "XTR";
    if stars != provider_token.is_empty() {
        return Err(TgError::bad_request("PAYMENT_PROVIDER_INVALID"));
    }
    let prices = p.json("prices")?.and_then(|v| v.as_array().cloned()).unwrap_or_default();
    if prices.is_empty() || (stars && prices.len() != 1) {
        return Err(TgError::bad_request("CURRENCY_TOTAL_AMOUNT_INVALID"));
    }
    let mut total: i64 = 0;
    for price in &prices {
        let amount = price
            .get("amount")
            .and_then(Value::as_i64)
            .ok_or_else(|| TgError::bad_request("can't parse prices JSON object"))?;
        total = total.saturating_add(amount);
    }
    if total <= 0 {
        return Err(TgError::bad_request("CURRENCY_TOTAL_AMOUNT_INVALID"));
    }
    let start_parameter = p.str("start_parameter").unwrap_or_default();
    let markup = crate::telegram::markup::check_reply_markup(p.json("reply_markup")?)?;
    let mut inner = state.lock();
    before_send(&mut inner, chat_id, 1)?;
    let invoice = json!({"title": title, "description": description, "start_parameter": start_parameter,
        "currency": currency, "total_amount": total});
    let message = new_message(state, &mut inner, chat_id, |m| {
        m["invoice"] = invoice;
        if let Some(markup) = &markup {
            m["reply_markup"] = markup.clone();
        }
    })?;
    let message_id = message["message_id"].as_i64().unwrap_or(0);
    inner.make_room();
    let invoice = Invoice { currency, total_amount: total, payload: payload.clone() };
    inner.invoices.insert((chat_id, message_id), invoice);
    let record = record_message(&mut inner, chat_id, "invoice", message.clone(), None, "sendInvoice");
    if let Some(sent) = inner.chat(chat_id).and_then(|c| c.messages.get_mut(&message_id)) {
        sent.invoice_payload = Some(payload);
    }
    drop(inner);
    state.chats_changed();
    Ok(record.unwrap_or(message))
}

pub fn answer_pre_checkout_query(state: &TgState, p: &Params) -> TgResult {
    let id = p.str("pre_checkout_query_id").unwrap_or_default();
    if !p.has("ok") {
        return Err(TgError::bad_request("parameter \"ok\" is required"));
    }
    let ok = p.bool("ok");
    let error_message = p.str("error_message").filter(|m| !m.is_empty());
    if !ok && error_message.is_none() {
        return Err(TgError::bad_request("ERROR_MESSAGE_EMPTY"));
    }
    let timeout = state.config.pre_checkout_timeout;
    let mut inner = state.lock();
    let query =
        inner.pre_checkouts.get_mut(&id).filter(|q| !q.answered).ok_or_else(TgError::query_too_old)?;
    query.answered = true;
    let query = query.clone();
    let expired = query.created.elapsed() > timeout;
    let Some(payment) = inner.payments.iter_mut().find(|pay| pay.pre_checkout_query_id == id) else {
        return Err(TgError::query_too_old());
    };
    if expired {
        payment.status = "expired".into();
        return Err(TgError::query_too_old());
    }
    let mut successful = None;
    if ok {
        let charge = format!("stxFAKE{}", uuid::Uuid::new_v4().simple());
        payment.status = "paid".into();
        payment.telegram_payment_charge_id = Some(charge.clone());
        successful = Some(json!({"currency": query.currency, "total_amount": query.total_amount,
            "invoice_payload": query.payload, "telegram_payment_charge_id": charge,
            "provider_payment_charge_id": format!("{}_{}", query.user_id, unix_now())}));
    } else {
        payment.status = "rejected".into();
        payment.error_message = error_message.clone();
    }
    if let Some(chat) = inner.chat(query.user_id) {
        chat.push_event(
            "answerPreCheckoutQuery",
            json!({"pre_checkout_query_id": id, "ok": ok, "error_message": error_message}),
        );
    }
    if let Some(successful) = successful {
        user_service_message(state, &mut inner, query.user_id, "successful_payment", successful);
    }
    drop(inner);
    state.updates_changed();
    state.chats_changed();
    Ok(json!(true))
}

/// Queues a message from the user carrying a service field such as `successful_payment`.
fn user_service_message(
    state: &TgState,
    inner: &mut crate::telegram::state::Inner,
    user_id: i64,
    field: &str,
    value: Value,
) {
    let Some(chat) = inner.chat(user_id) else {
        return;
    };
    let message_id = chat.take_message_id();
    let message = json!({"message_id": message_id, "from": chat.user, "chat": chat.chat_object(),
        "date": unix_now(), field: value});
    chat.user_messages.insert(message_id, message.clone());
    inner.enqueue("message", user_id, message, state.config.max_pending_updates);
}

pub fn refund_star_payment(state: &TgState, p: &Params) -> TgResult {
    let user_id = p.i64("user_id")?.ok_or_else(|| TgError::bad_request("user_id is empty"))?;
    let charge = p.str("telegram_payment_charge_id").unwrap_or_default();
    let mut inner = state.lock();
    let payment = inner
        .payments
        .iter_mut()
        .find(|pay| {
            pay.user_id == user_id && pay.telegram_payment_charge_id.as_deref() == Some(charge.as_str())
        })
        .ok_or_else(|| TgError::bad_request("CHARGE_NOT_FOUND"))?;
    if payment.status == "refunded" {
        return Err(TgError::bad_request("CHARGE_ALREADY_REFUNDED"));
    }
    payment.status = "refunded".into();
    let refunded = json!({"currency": payment.currency, "total_amount": payment.total_amount,
        "invoice_payload": payment.invoice_payload, "telegram_payment_charge_id": charge});
    if let Some(chat) = inner.chat(user_id) {
        chat.push_event("refundStarPayment", json!({"telegram_payment_charge_id": charge}));
    }
    user_service_message(state, &mut inner, user_id, "refunded_payment", refunded);
    drop(inner);
    state.updates_changed();
    state.chats_changed();
    Ok(json!(true))
}

/// The bot's Stars transactions, oldest first: each paid charge as an incoming one (`source`),
/// and each refund as an outgoing one (`receiver`) with the same id, the charge's
/// `telegram_payment_charge_id`. `offset` and `limit` (1–100, default 100) page through them.
pub fn get_star_transactions(state: &TgState, p: &Params) -> TgResult {
    let offset = p.i64("offset")?.unwrap_or(0).max(0) as usize;
    let limit = p.i64("limit")?.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(TgError::bad_request("limit must be between 1 and 100"));
    }
    let inner = state.lock();
    let date = unix_now();
    let mut transactions = Vec::new();
    for payment in inner.payments.iter().filter(|p| matches!(p.status.as_str(), "paid" | "refunded")) {
        let Some(id) = payment.telegram_payment_charge_id.as_deref() else { continue };
        let partner =
            json!({"type": "user", "user": {"id": payment.user_id, "is_bot": false, "first_name": "User"}});
        transactions.push(json!({"id": id, "amount": payment.total_amount, "date": date, "source": partner}));
        if payment.status == "refunded" {
            transactions
                .push(json!({"id": id, "amount": payment.total_amount, "date": date, "receiver": partner}));
        }
    }
    let page: Vec<_> = transactions.into_iter().skip(offset).take(limit as usize).collect();
    Ok(json!({ "transactions": page }))
}

/// Marks payments whose query was not answered in time.
pub fn expire_payments(state: &TgState) {
    let timeout = state.config.pre_checkout_timeout;
    let now = Instant::now();
    let mut inner = state.lock();
    let expired: Vec<String> = inner
        .pre_checkouts
        .iter()
        .filter(|(_, q)| !q.answered && now.duration_since(q.created) > timeout)
        .map(|(id, _)| id.clone())
        .collect();
    for payment in inner.payments.iter_mut().filter(|pay| expired.contains(&pay.pre_checkout_query_id)) {
        if payment.status == "pending" {
            payment.status = "expired".into();
        }
    }
}
