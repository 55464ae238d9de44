//! The Bot API surface: `/bot{token}/{method}` and `/file/bot{token}/{path}`. Owns the token
//! check (malformed → 404, wrong → 401, as Telegram), method-name lookup (case-insensitive),
//! fault injection before a method runs, and the envelope of every answer.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{middleware, Router};

use super::error::{ok, TgError, TgResult};
use super::params::Params;
use super::state::TgState;
use super::{control, faults, methods};
use crate::common::logging::log_requests;

/// Largest request body: a 50 MB document plus multipart overhead.
const MAX_BODY: usize = 51 * 1024 * 1024;

pub fn router(state: Arc<TgState>) -> Router {
    Router::new()
        .route("/{bot}/{method}", any(call))
        .route("/file/{bot}/{*path}", get(download))
        .nest("/_fake", control::router())
        .fallback(|| async { TgError::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(|r, n| log_requests("telegram", r, n)))
        .with_state(state)
}

/// Telegram answers 404 to a token that cannot be a token and 401 to an unknown one.
fn check_token(state: &TgState, segment: &str) -> Result<(), TgError> {
    let token = segment.strip_prefix("bot").ok_or_else(TgError::not_found)?;
    let (id, secret) = token.split_once(':').ok_or_else(TgError::not_found)?;
    let well_formed = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && !secret.is_empty()
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !well_formed {
        return Err(TgError::not_found());
    }
    if token != state.config.token {
        return Err(TgError::unauthorized());
    }
    Ok(())
}

async fn call(
    State(state): State<Arc<TgState>>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    if let Err(error) = check_token(&state, &bot) {
        return error.into_response();
    }
    let Some(name) = methods::canonical(&method) else {
        return TgError::not_found().into_response();
    };
    let params = match Params::read(request).await {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let injected = faults::take(&mut state.lock().faults, name);
    let answer: TgResult = match injected {
        Some((error, true)) => {
            let _ = methods::dispatch(&state, name, params).await;
            Err(error)
        }
        Some((error, false)) => Err(error),
        None => methods::dispatch(&state, name, params).await,
    };
    if let Err(error) = &answer {
        tracing::info!(method = name, code = error.code, description = %error.description, "bot api error");
    }
    match answer {
        Ok(result) => ok(result),
        Err(error) => error.into_response(),
    }
}

async fn download(State(state): State<Arc<TgState>>, Path((bot, path)): Path<(String, String)>) -> Response {
    if check_token(&state, &bot).is_err() {
        return TgError::not_found().into_response();
    }
    let inner = state.lock();
    let file = inner.file_paths.get(&path).and_then(|id| inner.files.get(id));
    match file {
        Some(file) => ([(CONTENT_TYPE, "application/octet-stream")], file.bytes.clone()).into_response(),
        None => TgError::not_found().into_response(),
    }
}
