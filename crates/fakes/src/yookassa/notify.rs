//! Notifications as YooKassa sends them: `{"type":"notification","event":…,"object":…}` POSTed
//! to the configured URL from the configured source address, retried on a fast schedule until
//! a 200. Owns the control modes: duplicate (N concurrent copies), delay, drop, hold and
//! release (in order or reversed).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::state::{Inner, Notification, NotificationRecord, YkState};

/// Queues a notification under the lock; delivery runs in its own task.
pub fn emit(state: &YkState, inner: &mut Inner, event: &str, object: serde_json::Value) {
    inner.next_seq += 1;
    let notification = Notification { seq: inner.next_seq, event: event.to_string(), object };
    let record = |error: &str| NotificationRecord {
        seq: notification.seq,
        event: notification.event.clone(),
        object_id: notification.object["id"].as_str().unwrap_or("").to_string(),
        copy: 0,
        attempt: 0,
        status: None,
        error: Some(error.to_string()),
    };
    if inner.mode.drop_next > 0 {
        inner.mode.drop_next -= 1;
        inner.record_notification(record("dropped"));
        return;
    }
    if inner.mode.hold {
        inner.record_notification(record("held"));
        inner.held.push(notification);
        return;
    }
    let copies = inner.mode.duplicate.max(1);
    let delay = Duration::from_millis(inner.mode.delay_ms);
    let Some(me) = state.self_ref() else { return };
    tokio::spawn(send_copies(me, notification, copies, delay));
}

async fn send_copies(state: Arc<YkState>, notification: Notification, copies: u32, delay: Duration) {
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = state.shutdown.wait() => return,
        }
    }
    let sends = (1..=copies).map(|copy| {
        let state = state.clone();
        let notification = notification.clone();
        tokio::spawn(async move { deliver(&state, &notification, copy).await })
    });
    for send in sends.collect::<Vec<_>>() {
        let _ = send.await;
    }
}

/// Sends held notifications, reversed when asked, each one's first attempt before the next.
pub async fn release(state: Arc<YkState>, reverse: bool) -> usize {
    let mut held = std::mem::take(&mut state.lock().held);
    if reverse {
        held.reverse();
    }
    let count = held.len();
    for notification in held {
        let first = attempt(&state, &notification, 1, 1).await;
        if !first {
            let state = state.clone();
            tokio::spawn(async move { retry_from(&state, &notification, 1, 2).await });
        }
    }
    count
}

/// Delivers one copy until a 200 or the attempt limit.
async fn deliver(state: &YkState, notification: &Notification, copy: u32) {
    if attempt(state, notification, copy, 1).await {
        return;
    }
    retry_from(state, notification, copy, 2).await;
}

async fn retry_from(state: &YkState, notification: &Notification, copy: u32, first: u32) {
    let delays = &state.config.retry_delays;
    for n in first..=state.config.max_notification_attempts {
        let index = (n as usize).saturating_sub(2).min(delays.len().saturating_sub(1));
        let wait = delays.get(index).copied().unwrap_or(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.shutdown.wait() => return,
        }
        if attempt(state, notification, copy, n).await {
            return;
        }
    }
}

/// One POST; true when answered 200.
async fn attempt(state: &YkState, notification: &Notification, copy: u32, n: u32) -> bool {
    let Some(url) = state.config.notification_url.clone() else {
        record(state, notification, copy, n, None, Some("no notification_url configured".into()));
        return true;
    };
    let Ok(_permit) = state.sending.acquire().await else {
        return true;
    };
    let body = json!({"type": "notification", "event": notification.event, "object": notification.object});
    let sent = state.notifier.post(&url).json(&body).timeout(state.config.notification_timeout).send().await;
    let (status, error) = match sent {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    tracing::info!(event = %notification.event, seq = notification.seq, copy, attempt = n, ?status, "yookassa notification");
    record(state, notification, copy, n, status, error);
    status == Some(200)
}

fn record(
    state: &YkState,
    notification: &Notification,
    copy: u32,
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
) {
    let record = NotificationRecord {
        seq: notification.seq,
        event: notification.event.clone(),
        object_id: notification.object["id"].as_str().unwrap_or("").to_string(),
        copy,
        attempt,
        status,
        error,
    };
    state.lock().record_notification(record);
    state.changed();
}
