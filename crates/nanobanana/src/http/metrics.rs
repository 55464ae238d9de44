//! `GET /metrics`: Prometheus text format. It shows revenue, so it is never public: on the
//! main listener only behind `Authorization: Bearer METRICS_TOKEN` (404 without a token
//! configured), and open on the private `METRICS_ADDR` listener. The database figures come
//! from a cache a few seconds old (`metrics::Figures`).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{constant_time_eq, AppState};
use crate::metrics;

/// On the main listener: the bearer token first.
pub async fn public(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.bot.config.metrics.token.as_ref() else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "bearer token required")
            .into_response();
    }
    metrics(State(state)).await
}

/// On the private listener, and after the token check.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    metrics::render_counters(&mut out);
    let reads = state.figures.reads();
    metrics::sample(&mut out, "nanobanana_metrics_figures_read_total", Some("counter"), "", reads);
    let fast = state.bot.fast_handled.load(std::sync::atomic::Ordering::Relaxed);
    metrics::sample(&mut out, "nanobanana_updates_fast_total", Some("counter"), "", fast);
    let status = match state.figures.render(&state.bot.pool, &state.bot.config.catalog).await {
        Ok(figures) => {
            out.push_str(&figures);
            StatusCode::OK
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: database figures unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
