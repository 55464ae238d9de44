//! The HTTP surface of `serve`: the Telegram and YooKassa webhooks, health and readiness, and
//! metrics (behind a token here, open on the private `METRICS_ADDR` listener).
//! Every request is validated before it touches the database; callers get a precise 4xx, and
//! a 500 says only "internal error" while the cause is logged once.

mod health;
mod metrics;
mod webhook;
pub mod yookassa;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::bot::inbox::Bot;
use crate::secret::Secret;

/// Largest webhook body accepted; Telegram's updates are far smaller.
pub const MAX_UPDATE_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub bot: Arc<Bot>,
    /// `TELEGRAM_WEBHOOK_SECRET`; without it the webhook refuses everything.
    pub webhook_secret: Option<Secret<String>>,
    /// One connection for `/readyz`, made once (a new one per probe would cost a TCP and
    /// Redis handshake each time, and a socket per concurrent probe).
    pub redis: ::redis::aio::ConnectionManager,
    /// `/metrics`' database figures, cached.
    pub figures: Arc<crate::metrics::Figures>,
    /// Turns true on shutdown: `/readyz` then answers 503 so that no balancer sends more.
    pub draining: tokio::sync::watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/telegram/webhook", post(webhook::telegram))
        .layer(DefaultBodyLimit::max(MAX_UPDATE_BYTES))
        .route("/yookassa/webhook", yookassa::route(&state))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::public))
        .with_state(state)
}

/// The private listener's routes (`METRICS_ADDR`): metrics and health, no token.
pub fn private_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

/// Equal strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
