//! The global Gemini limits: at most `max_concurrency` calls in flight in this process (a
//! semaphore), at most `requests_per_minute` calls started across all processes (a sliding
//! window in Redis), and a shared "slow down until T" that a 429 with a delay sets and every
//! process honours. Time is Redis' clock (`TIME` inside the scripts), so processes agree.
//!
//! Every key starts with the prefix given, so tests and deployments isolate by prefix. Waiting
//! is bounded: past `max_wait` the caller gets [`LimitError::Busy`] and should requeue its job,
//! never wait forever. Redis only holds limiter state: losing it loses nothing but pacing.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::GeminiConfig;

/// A slow-down longer than this is cut to it (a per-day quota is `DailyQuota`, not a delay).
const MAX_SLOW_DOWN: Duration = Duration::from_secs(600);
/// The window of `requests_per_minute`.
pub const MINUTE: Duration = Duration::from_secs(60);

/// Times are microseconds, passed to Redis through `%.0f` so no digit is lost to Lua's
/// number formatting.
///
/// KEYS: window zset, slow-until key. ARGV: limit, window (µs), member.
/// Returns {1, 0} when a slot was taken, else {0, µs to wait}.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slow = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if slow > now then return {0, slow - now} end
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now + 1}
";

/// KEYS: slow-until key. ARGV: delay (µs). Moves "slow until" later, never earlier.
const SLOW_DOWN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local delay = tonumber(ARGV[1])
local wanted = now + delay
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if wanted > current then
  redis.call('SET', KEYS[1], string.format('%.0f', wanted), 'PX', math.ceil(delay / 1000) + 1000)
end
return 1
";

/// KEYS: slow-until key. Returns µs until it passes (0 if not slowed).
const SLOWED_FOR: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slow = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if slow > now then return slow - now end
return 0
";

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// No slot within `max_wait`; `retry_after` is when one is expected, if known.
    #[error("no Gemini slot free in time (expected in {retry_after:?})")]
    Busy { retry_after: Option<Duration> },
    #[error("Gemini limiter: redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Every Redis key starts with it, e.g. `nb:` in production, `nbtest:{uuid}:` in tests.
    pub prefix: String,
    pub max_concurrency: u32,
    pub requests_per_minute: u32,
    /// The window `requests_per_minute` counts over: [`MINUTE`] except in tests.
    pub window: Duration,
    /// The longest [`Limits::acquire`] waits before answering `Busy`.
    pub max_wait: Duration,
}

impl LimitSettings {
    pub fn from_config(config: &GeminiConfig, prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            max_concurrency: config.max_concurrency,
            requests_per_minute: config.requests_per_minute,
            window: MINUTE,
            max_wait: MINUTE,
        }
    }
}

/// Held for the duration of one call; dropping it frees the process-local slot.
#[derive(Debug)]
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

/// Cheap to clone; clones share the semaphore.
#[derive(Clone)]
pub struct Limits {
    semaphore: Arc<Semaphore>,
    redis: ConnectionManager,
    window_key: String,
    slow_key: String,
    settings: Arc<LimitSettings>,
    scripts: Arc<[Script; 3]>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Limits {
    pub fn new(redis: ConnectionManager, settings: LimitSettings) -> Self {
        let permits = (settings.max_concurrency.max(1) as usize).min(Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            redis,
            window_key: format!("{}gemini:rpm", settings.prefix),
            slow_key: format!("{}gemini:slow_until", settings.prefix),
            settings: Arc::new(settings),
            scripts: Arc::new([Script::new(ACQUIRE), Script::new(SLOW_DOWN), Script::new(SLOWED_FOR)]),
        }
    }

    /// Calls in flight in this process right now.
    pub fn in_flight(&self) -> usize {
        (self.settings.max_concurrency.max(1) as usize).saturating_sub(self.semaphore.available_permits())
    }

    /// Waits (at most `max_wait`) for a local slot, then for the shared slow-down to pass and a
    /// slot in the per-minute window. A window slot once taken counts even if the call fails.
    pub async fn acquire(&self) -> Result<Permit, LimitError> {
        let deadline = Instant::now() + self.settings.max_wait;
        let slot = tokio::time::timeout_at(deadline, self.semaphore.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(LimitError::Busy { retry_after: None })?;
        let member = uuid::Uuid::new_v4().simple().to_string();
        loop {
            let (granted, wait_us): (i64, i64) = self.scripts[0]
                .key(&self.window_key)
                .key(&self.slow_key)
                .arg(self.settings.requests_per_minute)
                .arg(micros(self.settings.window))
                .arg(&member)
                .invoke_async(&mut self.redis.clone())
                .await?;
            if granted == 1 {
                return Ok(Permit { _slot: slot });
            }
            let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0).max(1_000));
            if Instant::now() + wait > deadline {
                return Err(LimitError::Busy { retry_after: Some(wait) });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Makes every process wait `delay` (capped at ten minutes) before its next call; an
    /// earlier, longer slow-down stays.
    pub async fn slow_down(&self, delay: Duration) -> Result<(), LimitError> {
        let delay = micros(delay.min(MAX_SLOW_DOWN)).max(1);
        let _: i64 =
            self.scripts[1].key(&self.slow_key).arg(delay).invoke_async(&mut self.redis.clone()).await?;
        Ok(())
    }

    /// How long calls are still held back by a shared slow-down, if at all.
    pub async fn slowed_for(&self) -> Result<Option<Duration>, LimitError> {
        let left: i64 = self.scripts[2].key(&self.slow_key).invoke_async(&mut self.redis.clone()).await?;
        Ok((left > 0).then(|| Duration::from_micros(left.unsigned_abs())))
    }
}
