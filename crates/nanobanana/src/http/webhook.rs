//! `POST /telegram/webhook`: the secret token checked in constant time (401 without it), the
//! body capped (413), malformed JSON refused (400); otherwise the update is handled before the
//! answer, so a 200 means its effects are committed. Unknown kinds are recorded and answered 200.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use crate::metrics;
use crate::bot::BotError;

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Equal strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn telegram(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
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
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
        assert!(!super::constant_time_eq(b"", b"a"));
    }
}
