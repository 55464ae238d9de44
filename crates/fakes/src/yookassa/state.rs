//! The fake YooKassa's memory: payments, refunds, remembered Idempotence-Key answers, armed
//! API faults, the notification mode and every notification attempt. One mutex, never held
//! across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{watch, Semaphore};

use super::config::YooKassaConfig;
use crate::common::server::Shutdown;

#[derive(Debug)]
pub struct YkState {
    pub config: YooKassaConfig,
    /// Base of checkout URLs.
    pub public_url: String,
    pub inner: Mutex<Inner>,
    /// Bumped on every payment, refund or notification change (tests wait on it).
    pub version: watch::Sender<u64>,
    pub shutdown: Shutdown,
    /// Client for notifications, bound to the configured source address.
    pub notifier: reqwest::Client,
    /// Bounds concurrent notification POSTs.
    pub sending: Semaphore,
    /// Weak self-reference so code holding `&YkState` can spawn tasks that own the state.
    pub me: Weak<YkState>,
    /// Serializes idempotent POSTs (check, execute, remember) without holding `inner`.
    pub gate: Mutex<()>,
}

impl YkState {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn self_ref(&self) -> Option<Arc<YkState>> {
        self.me.upgrade()
    }

    pub fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub object: Value,
    pub cents: i64,
    pub currency: String,
    pub capture: bool,
    pub refunded_cents: i64,
    pub created: Instant,
}

impl Payment {
    pub fn status(&self) -> &str {
        self.object["status"].as_str().unwrap_or("")
    }
}

/// An answer remembered under an Idempotence-Key.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub path: String,
    pub body: Value,
    pub status: u16,
    pub answer: Value,
    pub at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiFaultKind {
    /// 500 internal_server_error.
    #[serde(rename = "500")]
    ServerError,
    /// No answer for `hang`, then 500 (the client times out first).
    #[serde(rename = "timeout")]
    Timeout,
    /// 202 `{"type":"processing"}` as the older API answered.
    #[serde(rename = "202")]
    Processing,
}

/// "The next `count` API calls (whose path starts with `path`, if given) fail with `kind`".
/// With `processed`, the request takes effect (and is remembered under its key) even though
/// the answer is the fault: the outcome-unknown case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFault {
    pub kind: ApiFaultKind,
    pub count: u32,
    #[serde(default)]
    pub processed: bool,
    #[serde(default)]
    pub path: Option<String>,
    /// Only requests with this HTTP method (`GET`, `POST`); any method when absent, so a fault
    /// meant for a create can be kept from a poller's `GET` of the same path.
    #[serde(default)]
    pub method: Option<String>,
}

/// How notifications go out. Set through the control API; stays until changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyMode {
    /// Each notification is sent as this many concurrent copies (0 or 1: once).
    #[serde(default)]
    pub duplicate: u32,
    /// Wait before the first attempt.
    #[serde(default)]
    pub delay_ms: u64,
    /// The next N notifications are never sent.
    #[serde(default)]
    pub drop_next: u32,
    /// Hold notifications until released (then they go in the order asked, e.g. reversed).
    #[serde(default)]
    pub hold: bool,
}

/// A notification to send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub seq: u64,
    pub event: String,
    pub object: Value,
}

/// One attempt to deliver one copy of a notification (attempt 0: dropped or held).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub seq: u64,
    pub event: String,
    pub object_id: String,
    pub copy: u32,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// One API request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub idempotence_key: Option<String>,
    pub status: u16,
    pub replayed: bool,
}

pub const MAX_RECORDS: usize = 10_000;
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct Inner {
    pub payments: BTreeMap<String, Payment>,
    pub refunds: BTreeMap<String, Value>,
    /// `confirmation.return_url` of each payment (the object loses `confirmation` once paid).
    pub return_urls: HashMap<String, String>,
    pub idempotence: HashMap<String, Remembered>,
    pub faults: Vec<ApiFault>,
    pub mode: NotifyMode,
    pub held: Vec<Notification>,
    pub next_seq: u64,
    pub notifications: VecDeque<NotificationRecord>,
    pub requests: VecDeque<RequestRecord>,
    /// The next this many refunds stay `pending` until finished through the control API.
    pub pending_refunds: u32,
}

impl Inner {
    pub fn forget_expired_keys(&mut self, ttl: Duration) {
        let now = Instant::now();
        self.idempotence.retain(|_, r| now.duration_since(r.at) < ttl);
        if self.idempotence.len() >= MAX_KEYS {
            let oldest = self.idempotence.iter().min_by_key(|(_, r)| r.at).map(|(k, _)| k.clone());
            if let Some(key) = oldest {
                self.idempotence.remove(&key);
            }
        }
    }

    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<ApiFault> {
        let index = self.faults.iter().position(|f| {
            f.count > 0
                && f.path.as_deref().is_none_or(|p| path.starts_with(p))
                && f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let fault = &mut self.faults[index];
        fault.count -= 1;
        let taken = fault.clone();
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }

    pub fn record_notification(&mut self, record: NotificationRecord) {
        if self.notifications.len() >= MAX_RECORDS {
            self.notifications.pop_front();
        }
        self.notifications.push_back(record);
    }

    pub fn record_request(&mut self, record: RequestRecord) {
        if self.requests.len() >= MAX_RECORDS {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn remembered(age: Duration) -> Remembered {
        let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        Remembered { path: "/v3/payments".into(), body: json!({}), status: 200, answer: json!({}), at }
    }

    #[test]
    fn idempotence_keys_are_forgotten_after_the_ttl() {
        let mut inner = Inner::default();
        inner.idempotence.insert("old".into(), remembered(Duration::from_secs(25 * 3600)));
        inner.idempotence.insert("new".into(), remembered(Duration::from_secs(23 * 3600)));
        inner.forget_expired_keys(Duration::from_secs(24 * 3600));
        assert!(!inner.idempotence.contains_key("old"));
        assert!(inner.idempotence.contains_key("new"));
    }

    #[test]
    fn faults_match_by_path_prefix_and_count_down() {
        let mut inner = Inner::default();
        inner.faults.push(ApiFault {
            kind: ApiFaultKind::ServerError,
            count: 2,
            processed: false,
            path: Some("/v3/refunds".into()),
            method: None,
        });
        assert_eq!(inner.take_fault("POST", "/v3/payments"), None);
        assert!(inner.take_fault("POST", "/v3/refunds").is_some());
        assert!(inner.take_fault("GET", "/v3/refunds/abc").is_some());
        assert_eq!(inner.take_fault("POST", "/v3/refunds"), None);
    }

    #[test]
    fn a_fault_for_one_method_leaves_the_other_alone() {
        let mut inner = Inner::default();
        inner.faults.push(ApiFault {
            kind: ApiFaultKind::ServerError,
            count: 1,
            processed: false,
            path: Some("/v3/payments".into()),
            method: Some("POST".into()),
        });
        assert_eq!(inner.take_fault("GET", "/v3/payments/abc"), None, "the poller's GET is not hit");
        assert!(inner.take_fault("post", "/v3/payments").is_some());
    }
}
