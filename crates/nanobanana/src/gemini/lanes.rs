//! The HTTP connections to Gemini. HTTP/2 carries many calls on one connection, but a server
//! lets a connection carry only so many at once (Google: 100), and hyper queues the rest on
//! that connection instead of opening another. So the client keeps lanes — each its own
//! reqwest client, hence its own connection — and every call takes the least busy lane,
//! opening a new lane when all of them carry `GEMINI_STREAMS_PER_CONNECTION` calls. Over
//! HTTP/1.1 (a connection per call anyway) there is one lane with no limit.
//!
//! This file owns which connection a call uses and nothing else: it never reads an answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::client::ClientError;
use crate::config::{GeminiConfig, HttpVersion};

/// No more lanes than this (a million HTTP/2 calls at Google's 100 per connection); past it
/// the least busy lane takes the call and hyper queues it there.
const MAX_LANES: usize = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// HTTP/2 flow control: what one call's answer may send before it is read. An answer that
/// waits for its turn to be read (the worker's gate) holds its window unread; the connection's
/// window is every stream's together, so answers waiting on some calls never stall the others
/// of the same connection (with hyper's defaults, 5 MB for the connection, two or three 4K
/// images waiting would stop every call on it until they were read).
const STREAM_WINDOW: u32 = 1 << 20;

/// How every lane's reqwest client is built.
struct Recipe {
    headers: HeaderMap,
    timeout: Duration,
    proxy: Option<String>,
    version: HttpVersion,
    /// `http://`: HTTP/2 there is h2c, never negotiated.
    plain: bool,
    max_idle: usize,
    /// Calls a connection carries at once (HTTP/2).
    streams: u32,
}

impl Recipe {
    fn build(&self) -> Result<reqwest::Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            // Never more idle connections than calls one process may make at once: a burst of
            // HTTP/1.1 calls (a connection each, ~16 KB of buffers) is not kept open after it.
            .pool_max_idle_per_host(self.max_idle)
            .default_headers(self.headers.clone())
            // The key travels in a default header: a redirect would carry it to whoever the
            // answer names. Gemini does not redirect; an answer that does is an error.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(self.timeout));
        builder = match (self.version, self.plain) {
            (HttpVersion::Http2, _) => builder.http2_prior_knowledge(),
            (HttpVersion::Http1, _) | (HttpVersion::Auto, true) => builder.http1_only(),
            // TLS offers h2 and http/1.1; the server picks.
            (HttpVersion::Auto, false) => builder,
        };
        if !matches!(self.version, HttpVersion::Http1) {
            let connection_window = STREAM_WINDOW.saturating_mul(self.streams.max(1)).min(i32::MAX as u32);
            builder = builder
                .http2_initial_stream_window_size(STREAM_WINDOW)
                .http2_initial_connection_window_size(connection_window);
        }
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|_| ClientError::Proxy)?);
        }
        builder.build().map_err(ClientError::Build)
    }

    /// Whether calls may share a connection, so that a lane's calls must be bounded.
    fn multiplexed(&self) -> bool {
        match self.version {
            HttpVersion::Http2 => true,
            HttpVersion::Http1 => false,
            HttpVersion::Auto => !self.plain,
        }
    }
}

pub(super) struct Lanes {
    recipe: Recipe,
    per_lane: usize,
    lanes: RwLock<Vec<Arc<Lane>>>,
}

struct Lane {
    http: reqwest::Client,
    busy: AtomicUsize,
}

/// A call's place on a lane, given back when dropped (after the answer was read).
pub(super) struct Ticket(Arc<Lane>);

impl Ticket {
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.0.http
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lanes {
    /// Builds the first lane, so that a bad proxy or key fails at start-up.
    pub(super) fn new(config: &GeminiConfig, headers: HeaderMap) -> Result<Self, ClientError> {
        let recipe = Recipe {
            headers,
            timeout: Duration::from_secs(u64::from(config.timeout_secs.max(1))),
            proxy: config.proxy.as_ref().map(|p| p.expose().as_str().to_owned()),
            version: config.http_version,
            plain: config.api_url.scheme() == "http",
            max_idle: config.max_concurrency.max(1) as usize,
            streams: config.streams_per_connection,
        };
        let per_lane =
            if recipe.multiplexed() { config.streams_per_connection.max(1) as usize } else { usize::MAX };
        let first = Arc::new(Lane { http: recipe.build()?, busy: AtomicUsize::new(0) });
        Ok(Self { recipe, per_lane, lanes: RwLock::new(vec![first]) })
    }

    /// The least busy lane with room, a new lane when none has room, or (at `MAX_LANES`, or
    /// if a new client cannot be built) the least busy lane anyway.
    pub(super) fn take(&self) -> Ticket {
        if let Some(ticket) = self.room(&self.read()) {
            return ticket;
        }
        let mut lanes = self.write();
        if let Some(ticket) = self.room(&lanes) {
            return ticket;
        }
        if lanes.len() < MAX_LANES {
            match self.recipe.build() {
                Ok(http) => {
                    let lane = Arc::new(Lane { http, busy: AtomicUsize::new(1) });
                    lanes.push(lane.clone());
                    tracing::debug!(lanes = lanes.len(), "another Gemini connection");
                    return Ticket(lane);
                }
                Err(error) => tracing::warn!(%error, "cannot open another Gemini connection"),
            }
        }
        let lane = Self::least_busy(&lanes);
        lane.busy.fetch_add(1, Ordering::AcqRel);
        Ticket(lane)
    }

    /// How many lanes (hence connections, over HTTP/2) there are.
    pub(super) fn count(&self) -> usize {
        self.read().len()
    }

    fn room(&self, lanes: &[Arc<Lane>]) -> Option<Ticket> {
        loop {
            let lane = Self::least_busy(lanes);
            let busy = lane.busy.load(Ordering::Acquire);
            if busy >= self.per_lane {
                return None;
            }
            // Lost to another call taking the same lane: look again.
            if lane.busy.compare_exchange(busy, busy + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Some(Ticket(lane));
            }
        }
    }

    /// `lanes` is never empty: the first lane is built in `new` and lanes are never removed.
    fn least_busy(lanes: &[Arc<Lane>]) -> Arc<Lane> {
        let lane = lanes.iter().min_by_key(|lane| lane.busy.load(Ordering::Acquire));
        lane.unwrap_or_else(|| unreachable!("Lanes always holds its first lane")).clone()
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Arc<Lane>>> {
        self.lanes.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Arc<Lane>>> {
        self.lanes.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
