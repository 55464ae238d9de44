//! The fake Gemini's memory: queued behaviours, default latency and the record of requests
//! (with size and sha256 of each reference image) that tests read.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::behaviour::Behaviour;
use super::config::GeminiConfig;
use crate::common::server::Shutdown;

#[derive(Debug)]
pub struct GeminiState {
    pub config: GeminiConfig,
    pub inner: Mutex<Inner>,
    pub shutdown: Shutdown,
    /// Bumped when a request is recorded.
    pub version: tokio::sync::watch::Sender<u64>,
}

impl GeminiState {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
}

pub const MAX_RECORDS: usize = 1_000;
pub const MAX_QUEUED: usize = 10_000;

#[derive(Debug, Default)]
pub struct Inner {
    /// Behaviours for the next requests, first in first out.
    pub queued: VecDeque<Behaviour>,
    pub latency_ms: u64,
    pub requests: VecDeque<RequestRecord>,
}

impl Inner {
    pub fn record(&mut self, record: RequestRecord) {
        if self.requests.len() >= MAX_RECORDS {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }
}
