//! setWebhook, deleteWebhook, getWebhookInfo and getUpdates. Owns the switch between the two
//! ways of receiving updates: while a webhook is set getUpdates answers 409 Conflict, and a
//! newer getUpdates call terminates an older waiting one with 409, as Telegram does.

use std::future::ready;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::wait::{until_deadline, Recheck};
use crate::telegram::error::{TgError, TgResult};
use crate::telegram::params::Params;
use crate::telegram::state::{TgState, Webhook};

pub fn set_webhook(state: &TgState, p: &Params) -> TgResult {
    let url = p.str("url").unwrap_or_default();
    if url.is_empty() {
        return delete_webhook(state, p);
    }
    let parsed = url::Url::parse(&url).map_err(|_| {
        TgError::bad_request("bad webhook: Failed to resolve host: Name or service not known")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TgError::bad_request("bad webhook: An HTTPS URL must be provided for webhook"));
    }
    let secret = p.str("secret_token").filter(|s| !s.is_empty());
    if let Some(secret) = &secret {
        let allowed = secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if secret.len() > 256 || !allowed {
            return Err(TgError::bad_request("secret token contains unallowed characters"));
        }
    }
    let max_connections = p.i64("max_connections")?.unwrap_or(40).clamp(1, 100) as usize;
    let allowed_updates = allowed_updates(p)?;
    let mut inner = state.lock();
    if p.bool("drop_pending_updates") {
        inner.updates.retain(|u| u.in_flight);
    }
    if allowed_updates.is_some() {
        inner.allowed_updates = allowed_updates;
    }
    inner.webhook = Some(Webhook { url, secret_token: secret, max_connections, ..Webhook::default() });
    inner.poll_generation += 1;
    drop(inner);
    state.updates_changed();
    Ok(json!(true))
}

fn allowed_updates(p: &Params) -> Result<Option<Vec<String>>, TgError> {
    let Some(list) = p.json("allowed_updates")? else {
        return Ok(None);
    };
    let list = list.as_array().ok_or_else(|| TgError::bad_request("can't parse allowed updates"))?;
    Ok(Some(list.iter().filter_map(Value::as_str).map(str::to_string).collect()))
}

pub fn delete_webhook(state: &TgState, p: &Params) -> TgResult {
    let mut inner = state.lock();
    inner.webhook = None;
    if p.bool("drop_pending_updates") {
        inner.updates.retain(|u| u.in_flight);
    }
    drop(inner);
    state.updates_changed();
    Ok(json!(true))
}

pub fn webhook_info(state: &TgState) -> Value {
    state.expire_updates();
    let inner = state.lock();
    let pending = inner.updates.len();
    let Some(hook) = &inner.webhook else {
        return json!({"url": "", "has_custom_certificate": false, "pending_update_count": pending});
    };
    let mut info = json!({
        "url": hook.url,
        "has_custom_certificate": false,
        "pending_update_count": pending,
        "max_connections": hook.max_connections,
        "ip_address": "127.0.0.1",
    });
    if let (Some(date), Some(message)) = (hook.last_error_date, &hook.last_error_message) {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    if let Some(allowed) = &inner.allowed_updates {
        info["allowed_updates"] = json!(allowed);
    }
    info
}

const WEBHOOK_ACTIVE: &str =
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
const TERMINATED: &str =
    "terminated by other getUpdates request; make sure that only one bot instance is running";

pub async fn get_updates(state: &TgState, p: &Params) -> TgResult {
    let offset = p.i64("offset")?;
    let limit = p.i64("limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(p.i64("timeout")?.unwrap_or(0).clamp(0, 50) as u64);
    let allowed = allowed_updates(p)?;
    state.expire_updates();
    let version = state.updates_version.subscribe();
    let generation = {
        let mut inner = state.lock();
        if inner.webhook.is_some() {
            return Err(TgError::conflict(WEBHOOK_ACTIVE));
        }
        if allowed.is_some() {
            inner.allowed_updates = allowed;
        }
        confirm(&mut inner.updates, offset);
        inner.poll_generation += 1;
        inner.poll_generation
    };
    state.updates_changed();
    let _waiting = WaitingPoll::new(state);
    // A conflict, or the updates as soon as there are any; none when the timeout passes.
    let answer = until_deadline(tokio::time::Instant::now() + timeout, Recheck::OnChange(version), || {
        let inner = state.lock();
        if inner.poll_generation != generation {
            let conflict = if inner.webhook.is_some() { WEBHOOK_ACTIVE } else { TERMINATED };
            return ready(Some(Err(TgError::conflict(conflict))));
        }
        let batch: Vec<Value> = inner.updates.iter().take(limit).map(|u| u.body.clone()).collect();
        ready((!batch.is_empty()).then_some(Ok(Value::Array(batch))))
    });
    tokio::select! {
        // A shutdown ends only a waiting call: an answer found at once goes out.
        biased;
        answer = answer => answer.unwrap_or_else(|| Ok(json!([]))),
        () = state.shutdown.wait() => Ok(json!([])),
    }
}

/// Forgets updates before `offset`; a negative offset keeps only the last `-offset` updates.
fn confirm(
    updates: &mut std::collections::VecDeque<crate::telegram::state::PendingUpdate>,
    offset: Option<i64>,
) {
    match offset {
        Some(offset) if offset < 0 => {
            let keep = offset.unsigned_abs() as usize;
            while updates.len() > keep {
                updates.pop_front();
            }
        }
        Some(offset) => updates.retain(|u| u.update_id >= offset),
        None => {}
    }
}

/// Counts a getUpdates call while it runs (also when the client goes away mid-poll).
struct WaitingPoll<'a>(&'a TgState);

impl<'a> WaitingPoll<'a> {
    fn new(state: &'a TgState) -> Self {
        state.lock().waiting_polls += 1;
        state.updates_changed();
        Self(state)
    }
}

impl Drop for WaitingPoll<'_> {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.waiting_polls = inner.waiting_polls.saturating_sub(1);
    }
}
