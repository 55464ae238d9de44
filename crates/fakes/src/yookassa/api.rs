//! The YooKassa API v3 surface: `/v3/payments`, `/v3/refunds`. Owns Basic auth, the
//! Idempotence-Key rules (required on POST, ≤ 64 chars, same key + same body → the same answer,
//! same key + other body → 400, remembered for the configured TTL) and injected API faults.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::error::YkError;
use super::lifecycle;
use super::state::{ApiFault, ApiFaultKind, Remembered, RequestRecord, YkState};
use super::validate;

type St = State<Arc<YkState>>;

pub fn router() -> Router<Arc<YkState>> {
    Router::new()
        .route("/v3/payments", post(create_payment))
        .route("/v3/payments/{id}", get(get_payment))
        .route("/v3/payments/{id}/capture", post(capture))
        .route("/v3/payments/{id}/cancel", post(cancel))
        .route("/v3/refunds", post(create_refund).get(list_refunds))
        .route("/v3/refunds/{id}", get(get_refund))
}

fn authorized(state: &YkState, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", state.config.shop_id, state.config.secret_key);
    decoded == expected.as_bytes()
}

type Op = Box<dyn FnOnce(&YkState, Value) -> Result<Value, YkError> + Send>;

/// Runs one API call through auth, idempotence and faults.
async fn handle(
    state: Arc<YkState>,
    headers: HeaderMap,
    path: String,
    body: Option<Bytes>,
    op: Op,
) -> Response {
    let key = headers.get("idempotence-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let method = if body.is_some() { "POST" } else { "GET" };
    let (status, answer, replayed) = match run(&state, &headers, &path, body, key.clone(), op).await {
        Outcome::Answer(status, answer, replayed) => (status, answer, replayed),
        Outcome::Fault(kind) => fault_answer(&state, kind).await,
    };
    state.lock().record_request(RequestRecord {
        method: method.into(),
        path,
        idempotence_key: key,
        status,
        replayed,
    });
    state.changed();
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(answer)).into_response()
}

enum Outcome {
    Answer(u16, Value, bool),
    Fault(ApiFaultKind),
}

fn error(e: YkError) -> Outcome {
    Outcome::Answer(e.status, e.body(), false)
}

async fn run(
    state: &YkState,
    headers: &HeaderMap,
    path: &str,
    body: Option<Bytes>,
    key: Option<String>,
    op: Op,
) -> Outcome {
    if !authorized(state, headers) {
        return error(YkError::credentials());
    }
    let Some(body) = body else {
        if let Some(fault) = state.lock().take_fault("GET", path) {
            return Outcome::Fault(fault.kind);
        }
        return match op(state, Value::Null) {
            Ok(value) => Outcome::Answer(200, value, false),
            Err(e) => error(e),
        };
    };
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return error(YkError::invalid("Idempotence key isn't specified", "Idempotence-Key"));
    };
    if key.len() > 64 {
        return error(YkError::invalid(
            "Idempotence key is too long. Maximum length is 64 characters",
            "Idempotence-Key",
        ));
    }
    let parsed: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(_) => return error(YkError::invalid("Request body is not a valid JSON", "body")),
        }
    };
    // One gate around check → execute → remember, so concurrent requests with one key run once.
    let gate = state.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fault: Option<ApiFault> = {
        let mut inner = state.lock();
        inner.forget_expired_keys(state.config.idempotence_ttl);
        if let Some(seen) = inner.idempotence.get(&key) {
            if seen.path != path || seen.body != parsed {
                return error(YkError::invalid(
                    "Idempotence key duplicated: the request body differs from the first request with this key",
                    "Idempotence-Key",
                ));
            }
            return Outcome::Answer(seen.status, seen.answer.clone(), true);
        }
        inner.take_fault("POST", path)
    };
    if let Some(fault) = &fault {
        if !fault.processed {
            return Outcome::Fault(fault.kind);
        }
    }
    let (status, answer) = match op(state, parsed.clone()) {
        Ok(value) => (200, value),
        Err(e) => (e.status, e.body()),
    };
    let at = std::time::Instant::now();
    let remembered = Remembered { path: path.to_string(), body: parsed, status, answer: answer.clone(), at };
    state.lock().idempotence.insert(key, remembered);
    drop(gate);
    match fault {
        Some(fault) => Outcome::Fault(fault.kind),
        None => Outcome::Answer(status, answer, false),
    }
}

async fn fault_answer(state: &YkState, kind: ApiFaultKind) -> (u16, Value, bool) {
    match kind {
        ApiFaultKind::ServerError => (500, YkError::internal().body(), false),
        ApiFaultKind::Processing => (
            202,
            json!({"type": "processing", "description": "Request accepted", "retry_after": 1800}),
            false,
        ),
        ApiFaultKind::Timeout => {
            tokio::select! {
                _ = tokio::time::sleep(state.config.hang) => {}
                _ = state.shutdown.wait() => {}
            }
            (500, YkError::internal().body(), false)
        }
    }
}

async fn create_payment(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let op: Op = Box::new(|state, body| lifecycle::create_payment(state, validate::payment(&body)?));
    handle(s, headers, "/v3/payments".into(), Some(body), op).await
}

async fn get_payment(State(s): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/v3/payments/{id}");
    handle(s, headers, path, None, Box::new(move |state, _| lifecycle::get_payment(state, &id))).await
}

async fn capture(State(s): St, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/v3/payments/{id}/capture");
    handle(s, headers, path, Some(body), Box::new(move |state, _| lifecycle::capture(state, &id))).await
}

async fn cancel(State(s): St, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/v3/payments/{id}/cancel");
    let op: Op = Box::new(move |state, _| {
        let payment = lifecycle::get_payment(state, &id)?;
        // The merchant's cancel works only on a payment waiting for capture, as YooKassa's.
        if payment["status"] != "waiting_for_capture" {
            let status = payment["status"].as_str().unwrap_or("unknown");
            return Err(YkError::invalid(
                format!("Payment {id} is {status}; only a payment waiting for capture can be canceled"),
                "payment_id",
            ));
        }
        lifecycle::cancel(state, &id, "canceled_by_merchant")
            .map_err(|e| YkError::invalid(e.to_string(), "payment_id"))
    });
    handle(s, headers, path, Some(body), op).await
}

async fn create_refund(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let op: Op = Box::new(|state, body| lifecycle::refund(state, validate::refund(&body)?));
    handle(s, headers, "/v3/refunds".into(), Some(body), op).await
}

#[derive(serde::Deserialize)]
struct RefundQuery {
    payment_id: Option<String>,
}

/// `GET /v3/refunds?payment_id=…`: the refunds (of that payment), `{"type":"list","items":[…]}`.
async fn list_refunds(
    State(s): St,
    axum::extract::Query(query): axum::extract::Query<RefundQuery>,
    headers: HeaderMap,
) -> Response {
    let path = "/v3/refunds".to_owned();
    let op: Op = Box::new(move |state, _| Ok(lifecycle::list_refunds(state, query.payment_id.as_deref())));
    handle(s, headers, path, None, op).await
}

async fn get_refund(State(s): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/v3/refunds/{id}");
    handle(s, headers, path, None, Box::new(move |state, _| lifecycle::get_refund(state, &id))).await
}
