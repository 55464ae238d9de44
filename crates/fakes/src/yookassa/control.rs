//! The control API of the fake YooKassa under `/_fake/…` (documented in the crate README):
//! pay or cancel a payment as the user would on the checkout page, refund from the
//! "dashboard", arm API faults, set the notification mode, release held notifications, and
//! read payments, requests and notification attempts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::lifecycle::{self, ChangeError};
use super::money::{amount, parse_value};
use super::notify;
use super::state::{ApiFault, NotifyMode, YkState};
use super::validate::NewRefund;

type St = State<Arc<YkState>>;

pub fn router() -> Router<Arc<YkState>> {
    Router::new()
        .route("/payments", get(payments))
        .route("/payments/{id}/succeed", post(succeed))
        .route("/payments/{id}/cancel", post(cancel))
        .route("/payments/{id}/refund", post(dashboard_refund))
        .route("/refunds/mode", post(refund_mode))
        .route("/refunds/{id}/succeed", post(refund_succeed))
        .route("/refunds/{id}/cancel", post(refund_cancel))
        .route("/faults", post(add_fault).delete(clear_faults).get(list_faults))
        .route("/notifications", get(notifications))
        .route("/notifications/mode", post(set_mode).get(get_mode))
        .route("/notifications/release", post(release))
        .route("/requests", get(requests))
}

fn change(result: Result<Value, ChangeError>) -> Response {
    match result {
        Ok(object) => Json(object).into_response(),
        Err(e @ ChangeError::NoSuchPayment(_)) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response()
        }
        Err(e) => (StatusCode::CONFLICT, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn payments(State(s): St) -> Response {
    let list: Vec<Value> = s.lock().payments.values().map(|p| p.object.clone()).collect();
    Json(list).into_response()
}

async fn succeed(State(s): St, Path(id): Path<String>) -> Response {
    change(lifecycle::pay(&s, &id))
}

#[derive(Deserialize)]
struct CancelBody {
    #[serde(default = "default_reason")]
    reason: String,
}

fn default_reason() -> String {
    "insufficient_funds".into()
}

async fn cancel(State(s): St, Path(id): Path<String>, body: Option<Json<CancelBody>>) -> Response {
    let reason = body.map_or_else(default_reason, |b| b.0.reason);
    change(lifecycle::cancel(&s, &id, &reason))
}

#[derive(Deserialize)]
struct RefundMode {
    /// The next this many refunds stay `pending`.
    pending_next: u32,
}

async fn refund_mode(State(s): St, Json(mode): Json<RefundMode>) -> Response {
    s.lock().pending_refunds = mode.pending_next;
    Json(json!({"pending_next": mode.pending_next})).into_response()
}

async fn refund_succeed(State(s): St, Path(id): Path<String>) -> Response {
    change(lifecycle::finish_refund(&s, &id, true, ""))
}

async fn refund_cancel(State(s): St, Path(id): Path<String>, body: Option<Json<CancelBody>>) -> Response {
    let reason = body.map_or_else(|| "general_decline".to_owned(), |b| b.0.reason);
    change(lifecycle::finish_refund(&s, &id, false, &reason))
}

#[derive(Deserialize)]
struct RefundBody {
    /// "50.00"; the whole remaining amount when absent.
    #[serde(default)]
    value: Option<String>,
}

async fn dashboard_refund(State(s): St, Path(id): Path<String>, body: Option<Json<RefundBody>>) -> Response {
    let Some((left, currency)) =
        s.lock().payments.get(&id).map(|p| (p.cents - p.refunded_cents, p.currency.clone()))
    else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": format!("no payment {id}")}))).into_response();
    };
    let cents = match body.and_then(|b| b.0.value) {
        Some(value) => match parse_value(&value) {
            Some(cents) => cents,
            None => return (StatusCode::BAD_REQUEST, Json(json!({"error": "bad value"}))).into_response(),
        },
        None => left,
    };
    let refund = NewRefund {
        payment_id: id,
        cents,
        currency: currency.clone(),
        description: Some("Refund from the dashboard".into()),
    };
    match lifecycle::refund(&s, refund) {
        Ok(object) => Json(object).into_response(),
        Err(e) => {
            (StatusCode::CONFLICT, Json(json!({"error": e.description, "amount": amount(cents, &currency)})))
                .into_response()
        }
    }
}

async fn add_fault(State(s): St, Json(fault): Json<ApiFault>) -> Response {
    s.lock().faults.push(fault);
    Json(json!({"ok": true})).into_response()
}

async fn clear_faults(State(s): St) -> Response {
    s.lock().faults.clear();
    Json(json!({"ok": true})).into_response()
}

async fn list_faults(State(s): St) -> Response {
    Json(s.lock().faults.clone()).into_response()
}

async fn notifications(State(s): St) -> Response {
    let inner = s.lock();
    Json(json!({"held": inner.held.len(), "attempts": inner.notifications})).into_response()
}

async fn set_mode(State(s): St, Json(mode): Json<NotifyMode>) -> Response {
    s.lock().mode = mode.clone();
    Json(mode).into_response()
}

async fn get_mode(State(s): St) -> Response {
    Json(s.lock().mode.clone()).into_response()
}

#[derive(Deserialize, Default)]
struct ReleaseBody {
    #[serde(default)]
    reverse: bool,
}

async fn release(State(s): St, body: Option<Json<ReleaseBody>>) -> Response {
    let reverse = body.map(|b| b.0).unwrap_or_default().reverse;
    s.lock().mode.hold = false;
    let released = notify::release(s.clone(), reverse).await;
    Json(json!({"released": released})).into_response()
}

async fn requests(State(s): St) -> Response {
    Json(s.lock().requests.clone()).into_response()
}
