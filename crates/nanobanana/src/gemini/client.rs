//! The thin Gemini REST client: reqwest clients built from [`GeminiConfig`] (proxy, timeout,
//! key in `x-goog-api-key`, HTTP version; one per connection, `lanes`), `generateContent` and
//! the start-up model check. It owns transport only: what an answer means is `classify`'s, and
//! limits are `Limits`' — this file never waits for a slot, never retries, and never logs the
//! key or the prompt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use super::answer::{Gate, NoRoom};
use super::classify::classify;
use super::lanes::Lanes;
use super::outcome::{Outcome, Reply};
use super::request::Request;
use super::response::Usage;
use crate::config::GeminiConfig;
use crate::domain::ImageSize;

/// Answers larger than this are cut off: a 4K PNG plus two thought images in base64 fit well
/// below it.
const MAX_ANSWER: usize = 160 * 1024 * 1024;
/// `GET /v1beta/models` pages read at most.
const MAX_MODEL_PAGES: usize = 20;
/// Answers smaller than this are classified on the calling task.
const INLINE_CLASSIFY: usize = 256 * 1024;
/// Of a call's timeout (which also covers reading the answer), the share `generate_gated` may
/// spend waiting for its gate before it reads the answer anyway: the rest is left for reading.
const GATE_SHARE: (u32, u32) = (3, 4);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The proxy URL's text is not repeated: it may carry a password.
    #[error("GEMINI_PROXY is not a usable proxy URL (http, https, socks5 or socks5h)")]
    Proxy,
    #[error("GEMINI_API_KEY contains characters not allowed in an HTTP header")]
    Key,
    #[error("cannot build the Gemini HTTP client: {0}")]
    Build(reqwest::Error),
}

/// Why the start-up model check could not tell which models exist.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("listing Gemini models failed: {0}")]
    Request(#[from] ReadError),
    #[error("listing Gemini models answered {status}: {outcome:?}")]
    Answer { status: u16, outcome: Outcome },
    #[error("listing Gemini models: unreadable answer: {0}")]
    Unreadable(serde_json::Error),
}

