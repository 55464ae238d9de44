//! A user pressing buttons, blocking the bot, paying invoices, and raw updates.

use std::time::Instant;

use serde_json::{json, Value};

use super::{user_object, ActionError, Sent, UserProfile};
use crate::telegram::methods::unix_now;
use crate::telegram::state::{CallbackQuery, Inner, PaymentRecord, PreCheckout, TgState};

/// Presses an inline button of a bot message; the button must exist.
pub fn press_button(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    message_id: i64,
    data: &str,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    if inner.chat(user_id).is_some_and(|c| c.blocked) {
        set_blocked_locked(state, &mut inner, user_id, profile, false)?;
        state.chats_changed();
    }
    let query_id = format!("{}", 4_000_000_000_000_000_000i64 + inner.serial() as i64);
    let chat = inner.ensure_user(user_object(user_id, profile));
    let message = chat
        .messages
        .get(&message_id)
        .filter(|m| !m.deleted)
        .ok_or(ActionError::NoSuchMessage(user_id, message_id))?;
    if !message.callback_data().iter().any(|d| d == data) {
        return Err(ActionError::NoSuchButton(message_id, data.to_string()));
    }
    let query = json!({"id": query_id, "from": chat.user, "message": message.message,
        "chat_instance": format!("{}", -user_id.abs()), "data": data});
    inner.make_room();
    inner.callback_queries.insert(query_id.clone(), CallbackQuery { chat_id: user_id, answered: false });
    let update_id = inner
        .enqueue("callback_query", user_id, query, state.config.max_pending_updates)
        .ok_or(ActionError::NotQueued)?;
    drop(inner);
    state.updates_changed();
    Ok(Sent { update_id, message_id: Some(message_id), query_id: Some(query_id), file_id: None })
}

/// Blocks (or unblocks) the bot: a `my_chat_member` update, and sends fail with 403 while blocked.
pub fn set_blocked(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    blocked: bool,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let update_id = set_blocked_locked(state, &mut inner, user_id, profile, blocked)?;
    drop(inner);
    state.updates_changed();
    state.chats_changed();
    Ok(Sent { update_id, message_id: None, query_id: None, file_id: None })
}

/// `set_blocked` under the caller's lock: the `my_chat_member` update's id.
pub(super) fn set_blocked_locked(
    state: &TgState,
    inner: &mut Inner,
    user_id: i64,
    profile: &UserProfile,
    blocked: bool,
) -> Result<i64, ActionError> {
    let bot = state.bot_user();
    let chat = inner.ensure_user(user_object(user_id, profile));
    chat.blocked = blocked;
    let (old, new) = if blocked { ("member", "kicked") } else { ("kicked", "member") };
    let mut new_member = json!({"user": bot, "status": new});
    if blocked {
        new_member["until_date"] = json!(0);
    }
    let update = json!({"chat": chat.chat_object(), "from": chat.user, "date": unix_now(),
        "old_chat_member": {"user": bot, "status": old}, "new_chat_member": new_member});
    inner
        .enqueue("my_chat_member", user_id, update, state.config.max_pending_updates)
        .ok_or(ActionError::NotQueued)
}

/// Pays an invoice the bot sent: a `pre_checkout_query`; the bot's ok answer completes it.
pub fn pay_invoice(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    message_id: i64,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let invoice =
        inner.invoices.get(&(user_id, message_id)).cloned().ok_or(ActionError::NotAnInvoice(message_id))?;
    let query_id = format!("{}", 5_000_000_000_000_000_000i64 + inner.serial() as i64);
    let user = inner.ensure_user(user_object(user_id, profile)).user.clone();
    let query = json!({"id": query_id, "from": user, "currency": invoice.currency,
        "total_amount": invoice.total_amount, "invoice_payload": invoice.payload});
    inner.make_room();
    inner.pre_checkouts.insert(
        query_id.clone(),
        PreCheckout {
            user_id,
            currency: invoice.currency.clone(),
            total_amount: invoice.total_amount,
            payload: invoice.payload.clone(),
            created: Instant::now(),
            answered: false,
        },
    );
    inner.payments.push(PaymentRecord {
        pre_checkout_query_id: query_id.clone(),
        user_id,
        currency: invoice.currency,
        total_amount: invoice.total_amount,
        invoice_payload: invoice.payload,
        status: "pending".into(),
        error_message: None,
        telegram_payment_charge_id: None,
    });
    let update_id = inner
        .enqueue("pre_checkout_query", user_id, query, state.config.max_pending_updates)
        .ok_or(ActionError::NotQueued)?;
    drop(inner);
    state.updates_changed();
    Ok(Sent { update_id, message_id: Some(message_id), query_id: Some(query_id), file_id: None })
}

/// Queues a raw update; `update_id` is assigned when missing.
pub fn raw_update(state: &TgState, mut update: Value) -> Result<i64, ActionError> {
    if !update.is_object() {
        return Err(ActionError::Invalid("an update is a JSON object".into()));
    }
    let mut inner = state.lock();
    let update_id = match update.get("update_id").and_then(Value::as_i64) {
        Some(id) => {
            inner.next_update_id = inner.next_update_id.max(id + 1);
            id
        }
        None => {
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(id);
            id
        }
    };
    let chat_key = ["message", "edited_message", "callback_query", "pre_checkout_query", "my_chat_member"]
        .iter()
        .find_map(|k| update.get(*k))
        .and_then(|o| {
            o.get("chat").or_else(|| o.get("from")).and_then(|c| c.get("id")).and_then(Value::as_i64)
        })
        .unwrap_or(0);
    // A pre-checkout query, however it was made, is open until the bot answers it (as in
    // Telegram): tests can send one for any payload or payer and read the answer.
    if let Some(query) = update.get("pre_checkout_query") {
        let text = |k: &str| query.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(user_id) = query.pointer("/from/id").and_then(Value::as_i64) {
            let id = text("id");
            inner.ensure_user(query["from"].clone());
            let pre = PreCheckout {
                user_id,
                currency: text("currency"),
                total_amount: query.get("total_amount").and_then(Value::as_i64).unwrap_or(0),
                payload: text("invoice_payload"),
                created: Instant::now(),
                answered: false,
            };
            inner.payments.push(PaymentRecord {
                pre_checkout_query_id: id.clone(),
                user_id,
                currency: pre.currency.clone(),
                total_amount: pre.total_amount,
                invoice_payload: pre.payload.clone(),
                status: "pending".into(),
                error_message: None,
                telegram_payment_charge_id: None,
            });
            inner.pre_checkouts.insert(id, pre);
        }
    }
    inner.push_raw(update_id, chat_key, update);
    drop(inner);
    state.updates_changed();
    Ok(update_id)
}
