//! The Gemini API surface: `GET /v1beta/models`, `GET /v1beta/models/{model}` and
//! `POST /v1beta/models/{model}:generateContent`. Owns the key check (missing → 403, wrong →
//! 400 API_KEY_INVALID), applying behaviours, and recording each call.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::behaviour::{from_prompt, Behaviour};
use super::error::GError;
use super::models::{find, Model, MODELS};

use super::request::{parse, GenRequest};
use super::respond;
use super::state::{GeminiState, ReferenceRecord, RequestRecord};

type St = State<Arc<GeminiState>>;
type KeyQuery = Query<HashMap<String, String>>;

pub fn router() -> Router<Arc<GeminiState>> {
    Router::new()
        .route("/v1beta/models", get(list_models))
        .route("/v1beta/models/{spec}", get(get_model).post(generate))
}

fn check_key(
    state: &GeminiState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), GError> {
    let key =
        headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).or(query.get("key").map(String::as_str));
    match key {
        None | Some("") => Err(GError::unregistered()),
        Some(key) if key == state.config.api_key => Ok(()),
        Some(_) => Err(GError::key_invalid()),
    }
}

fn model_object(model: Model) -> Value {
    json!({"name": format!("models/{}", model.id), "version": "3.0", "displayName": model.display_name,
        "description": format!("{} image generation and editing", model.display_name),
        "inputTokenLimit": 65536, "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
        "temperature": 1.0, "topP": 0.95, "topK": 64, "thinking": model.pro})
}

async fn list_models(State(s): St, headers: HeaderMap, Query(q): KeyQuery) -> Response {
    if let Err(e) = check_key(&s, &headers, &q) {
        return e.into_response();
    }
    let removed = s.lock().removed.clone();
    let models: Vec<Value> =
        MODELS.iter().filter(|m| !removed.contains(m.id)).map(|m| model_object(*m)).collect();
    // Paged as Google pages it: `pageSize` (default 50) and `nextPageToken`.
    let size = q.get("pageSize").and_then(|p| p.parse::<usize>().ok()).filter(|p| *p > 0).unwrap_or(50);
    let start = q.get("pageToken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let page: Vec<Value> = models.iter().skip(start).take(size).cloned().collect();
    let mut body = json!({ "models": page });
    if start + size < models.len() {
        body["nextPageToken"] = json!((start + size).to_string());
    }
    Json(body).into_response()
}

fn served(s: &GeminiState, id: &str) -> Option<Model> {
    find(id).filter(|m| !s.lock().removed.contains(m.id))
}

async fn get_model(
    State(s): St,
    Path(spec): Path<String>,
    headers: HeaderMap,
    Query(q): KeyQuery,
) -> Response {
    if let Err(e) = check_key(&s, &headers, &q) {
        return e.into_response();
    }
    match served(&s, &spec) {
        Some(model) => Json(model_object(model)).into_response(),
        None => GError::model_not_found(&spec).into_response(),
    }
}

fn references(request: &GenRequest) -> Vec<ReferenceRecord> {
    let hex = |bytes: &[u8]| Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
    request
        .references
        .iter()
        .map(|r| ReferenceRecord {
            mime_type: r.mime_type.clone(),
            size: r.bytes.len(),
            sha256: hex(&r.bytes),
        })
        .collect()
}

async fn generate(
    State(s): St,
    Path(spec): Path<String>,
    version: Version,
    headers: HeaderMap,
    Query(q): KeyQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Err(e) = check_key(&s, &headers, &q) {
        return e.into_response();
    }
    let _in_flight = s.enter(version);
    let (model_id, method) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
    let Some(model) = served(&s, model_id).filter(|_| method == "generateContent") else {
        return GError::model_not_found(model_id).into_response();
    };
    let mut record = RequestRecord {
        model: model.id.into(),
        prompt: String::new(),
        aspect_ratio: None,
        image_size: None,
        seed: None,
        references: vec![],
        status: None,
        behaviour: None,
        http_version: format!("{version:?}"),
        turns: Vec::new(),
        signatures: Vec::new(),
    };
    let parsed = match body {
        Ok(body) => parse(model, &body),
        Err(_) => Err(GError::invalid(format!(
            "Request payload size exceeds the limit: {} bytes.",
            super::MAX_BODY
        ))),
    };
    let request = match parsed {
        Ok(request) => request,
        Err(error) => {
            record.status = Some(error.code);
            store(&s, record);
            return error.into_response();
        }
    };
    record.prompt = request.prompt.clone();
    record.aspect_ratio = Some(request.aspect_ratio.clone());
    record.image_size = Some(request.image_size.clone());
    record.seed = request.seed;
    record.references = references(&request);
    record.turns = request.turns.clone();
    let mut behaviours = from_prompt(&request.prompt);
    let (queued, latency_ms) = {
        let mut inner = s.lock();
        (inner.queued.pop_front(), inner.latency_ms)
    };
    behaviours.extend(queued);
    let mut latency = s.config.latency + Duration::from_millis(latency_ms);
    for behaviour in &behaviours {
        if let Behaviour::Latency(ms) = behaviour {
            latency += Duration::from_millis(*ms);
        }
    }
    let outcome = behaviours.into_iter().find(|b| !matches!(b, Behaviour::Latency(_)));
    record.behaviour = outcome.as_ref().map(Behaviour::marker);
    if !latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(latency) => {}
            _ = s.shutdown.wait() => {}
        }
    }
    if matches!(outcome, Some(Behaviour::Hang | Behaviour::Drop)) {
        // Recorded before the answer never comes, so a test can see the request arrived.
        store(&s, record);
        return answer(&s, model, request, outcome).await.0;
    }
    let (response, signatures) = answer(&s, model, request, outcome).await;
    record.status = Some(response.status().as_u16());
    record.signatures = signatures;
    store(&s, record);
    response
}

