//! The fake Gemini's memory: queued behaviours, default latency and the record of requests
//! (with size and sha256 of each reference image) that tests read.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::behaviour::Behaviour;
use super::config::GeminiConfig;
use crate::common::server::Shutdown;

#[derive(Debug)]
pub struct GeminiState {
    pub config: GeminiConfig,
    pub inner: Mutex<Inner>,
    pub shutdown: Shutdown,
    /// Bumped when a request is recorded or starts.
    pub version: tokio::sync::watch::Sender<u64>,
    /// Connections accepted since the start (the server counts them).
    pub accepted: Arc<AtomicU64>,
}

impl GeminiState {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one `generateContent` call in flight until the guard is dropped.
    pub fn enter(self: &Arc<Self>, version: axum::http::Version) -> InFlight {
        {
            let mut inner = self.lock();
            inner.in_flight += 1;
            inner.peak_in_flight = inner.peak_in_flight.max(inner.in_flight);
            if version == axum::http::Version::HTTP_2 {
                inner.http2_calls += 1;
            } else {
                inner.http1_calls += 1;
            }
        }
        self.version.send_modify(|v| *v += 1);
        InFlight(self.clone())
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            in_flight: inner.in_flight,
            peak_in_flight: inner.peak_in_flight,
            http1_calls: inner.http1_calls,
            http2_calls: inner.http2_calls,
            connections: self.accepted.load(Ordering::Relaxed),
        }
    }

    /// Starts the peak and the call counts afresh (for a benchmark's run).
    pub fn reset_stats(&self) {
        let mut inner = self.lock();
        inner.peak_in_flight = inner.in_flight;
        inner.http1_calls = 0;
        inner.http2_calls = 0;
        self.accepted.store(0, Ordering::Relaxed);
    }
}

/// One `generateContent` call being answered.
#[derive(Debug)]
pub struct InFlight(Arc<GeminiState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.in_flight = inner.in_flight.saturating_sub(1);
    }
}

/// What the fake saw of its clients' concurrency (`GET /_fake/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `generateContent` calls being answered now, and the most at once.
    pub in_flight: usize,
    pub peak_in_flight: usize,
    /// `generateContent` calls that came over HTTP/1.x and over HTTP/2.
    pub http1_calls: u64,
    pub http2_calls: u64,
    /// TCP connections accepted.
    pub connections: u64,
}

/// A reference image as recorded (bytes are not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    pub mime_type: String,
    pub size: usize,
    pub sha256: String,
}

/// One generateContent call as the fake saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub model: String,
    pub prompt: String,
    pub aspect_ratio: Option<String>,
    pub image_size: Option<String>,
    pub seed: Option<i64>,
    pub references: Vec<ReferenceRecord>,
    /// HTTP status answered, or `None` for a dropped connection or a hang.
    pub status: Option<u16>,
    /// The behaviour applied, as a marker (e.g. "429:26").
    pub behaviour: Option<String>,
    /// "HTTP/1.1" or "HTTP/2.0".
    #[serde(default)]
    pub http_version: String,
    /// The turns of `contents` as received (one for a plain request; user and model turns
    /// alternating for an edit).
    #[serde(default)]
    pub turns: Vec<TurnRecord>,
    /// The `thoughtSignature`s of the answer's parts (what an edit must send back).
    #[serde(default)]
    pub signatures: Vec<String>,
}

/// One turn of a request's `contents`, as the fake received it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// `user` or `model`.
    pub role: String,
    pub texts: Vec<String>,
    /// The sha256 (hex) of each image part.
    pub images: Vec<String>,
    /// The `thoughtSignature`s its parts carried, in order.
    pub signatures: Vec<String>,
    /// Parts marked `thought: true` (a client should drop them).
    pub thoughts: usize,
}

pub const MAX_RECORDS: usize = 1_000;
pub const MAX_QUEUED: usize = 10_000;

#[derive(Debug, Default)]
pub struct Inner {
    /// Behaviours for the next requests, first in first out.
    pub queued: VecDeque<Behaviour>,
    pub latency_ms: u64,
    pub requests: VecDeque<RequestRecord>,
    pub in_flight: usize,
    pub peak_in_flight: usize,
    pub http1_calls: u64,
    pub http2_calls: u64,
    /// Model ids switched off: not listed, and 404 `NOT_FOUND` like an id Google retired.
    pub removed: std::collections::BTreeSet<String>,
    /// Every picture comes back at 1K whatever size was asked (a model that ignores `imageSize`).
    pub shrink: bool,
}

impl Inner {
    pub fn record(&mut self, record: RequestRecord) {
        if self.requests.len() >= MAX_RECORDS {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }
}
