//! The web chat's HTTP server: the page and its script and style (embedded in the binary, so
//! it works offline), files the chat shows (from the fake Telegram), the fake YooKassa's
//! checkout page passed through under the same address, and the JSON API.

use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{api, World};

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/chat.js");
const STYLE: &str = include_str!("assets/chat.css");
/// Ten photos of up to 5 MB each, base64 in JSON.
const MAX_BODY: usize = 72 * 1024 * 1024;

pub async fn serve(
    world: Arc<World>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let router = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/chat.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/chat.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/terms", get(|| async { Html(legal("Terms of use")) }))
        .route("/privacy", get(|| async { Html(legal("Privacy policy")) }))
        .route("/files/{file_id}", get(file))
        .route("/checkout/{id}", get(checkout))
        .route("/checkout/{id}/{action}", axum::routing::post(checkout_action))
        .nest("/api", api::router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(local_host_only))
        .with_state(world);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .context("sandbox web chat")
}

/// DNS rebinding: a page on `evil.example` whose name later resolves to 127.0.0.1 could drive
/// the chat (and its admin) from the victim's browser. Such a request carries the attacker's
/// name in `Host`, so only `localhost` and IP literals are served.
async fn local_host_only(request: Request, next: axum::middleware::Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if host_is_local(host) {
        next.run(request).await
    } else {
        (StatusCode::MISDIRECTED_REQUEST, "the sandbox answers only localhost and IP addresses")
            .into_response()
    }
}

/// `localhost`, `127.0.0.1:8088`, `[::1]:8088`, `192.168.1.5`: a name nobody else can point here.
fn host_is_local(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// The pages the bot links to before a first payment; in the sandbox, placeholders.
fn legal(title: &str) -> String {
    format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{title}</title><h1>{title}</h1>\
         <p>This is the sandbox: no real money, users or pictures. The operator publishes the real \
         text at TERMS_URL and PRIVACY_URL.</p><p><a href=\"/\">Back to the chat</a></p>"
    )
}

/// A file the bot or a user sent, as the fake Telegram holds it.
async fn file(State(world): State<Arc<World>>, Path(file_id): Path<String>) -> Response {
    let found = world.tg.state().lock().files.get(&file_id).map(|f| (f.bytes.clone(), f.mime_type.clone()));
    let Some((bytes, mime)) = found else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mime = mime.unwrap_or_else(|| "application/octet-stream".into());
    let content_type =
        HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let cache = HeaderValue::from_static("private, max-age=86400, immutable");
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], bytes).into_response()
}

async fn checkout(State(world): State<Arc<World>>, Path(id): Path<String>, request: Request) -> Response {
    forward(&world, Method::GET, &format!("/checkout/{id}"), request).await
}

async fn checkout_action(
    State(world): State<Arc<World>>,
    Path((id, action)): Path<(String, String)>,
    request: Request,
) -> Response {
    if !matches!(action.as_str(), "pay" | "cancel") {
        return (StatusCode::NOT_FOUND, "no such checkout action").into_response();
    }
    forward(&world, Method::POST, &format!("/checkout/{id}/{action}"), request).await
}

/// Passes a checkout request to the fake YooKassa and its answer back, redirects included
/// (after Pay or Cancel the page sends the browser to the payment's return URL: this chat).
async fn forward(world: &World, method: Method, path: &str, request: Request) -> Response {
    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
    };
    let mut outgoing = world.http.request(method, format!("{}{path}", world.yk.base_url())).body(body);
    if let Some(content_type) = content_type {
        outgoing = outgoing.header(header::CONTENT_TYPE, content_type);
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "fake YooKassa checkout did not answer");
            return (StatusCode::BAD_GATEWAY, "the fake YooKassa did not answer").into_response();
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(value) =
            answer.headers().get(name.as_str()).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_names_and_addresses_are_hosts() {
        for host in ["localhost", "localhost:8088", "127.0.0.1:8088", "[::1]:8088", "10.0.0.5"] {
            assert!(super::host_is_local(host), "{host}");
        }
        for host in ["", "evil.example", "evil.example:8088", "127.0.0.1.nip.io:8088", "localhost.evil"] {
            assert!(!super::host_is_local(host), "{host}");
        }
    }
}
