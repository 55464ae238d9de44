//! The scenario's load balancer: one public address in front of every `serve` process, as a
//! platform's router would be. Telegram's webhook and YooKassa's notifications go to it; it
//! forwards each request to the next `serve` that accepts a connection, and answers 502 when
//! none does (or when the chosen one dies mid-request), so the sender retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Forwarded request headers; everything else is dropped.
const HEADERS: &[&str] = &["content-type", "x-telegram-bot-api-secret-token"];
const MAX_BODY: usize = 4 * 1024 * 1024;

struct Balancer {
    ports: Vec<u16>,
    next: AtomicUsize,
    http: reqwest::Client,
}

/// Starts the balancer on 127.0.0.1 (port 0) in front of `ports`; its base URL and task.
pub async fn start(ports: Vec<u16>) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build()?;
    let balancer = Arc::new(Balancer { ports, next: AtomicUsize::new(0), http });
    let app = axum::Router::new().fallback(forward).with_state(balancer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, task))
}

async fn forward(State(balancer): State<Arc<Balancer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let start = balancer.next.fetch_add(1, Ordering::Relaxed);
    for i in 0..balancer.ports.len() {
        let port = balancer.ports[(start + i) % balancer.ports.len()];
        let mut call = balancer.http.request(parts.method.clone(), format!("http://127.0.0.1:{port}{path}"));
        for name in HEADERS {
            if let Some(value) = parts.headers.get(*name) {
                call = call.header(*name, value.clone());
            }
        }
        match call.body(body.clone()).send().await {
            Ok(answer) => {
                let status = answer.status();
                let bytes = answer.bytes().await.unwrap_or_default();
                return (status, Body::from(bytes)).into_response();
            }
            // Nobody there (killed, restarting): the next one.
            Err(e) if e.is_connect() => continue,
            Err(_) => return (StatusCode::BAD_GATEWAY, "backend failed mid-request").into_response(),
        }
    }
    (StatusCode::BAD_GATEWAY, "no backend").into_response()
}
