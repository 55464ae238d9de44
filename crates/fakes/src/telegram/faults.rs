//! Fault injection (the next N calls of a method fail in a chosen way) and the optional strict
//! pace mode that answers 429 like Telegram's flood control.

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::error::TgError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// 429 Too Many Requests with `parameters.retry_after`.
    #[serde(rename = "429")]
    TooManyRequests,
    /// 403 Forbidden: bot was blocked by the user.
    #[serde(rename = "403")]
    Blocked,
    /// 500 Internal Server Error.
    #[serde(rename = "500")]
    ServerError,
    /// 400 Bad Request (a permanent refusal).
    #[serde(rename = "400")]
    BadRequest,
    /// 502 Bad Gateway (a proxy in front of the Bot API, or the API itself, is down).
    #[serde(rename = "502")]
    BadGateway,
}

/// "The next `count` calls of `method` fail with `kind`". `method` "*" matches every method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub method: String,
    pub count: u32,
    pub kind: FaultKind,
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The call is carried out first and only its answer is the error: the caller cannot
    /// know it happened (a lost answer).
    #[serde(default)]
    pub processed: bool,
}

impl Fault {
    pub fn error(&self) -> TgError {
        match self.kind {
            FaultKind::TooManyRequests => TgError::too_many_requests(self.retry_after.unwrap_or(1)),
            FaultKind::Blocked => TgError::blocked(),
            FaultKind::ServerError => TgError::internal(),
            FaultKind::BadGateway => TgError::bad_gateway(),
            FaultKind::BadRequest => TgError::bad_request("wrong file identifier/HTTP URL specified"),
        }
    }
}

/// Takes one matching fault, if any is armed for `method`: its error, and whether the call is
/// carried out before it is answered with that error.
pub fn take(faults: &mut Vec<Fault>, method: &str) -> Option<(TgError, bool)> {
    let index = faults
        .iter()
        .position(|f| f.count > 0 && (f.method == "*" || f.method.eq_ignore_ascii_case(method)))?;
    let fault = &mut faults[index];
    fault.count -= 1;
    let error = (fault.error(), fault.processed);
    if fault.count == 0 {
        faults.remove(index);
    }
    Some(error)
}

/// Token buckets: per chat 1/s with a burst of 3, overall 30/s with a burst of 30.
#[derive(Debug, Default)]
pub struct Pace {
    pub strict: bool,
    chats: HashMap<i64, Bucket>,
    global: Option<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Self { tokens: capacity, at: now }
    }

    fn refill(&mut self, rate: f64, capacity: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.at = now;
    }

    fn wait_for(&self, n: f64, rate: f64) -> u64 {
        ((n - self.tokens) / rate).ceil().max(1.0) as u64
    }
}

const CHAT_RATE: f64 = 1.0;
const CHAT_BURST: f64 = 3.0;
const GLOBAL_RATE: f64 = 30.0;
const GLOBAL_BURST: f64 = 30.0;
const MAX_TRACKED_CHATS: usize = 100_000;

impl Pace {
    /// Spends `n` messages for `chat_id`, or says how long to wait (seconds) as a 429.
    pub fn spend(&mut self, chat_id: i64, n: u32, now: Instant) -> Result<(), TgError> {
        if !self.strict {
            return Ok(());
        }
        let n = f64::from(n);
        if self.chats.len() >= MAX_TRACKED_CHATS {
            self.chats.clear();
        }
        let mut chat = self.chats.get(&chat_id).copied().unwrap_or_else(|| Bucket::full(CHAT_BURST, now));
        let mut global = self.global.unwrap_or_else(|| Bucket::full(GLOBAL_BURST, now));
        chat.refill(CHAT_RATE, CHAT_BURST, now);
        global.refill(GLOBAL_RATE, GLOBAL_BURST, now);
        if chat.tokens < n {
            return Err(TgError::too_many_requests(chat.wait_for(n, CHAT_RATE)));
        }
        if global.tokens < n {
            return Err(TgError::too_many_requests(global.wait_for(n, GLOBAL_RATE)));
        }
        chat.tokens -= n;
        global.tokens -= n;
        self.chats.insert(chat_id, chat);
        self.global = Some(global);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn faults_are_consumed_in_order() {
        let mut faults = vec![Fault {
            method: "sendMessage".into(),
            count: 2,
            kind: FaultKind::Blocked,
            retry_after: None,
            processed: false,
        }];
        assert_eq!(take(&mut faults, "getMe"), None);
        assert_eq!(take(&mut faults, "sendmessage").map(|e| e.0.code), Some(403));
        assert_eq!(take(&mut faults, "sendMessage").map(|e| e.0.code), Some(403));
        assert_eq!(take(&mut faults, "sendMessage"), None);
    }

    #[test]
    fn strict_pace_tolerates_a_burst_then_answers_429() {
        let mut pace = Pace { strict: true, ..Pace::default() };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(pace.spend(1, 1, t0).is_ok());
        }
        let error = pace.spend(1, 1, t0).expect_err("fourth message in the same instant");
        assert_eq!((error.code, error.retry_after), (429, Some(1)));
        assert!(pace.spend(2, 1, t0).is_ok(), "other chats are not affected");
        assert!(pace.spend(1, 1, t0 + Duration::from_millis(1100)).is_ok());
    }
}
