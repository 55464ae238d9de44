//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::AppState;
use crate::metrics;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    metrics::render_counters(&mut out);
    let status = match metrics::render_database(&mut out, &state.bot.pool, &state.bot.config.catalog).await {
        Ok(()) => StatusCode::OK,
        Err(e) => {
            tracing::error!(error = %e, "metrics: database figures unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
