//! `POST /telegram/webhook`: the secret token checked in constant time (401 without it), the
//! body capped (413), malformed JSON refused (400); otherwise the update is handled before the
//! answer, so a 200 means its effects are committed. Unknown kinds are recorded and answered 200.
//! With `TELEGRAM_TRUSTED_NETWORKS`, a sender outside them is refused (403) before the secret
//! is even compared.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;

use super::{constant_time_eq, AppState};
use crate::bot::BotError;
use crate::metrics;
use crate::payments::network;

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Whether the sender may reach the webhook: always without `TELEGRAM_TRUSTED_NETWORKS`,
/// otherwise only from those networks (`X-Forwarded-For` believed from `TRUSTED_PROXIES`).
fn sender_trusted(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let Some(telegram) = state.bot.config.telegram.as_ref() else {
        return true;
    };
    if telegram.trusted_networks.is_empty() {
        return true;
    }
    let Some(peer) = peer else {
        tracing::error!("no peer address: serve with connect info; update refused");
        return false;
    };
    let ip = network::client_ip(peer.ip(), network::forwarded_for(headers), &telegram.trusted_proxies);
    let trusted = network::contains(&telegram.trusted_networks, ip);
    if !trusted {
        tracing::warn!(%ip, %peer, "webhook call from outside TELEGRAM_TRUSTED_NETWORKS refused");
    }
    trusted
}

pub async fn telegram(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    if !sender_trusted(&state, peer, &headers) {
        metrics::inc(&metrics::WEBHOOK_REFUSED);
        return (StatusCode::FORBIDDEN, "not from Telegram");
    }
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let authorized = state
        .webhook_secret
        .as_ref()
        .is_some_and(|secret| constant_time_eq(given, secret.expose().as_bytes()));
    if !authorized {
        metrics::inc(&metrics::WEBHOOK_REFUSED);
        return (StatusCode::UNAUTHORIZED, "invalid secret token");
    }
    let Ok(update) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed JSON");
    };
    match state.bot.handle(&update).await {
        Ok(()) => (StatusCode::OK, ""),
        Err(BotError::NotAnUpdate(reason)) => {
            tracing::warn!(reason, "webhook body is not an update");
            (StatusCode::BAD_REQUEST, "not a Telegram update")
        }
        Err(BotError::Retry(why)) => {
            tracing::warn!(%why, "update left open; Telegram will redeliver");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
        Err(e @ (BotError::Db(_) | BotError::Ledger(_) | BotError::Inconsistent(_))) => {
            metrics::inc(&metrics::UPDATES_FAILED);
            tracing::error!(error = %e, "update handling failed; Telegram will redeliver");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_secrets_exactly() {
        use crate::http::constant_time_eq;
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