fn store(s: &GeminiState, record: RequestRecord) {
    tracing::info!(model = %record.model, status = ?record.status, behaviour = ?record.behaviour,
        references = record.references.len(), "gemini generateContent");
    s.lock().record(record);
    s.version.send_modify(|v| *v += 1);
}

/// The answer, and the `thoughtSignature`s it carries.
async fn answer(
    s: &GeminiState,
    model: Model,
    request: GenRequest,
    outcome: Option<Behaviour>,
) -> (Response, Vec<String>) {
    let json = match outcome {
        None => {
            let (small, format) = (s.config.small, s.config.image_format);
            let mut request = request;
            if s.lock().shrink {
                request.image_size = "1K".to_owned();
            }
            let render = move || respond::success(model, &request, small, format);
            let rendered = tokio::task::spawn_blocking(render).await;
            return match rendered {
                Ok(body) => {
                    let parts = body.pointer("/candidates/0/content/parts").and_then(Value::as_array);
                    let signatures = parts
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.get("thoughtSignature").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect();
                    (Json(body).into_response(), signatures)
                }
                Err(_) => (GError::server(500).into_response(), Vec::new()),
            };
        }
        Some(Behaviour::RateLimited { retry_secs }) => {
            return (GError::quota(model.id, retry_secs, false).into_response(), Vec::new())
        }
        Some(Behaviour::DailyQuota) => {
            return (GError::quota(model.id, 41, true).into_response(), Vec::new())
        }
        Some(Behaviour::Server(code)) => return (GError::server(code).into_response(), Vec::new()),
        Some(Behaviour::Blocked(reason)) => respond::blocked(model, &request, &reason),
        Some(Behaviour::Finish(reason)) => respond::finished(model, &request, &reason),
        Some(Behaviour::TextOnly) => respond::text_only(model, &request),
        Some(Behaviour::Garbage) => respond::garbage(model, &request),
        Some(Behaviour::Drop) => return (Response::new(Body::new(Broken)), Vec::new()),
        Some(Behaviour::Hang) => {
            tokio::select! {
                _ = tokio::time::sleep(s.config.hang) => {}
                _ = s.shutdown.wait() => {}
            }
            return (GError::server(504).into_response(), Vec::new());
        }
        Some(Behaviour::Latency(_)) => return (GError::server(500).into_response(), Vec::new()),
    };
    (Json(json).into_response(), Vec::new())
}

/// A body that fails at once: the server aborts the connection mid-answer.
struct Broken;

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("connection dropped by the fake"))))
    }
}
