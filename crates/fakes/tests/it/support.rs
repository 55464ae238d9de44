//! Test helpers: a JSON HTTP client and a recording HTTP receiver (webhook / notification
//! endpoint) whose answers a test scripts, with waits bounded by deadlines.

use std::future::ready;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use fakes::common::wait::{wait_until, Recheck};
use serde_json::Value;
use tokio::sync::watch;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// POSTs JSON and returns status and JSON body.
pub async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let response = client().post(url).json(body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let response = client().get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
    pub peer: SocketAddr,
}

type Script = Arc<dyn Fn(usize, &Value) -> StatusCode + Send + Sync>;

struct ReceiverState {
    log: Mutex<Vec<Received>>,
    version: watch::Sender<u64>,
    script: Script,
    delay: Duration,
    in_flight: Mutex<std::collections::HashMap<String, usize>>,
    max_in_flight_per_key: Mutex<usize>,
    key: fn(&Value) -> String,
}

/// An HTTP endpoint that records every POST and answers as scripted (by request number).
#[derive(Clone)]
pub struct Receiver {
    state: Arc<ReceiverState>,
    pub url: String,
}

impl Receiver {
    pub async fn start(script: impl Fn(usize, &Value) -> StatusCode + Send + Sync + 'static) -> Self {
        Self::start_with(script, Duration::ZERO, |_| String::new(), "127.0.0.1:0").await
    }

    /// `delay` is how long each answer takes (a slow handler); `key` groups requests for the
    /// in-flight count (e.g. by chat).
    pub async fn start_with(
        script: impl Fn(usize, &Value) -> StatusCode + Send + Sync + 'static,
        delay: Duration,
        key: fn(&Value) -> String,
        listen: &str,
    ) -> Self {
        let state = Arc::new(ReceiverState {
            log: Mutex::new(Vec::new()),
            version: watch::channel(0).0,
            script: Arc::new(script),
            delay,
            in_flight: Mutex::new(Default::default()),
            max_in_flight_per_key: Mutex::new(0),
            key,
        });
        let app = Router::new().route("/hook", post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        Self { state, url: format!("http://{addr}/hook") }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().expect("log").clone()
    }

    pub fn max_in_flight_per_key(&self) -> usize {
        *self.state.max_in_flight_per_key.lock().expect("max")
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let arrived = wait_until(WAIT, "requests", Recheck::on_change(&self.state.version), || {
            ready(Some(self.received()).filter(|received| received.len() >= n))
        });
        arrived
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {n} requests, got {:?}", self.received()))
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let key = (state.key)(&body);
    {
        let mut in_flight = state.in_flight.lock().expect("in flight");
        let count = in_flight.entry(key.clone()).or_default();
        *count += 1;
        let mut max = state.max_in_flight_per_key.lock().expect("max");
        *max = (*max).max(*count);
    }
    let n = {
        let mut log = state.log.lock().expect("log");
        log.push(Received { headers, body: body.clone(), peer });
        log.len()
    };
    state.version.send_modify(|v| *v += 1);
    // A slow handler: the answer comes after `delay` (the caller may give up before).
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    if let Some(count) = state.in_flight.lock().expect("in flight").get_mut(&key) {
        *count -= 1;
    }
    (state.script)(n, &body)
}

/// A fake Telegram with quick webhook retries.
pub async fn start_telegram() -> fakes::FakeTelegram {
    let config = fakes::TelegramConfig {
        webhook_retry_delay: Duration::from_millis(50),
        webhook_timeout: Duration::from_secs(2),
        ..fakes::TelegramConfig::default()
    };
    fakes::FakeTelegram::start(config).await.expect("start fake telegram")
}

/// Calls a Bot API method with a JSON body.
pub async fn call(tg: &fakes::FakeTelegram, method: &str, body: Value) -> (u16, Value) {
    post_json(&tg.method_url(method), &body).await
}

/// Calls a method expecting success and returns `result`.
pub async fn call_ok(tg: &fakes::FakeTelegram, method: &str, body: Value) -> Value {
    let (status, answer) = call(tg, method, body).await;
    assert_eq!(status, 200, "{method} failed: {answer}");
    assert_eq!(answer["ok"], true);
    answer["result"].clone()
}

/// Asserts Telegram's error envelope with this code and description.
pub fn assert_error(answer: &(u16, Value), code: u16, description: &str) {
    assert_eq!(answer.0, code, "{}", answer.1);
    assert_eq!(answer.1["ok"], false);
    assert_eq!(answer.1["error_code"], code);
    assert_eq!(answer.1["description"], description);
}
