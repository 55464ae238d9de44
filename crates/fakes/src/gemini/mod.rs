//! The fake Gemini API (image generation). [`FakeGemini::start`] runs it on a port (0
//! allowed); the handle queues behaviours and reads recorded requests. See the crate README.

use std::future::ready;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::{middleware, Router};

use crate::common::logging::log_requests;
use crate::common::server::{Protocols, RunningServer, Shutdown};
use crate::common::wait::{wait_until, Recheck, WaitTimeout};

pub mod behaviour;
mod config;
mod control;
pub mod error;
pub mod models;
pub mod request;
pub mod respond;
mod routes;
pub mod state;

pub use behaviour::Behaviour;
pub use config::{GeminiConfig, ImageFormat, GOOGLE_MAX_STREAMS};
pub use state::{ReferenceRecord, RequestRecord, Stats, TurnRecord};

use state::GeminiState;

/// A running fake Gemini. Dropping it stops the server and ends hanging requests.
#[derive(Debug)]
pub struct FakeGemini {
    server: RunningServer,
    state: Arc<GeminiState>,
}

/// Inline data may be up to 100 MB; JSON and base64 add a third.
pub(crate) const MAX_BODY: usize = 140 * 1024 * 1024;

impl FakeGemini {
    pub async fn start(config: GeminiConfig) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let listen = config.listen;
        let protocols = Protocols { http1_only: config.http1_only, max_streams: config.max_streams.max(1) };
        let accepted = Arc::new(AtomicU64::new(0));
        let state = Arc::new(GeminiState {
            config,
            inner: Mutex::new(state::Inner::default()),
            shutdown: shutdown.clone(),
            version: tokio::sync::watch::channel(0).0,
            accepted: accepted.clone(),
        });
        let router = Router::new()
            .merge(routes::router())
            .nest("/_fake", control::router())
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .layer(middleware::from_fn(|r, n| log_requests("gemini", r, n)))
            .with_state(state.clone());
        let listener = RunningServer::bind(listen).await?;
        let server = RunningServer::serve_protocols(listener, router, shutdown, protocols, accepted)?;
        tracing::info!(url = %server.base_url(), "fake gemini listening");
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT`: the API is at `{base_url}/v1beta/models/…`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn api_key(&self) -> &str {
        &self.state.config.api_key
    }

    /// The next `count` requests behave this way (after any prompt markers' latency).
    pub fn queue(&self, behaviour: Behaviour, count: usize) {
        let mut inner = self.state.lock();
        let room = state::MAX_QUEUED.saturating_sub(inner.queued.len());
        inner.queued.extend(std::iter::repeat_n(behaviour, count.min(room)));
    }

    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state.lock().latency_ms = latency.as_millis() as u64;
    }

    pub fn latency(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.state.lock().latency_ms)
    }

    /// The behaviours still queued for the next requests, first first.
    pub fn queued(&self) -> Vec<Behaviour> {
        self.state.lock().queued.iter().cloned().collect()
    }

    /// Stops serving model `id`: not listed, 404 `NOT_FOUND` to calls (as Google's retired ids).
    pub fn remove_model(&self, id: &str) {
        self.state.lock().removed.insert(id.to_owned());
    }

    pub fn restore_model(&self, id: &str) {
        self.state.lock().removed.remove(id);
    }

    /// While on, every picture comes back at 1K whatever size was asked.
    pub fn set_shrink(&self, on: bool) {
        self.state.lock().shrink = on;
    }

    pub fn clear_queue(&self) {
        self.state.lock().queued.clear();
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// Calls in flight now and at most at once, calls per HTTP version, connections accepted.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    pub fn reset_stats(&self) {
        self.state.reset_stats();
    }

    /// Waits until at least `n` `generateContent` calls were being answered at once.
    pub async fn wait_for_peak_in_flight(
        &self,
        n: usize,
        timeout: std::time::Duration,
    ) -> Result<Stats, WaitTimeout> {
        wait_until(timeout, "calls in flight at once", Recheck::on_change(&self.state.version), || {
            ready(Some(self.stats()).filter(|stats| stats.peak_in_flight >= n))
        })
        .await
    }

    /// Waits until at least `n` requests were recorded (a request is recorded once answered).
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: std::time::Duration,
    ) -> Result<Vec<RequestRecord>, WaitTimeout> {
        wait_until(timeout, "gemini requests", Recheck::on_change(&self.state.version), || {
            ready(Some(self.requests()).filter(|records| records.len() >= n))
        })
        .await
    }
}
