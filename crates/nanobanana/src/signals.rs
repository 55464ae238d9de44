//! Wake-up signals for workers through a Redis stream (DESIGN §4 "Worker", §9 "Redis signals,
//! Postgres decides").
//!
//! After a generation is committed to Postgres, `Notifier::notify` appends an entry naming it;
//! a worker blocked in `Waiter::next` wakes within milliseconds and claims from Postgres. The
//! signal is only a hint: workers also poll Postgres, so a lost entry, a Redis restart or a
//! `FLUSHALL` only delays work. Entries are read through a consumer group with `NOACK`, so
//! each is acknowledged as it is read and goes to one worker. The stream is capped
//! (`MAX_STREAM_LEN`). This module must never hold job state: nothing here is needed to
//! finish a job.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamMaxlen, StreamReadOptions, StreamReadReply};
use redis::AsyncTypedCommands;
use tokio::time::Instant;
use uuid::Uuid;

/// The stream's key after the deployment's prefix, and its consumer group.
pub const STREAM: &str = "jobs:wake";
pub const GROUP: &str = "workers";
/// Every worker reads as this one consumer: with `NOACK` nothing is pending per consumer, so a
/// name per worker would only pile up in the group as workers come and go.
pub const CONSUMER: &str = "worker";
/// About this many entries are kept (`MAXLEN ~`); older ones are trimmed unread.
pub const MAX_STREAM_LEN: usize = 10_000;
/// At most this many entries per read.
pub const MAX_READ: usize = 128;
const FIELD: &str = "generation";

#[derive(Debug, thiserror::Error)]
#[error("Redis signal stream: {0}")]
pub struct SignalError(#[from] redis::RedisError);

/// The stream's full key under `prefix` (`REDIS_PREFIX`).
pub fn stream_key(prefix: &str) -> String {
    format!("{prefix}{STREAM}")
}

/// Sends wake-ups. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Notifier {
    conn: ConnectionManager,
    key: String,
}

impl Notifier {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, key: stream_key(prefix) }
    }

    /// Signals that generation `id` is queued. Call it after the commit that queued it. An
    /// error loses only the hint (workers poll): log it and carry on.
    pub async fn notify(&self, id: Uuid) -> Result<(), SignalError> {
        let mut conn = self.conn.clone();
        let maxlen = StreamMaxlen::Approx(MAX_STREAM_LEN);
        conn.xadd_maxlen(&self.key, maxlen, "*", &[(FIELD, id.to_string())]).await?;
        Ok(())
    }
}

/// What woke a worker up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Signals naming these generations arrived: claim now.
    Signalled(Vec<Uuid>),
    /// The poll interval passed (or Redis failed): claim anyway.
    Poll,
}

/// Receives wake-ups for one worker. Give it a connection of its own
/// (`crate::redis::connect_blocking`): it blocks on the stream.
pub struct Waiter {
    conn: ConnectionManager,
    key: String,
    group_ready: bool,
    healthy: bool,
}

impl Waiter {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, key: stream_key(prefix), group_ready: false, healthy: true }
    }

    /// Blocks until signals arrive or `block` (at most `redis::MAX_BLOCK`) passes; returns the
    /// generations named (none on timeout). Entries count as acknowledged once returned.
    pub async fn wait(&mut self, block: Duration) -> Result<Vec<Uuid>, SignalError> {
        if !self.group_ready {
            self.create_group().await?;
        }
        let block = block.min(crate::redis::MAX_BLOCK).max(Duration::from_millis(1));
        let options = StreamReadOptions::default()
            .group(GROUP, CONSUMER)
            .count(MAX_READ)
            .block(usize::try_from(block.as_millis()).unwrap_or(usize::MAX))
            .noack();
        let reply: Option<StreamReadReply> =
            match self.conn.xread_options(&[&self.key], &[">"], &options).await {
                Ok(reply) => reply,
                Err(error) => {
                    // The stream or its group may be gone (a Redis restart, FLUSHALL): recreate
                    // them before the next read.
                    self.group_ready = false;
                    return Err(error.into());
                }
            };
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        Ok(entries.filter_map(|e| e.get::<String>(FIELD)).filter_map(|s| Uuid::parse_str(&s).ok()).collect())
    }

    /// `wait` for the worker loop: never fails. Signals → `Signalled`; otherwise `Poll` once
    /// `poll_every` has passed, also when Redis is failing (then it waits out the interval
    /// instead of blocking on Redis, and logs the failure once until Redis recovers).
    pub async fn next(&mut self, poll_every: Duration) -> Wake {
        let started = Instant::now();
        match self.wait(poll_every).await {
            Ok(ids) => {
                if !self.healthy {
                    tracing::info!("Redis signals are back");
                    self.healthy = true;
                }
                if ids.is_empty() {
                    Wake::Poll
                } else {
                    Wake::Signalled(ids)
                }
            }
            Err(error) => {
                if self.healthy {
                    tracing::warn!(%error, "Redis signals failing; polling Postgres only");
                    self.healthy = false;
                }
                tokio::time::sleep_until(started + poll_every).await;
                Wake::Poll
            }
        }
    }

    /// Creates the stream and the group unless they exist. A new group starts at the
    /// beginning of the stream, so signals sent after a loss of Redis data are not missed.
    async fn create_group(&mut self) -> Result<(), SignalError> {
        match self.conn.xgroup_create_mkstream(&self.key, GROUP, "0").await {
            Ok(()) => {}
            Err(error) if error.code() == Some("BUSYGROUP") => {}
            Err(error) => return Err(error.into()),
        }
        self.group_ready = true;
        Ok(())
    }
}