#[derive(Clone)]
pub struct Client {
    lanes: Arc<Lanes>,
    timeout: Duration,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("gemini::Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: &GeminiConfig) -> Result<Self, ClientError> {
        let mut key = HeaderValue::from_str(config.api_key.expose()).map_err(|_| ClientError::Key)?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", key);
        Ok(Self {
            lanes: Arc::new(Lanes::new(config, headers)?),
            timeout: Duration::from_secs(u64::from(config.timeout_secs.max(1))),
            base: config.api_url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// Connections the calls are spread over (HTTP/2), or 1 (HTTP/1.1: one client whose pool
    /// opens a connection per call).
    pub fn lanes(&self) -> usize {
        self.lanes.count()
    }

    /// One `generateContent` call, classified. Never fails: transport trouble is an outcome.
    pub async fn generate(&self, request: &Request) -> Reply {
        self.generate_gated(request, None).await.0
    }

    /// `generate`, but once the answer starts to arrive it is admitted by `gate`: its share of
    /// the worker's byte budget is reserved (waiting until the call's deadline at most; else the
    /// answer is dropped as retryable), then its body is read only with a `finishing` permit
    /// (waiting at most `GATE_SHARE` of the call's timeout), which the caller keeps while it
    /// processes the answer, and the share grows if the body outgrows it. So a worker holding
    /// thousands of calls reads, decodes and stores a bounded number of answers at once, within
    /// its budget; the others wait in the socket (HTTP/1.1) or within their connection's HTTP/2
    /// flow-control window, never as decoded images.
    pub async fn generate_gated(
        &self,
        request: &Request,
        mut gate: Option<Gate<'_>>,
    ) -> (Reply, Option<OwnedSemaphorePermit>) {
        let url = format!("{}/v1beta/models/{}:generateContent", self.base, request.model_id);
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        // Held until the answer is read: the call occupies its connection's stream till then.
        let lane = self.lanes.take();
        // Its own statement, so the JSON tree is dropped before the wait: only its bytes travel.
        let call = lane.http().post(&url).json(&request.body());
        let sent = call.send().await;
        let mut permit = None;
        let (status, read) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let length = response.content_length().filter(|l| *l <= MAX_ANSWER as u64);
                let mut admitted = Ok(());
                if let Some(gate) = gate.as_mut() {
                    admitted = gate.admit(request.size, length, deadline).await;
                    if admitted.is_ok() {
                        // Bounded: the call's own timeout keeps running while it waits.
                        let until = started + self.timeout * GATE_SHARE.0 / GATE_SHARE.1;
                        let wait =
                            tokio::time::timeout_at(until.into(), gate.finishing.clone().acquire_owned());
                        permit = wait.await.ok().and_then(Result::ok);
                    }
                }
                let read = match admitted {
                    Err(no_room) => Err(ReadError::NoRoom(no_room)),
                    Ok(()) => {
                        let reading = Reading { gate: gate.as_mut(), size: request.size, deadline, length };
                        Box::pin(async {
                            match read_bounded(response, reading).await {
                                Ok(body) => Ok(classify_off_thread(status, body).await),
                                Err(e) => Err(e),
                            }
                        })
                        .await
                    }
                };
                (Some(status), read)
            }
            Err(e) => (None, Err(ReadError::Transport(e))),
        };
        drop(lane);
        let (outcome, usage) = read.unwrap_or_else(|e| (unread(&e), None));
        let latency = started.elapsed();
        tracing::debug!(model = %request.model_id, status, kind = outcome.kind(),
            latency_ms = latency.as_millis() as u64, "gemini generateContent");
        (Reply { outcome, usage, latency, status }, permit)
    }

    /// Which of `ids` `GET /v1beta/models` does not list (every page of it).
    pub async fn check_models(&self, ids: &[&str]) -> Result<Vec<String>, ModelsError> {
        let mut listed = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut query = vec![("pageSize", "1000".to_owned())];
            query.extend(page_token.take().map(|t| ("pageToken", t)));
            let url = format!("{}/v1beta/models", self.base);
            let lane = self.lanes.take();
            let response = lane.http().get(&url).query(&query).send().await.map_err(ReadError::from)?;
            let status = response.status().as_u16();
            let body = read_bounded(response, Reading::unbudgeted()).await?;
            drop(lane);
            if status != 200 {
                return Err(ModelsError::Answer { status, outcome: classify(status, &body).0 });
            }
            let page: ModelsPage = serde_json::from_slice(&body).map_err(ModelsError::Unreadable)?;
            listed.extend(page.models.into_iter().flatten().filter_map(|m| m.name));
            page_token = page.next_page_token.filter(|t| !t.is_empty());
            if page_token.is_none() {
                break;
            }
        }
        let known = |id: &str| listed.iter().any(|name| name.strip_prefix("models/").unwrap_or(name) == id);
        Ok(ids.iter().filter(|id| !known(id)).map(|id| (*id).to_owned()).collect())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelsPage {
    #[serde(default)]
    models: Option<Vec<ModelEntry>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ModelEntry {
    #[serde(default)]
    name: Option<String>,
}

/// Parsing and base64-decoding a large answer (a 4K image is tens of MB) takes milliseconds of
/// CPU: done on the blocking pool so the runtime keeps serving the other calls.
async fn classify_off_thread(status: u16, body: Vec<u8>) -> (Outcome, Option<Usage>) {
    if body.len() < INLINE_CLASSIFY {
        return classify(status, &body);
    }
    tokio::task::spawn_blocking(move || classify(status, &body)).await.unwrap_or_else(|e| {
        (Outcome::Retryable { after: None, reason: format!("classifying the answer failed: {e}") }, None)
    })
}

/// Why no complete answer was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("answer larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error(transparent)]
    NoRoom(NoRoom),
}

/// How a body is read: within a gate's budget (or not), for a picture of `size`.
struct Reading<'g, 'a> {
    gate: Option<&'g mut Gate<'a>>,
    size: Option<ImageSize>,
    deadline: tokio::time::Instant,
    /// `Content-Length`, when the server said (and it is within `MAX_ANSWER`).
    length: Option<u64>,
}

impl Reading<'_, '_> {
    fn unbudgeted() -> Self {
        let deadline = tokio::time::Instant::now();
        Reading { gate: None, size: None, deadline, length: None }
    }
}

/// The whole body, up to [`MAX_ANSWER`] bytes. Within a gate, every allocation for it is
/// accounted before it is made (the admitted `Content-Length` is allocated at once).
async fn read_bounded(
    mut response: reqwest::Response,
    mut reading: Reading<'_, '_>,
) -> Result<Vec<u8>, ReadError> {
    let first = match reading.gate {
        Some(_) => reading.length.unwrap_or(0),
        None => response.content_length().unwrap_or(0).min(1 << 20),
    };
    let mut body = Vec::with_capacity(first as usize);
    while let Some(chunk) = response.chunk().await? {
        let wanted = body.len() + chunk.len();
        if wanted > MAX_ANSWER {
            return Err(ReadError::TooLarge);
        }
        if wanted > body.capacity() {
            let capacity = (body.capacity() * 2).max(wanted).clamp(1 << 16, MAX_ANSWER);
            if let Some(gate) = reading.gate.as_mut() {
                gate.account(reading.size, capacity as u64, reading.deadline)
                    .await
                    .map_err(ReadError::NoRoom)?;
            }
            body.reserve_exact(capacity - body.len());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A call that got no complete answer: worth another try.
fn unread(error: &ReadError) -> Outcome {
    match error {
        ReadError::Transport(e) => transport(e),
        ReadError::TooLarge => Outcome::BadImage { reason: error.to_string() },
        ReadError::NoRoom(_) => Outcome::Retryable { after: None, reason: error.to_string() },
    }
}

fn transport(error: &reqwest::Error) -> Outcome {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "connection dropped while reading the answer"
    } else {
        "request failed"
    };
    let source = std::error::Error::source(error).map(|s| format!(": {s}")).unwrap_or_default();
    Outcome::Retryable { after: None, reason: format!("{what}{source}") }
}
