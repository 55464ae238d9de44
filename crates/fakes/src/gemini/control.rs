//! The control API of the fake Gemini under `/_fake/…` (documented in the crate README):
//! queue behaviours for the next requests, set a latency, read recorded requests and the
//! concurrency seen (calls in flight, HTTP versions, connections), remove a model (and restore
//! it), and make every picture come back at 1K whatever size was asked.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::behaviour::Behaviour;
use super::state::{GeminiState, MAX_QUEUED};

type St = State<Arc<GeminiState>>;

pub fn router() -> Router<Arc<GeminiState>> {
    Router::new()
        .route("/behaviours", post(queue).delete(clear).get(list))
        .route("/latency", post(latency))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/stats", get(stats).delete(reset_stats))
        .route("/models/{id}/remove", post(remove_model))
        .route("/models/{id}/restore", post(restore_model))
        .route("/shrink", post(shrink))
}

async fn remove_model(State(s): St, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    s.lock().removed.insert(id.clone());
    Json(json!({"removed": id})).into_response()
}

async fn restore_model(State(s): St, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    s.lock().removed.remove(&id);
    Json(json!({"restored": id})).into_response()
}

#[derive(Deserialize)]
struct ShrinkBody {
    on: bool,
}

async fn shrink(State(s): St, Json(body): Json<ShrinkBody>) -> Response {
    s.lock().shrink = body.on;
    Json(json!({"shrink": body.on})).into_response()
}

async fn stats(State(s): St) -> Response {
    Json(s.stats()).into_response()
}

async fn reset_stats(State(s): St) -> Response {
    s.reset_stats();
    Json(s.stats()).into_response()
}

#[derive(Deserialize)]
struct QueueBody {
    behaviour: String,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

async fn queue(State(s): St, Json(body): Json<QueueBody>) -> Response {
    let Some(behaviour) = Behaviour::parse(&body.behaviour) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("unknown behaviour {:?}", body.behaviour)})),
        )
            .into_response();
    };
    let mut inner = s.lock();
    if inner.queued.len() + body.count > MAX_QUEUED {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "too many queued behaviours"})))
            .into_response();
    }
    inner.queued.extend(std::iter::repeat_n(behaviour, body.count));
    Json(json!({"queued": inner.queued.len()})).into_response()
}

async fn clear(State(s): St) -> Response {
    s.lock().queued.clear();
    Json(json!({"queued": 0})).into_response()
}

async fn list(State(s): St) -> Response {
    let markers: Vec<String> = s.lock().queued.iter().map(Behaviour::marker).collect();
    Json(markers).into_response()
}

#[derive(Deserialize)]
struct LatencyBody {
    ms: u64,
}

async fn latency(State(s): St, Json(body): Json<LatencyBody>) -> Response {
    s.lock().latency_ms = body.ms;
    Json(json!({"ms": body.ms})).into_response()
}

async fn requests(State(s): St) -> Response {
    Json(s.lock().requests.clone()).into_response()
}

async fn clear_requests(State(s): St) -> Response {
    s.lock().requests.clear();
    Json(json!({"ok": true})).into_response()
}
