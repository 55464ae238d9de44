//! Webhook delivery as Telegram does it: POST each update as JSON with the secret header, one
//! update in flight per chat and in order, at most `max_connections` in flight overall; a
//! non-2xx answer, a timeout or a connection error makes the update go again after a delay.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::state::{DeliveryRecord, TgState, Webhook, MAX_RECORDS};

/// Runs until the fake shuts down.
pub async fn run(state: Arc<TgState>) {
    let mut version = state.updates_version.subscribe();
    loop {
        version.borrow_and_update();
        let wake = dispatch_ready(&state);
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = version.changed() => {}
            _ = sleep => {}
            _ = state.shutdown.wait() => return,
        }
    }
}

/// Starts every delivery that may start now; returns when the next retry becomes due.
fn dispatch_ready(state: &Arc<TgState>) -> Option<Instant> {
    state.expire_updates();
    let mut inner = state.lock();
    let hook = inner.webhook.clone()?;
    let now = Instant::now();
    let mut in_flight = inner.updates.iter().filter(|u| u.in_flight).count();
    let mut seen = HashSet::new();
    let mut next_wake: Option<Instant> = None;
    for update in inner.updates.iter_mut() {
        if !seen.insert(update.chat_key) || update.in_flight {
            continue;
        }
        if update.not_before > now {
            next_wake = Some(next_wake.map_or(update.not_before, |w| w.min(update.not_before)));
            continue;
        }
        if in_flight >= hook.max_connections {
            break;
        }
        in_flight += 1;
        update.in_flight = true;
        update.attempts += 1;
        let job =
            Delivery { update_id: update.update_id, attempt: update.attempts, body: update.body.clone() };
        tokio::spawn(deliver(state.clone(), hook.clone(), job));
    }
    next_wake
}

#[derive(Debug, Serialize)]
struct Delivery {
    update_id: i64,
    attempt: u32,
    body: Value,
}

async fn deliver(state: Arc<TgState>, hook: Webhook, job: Delivery) {
    let mut request =
        state.webhook_client.post(&hook.url).json(&job.body).timeout(state.config.webhook_timeout);
    if let Some(secret) = &hook.secret_token {
        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    let (delivered, status, error) = match request.send().await {
        Ok(response) if response.status().is_success() => (true, Some(response.status().as_u16()), None),
        Ok(response) => {
            let status = response.status();
            let reason = status.canonical_reason().unwrap_or("");
            (
                false,
                Some(status.as_u16()),
                Some(format!("Wrong response from the webhook: {} {reason}", status.as_u16())),
            )
        }
        Err(error) if error.is_timeout() => (false, None, Some("Read timeout expired".to_string())),
        Err(_) => (false, None, Some("Connection refused".to_string())),
    };
    tracing::info!(update_id = job.update_id, attempt = job.attempt, delivered, ?status, "webhook delivery");
    let mut inner = state.lock();
    if delivered {
        inner.updates.retain(|u| u.update_id != job.update_id);
    } else if let Some(update) = inner.updates.iter_mut().find(|u| u.update_id == job.update_id) {
        update.in_flight = false;
        update.not_before = Instant::now() + state.config.webhook_retry_delay;
    }
    if let (Some(message), Some(current)) = (&error, inner.webhook.as_mut()) {
        current.last_error_date = Some(chrono::Utc::now().timestamp());
        current.last_error_message = Some(message.clone());
    }
    if inner.deliveries.len() >= MAX_RECORDS {
        inner.deliveries.pop_front();
    }
    inner.deliveries.push_back(DeliveryRecord {
        update_id: job.update_id,
        attempt: job.attempt,
        status,
        error,
    });
    drop(inner);
    state.updates_changed();
}
