//! Request logging middleware: one line per request with method, path, status and duration.
//! Owns redaction of secrets that appear in paths (the Telegram bot token); it never logs
//! bodies or headers, which carry keys and card-like data.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Logs every request the fake receives. `fake` names the fake in the log line.
pub async fn log_requests(fake: &'static str, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = redact(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        fake,
        %method,
        path = %path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Replaces the token in `/bot<token>/…` and `/file/bot<token>/…` paths.
pub fn redact(path: &str) -> String {
    let (prefix, rest) = if let Some(rest) = path.strip_prefix("/file/bot") {
        ("/file/bot", rest)
    } else if let Some(rest) = path.strip_prefix("/bot") {
        ("/bot", rest)
    } else {
        return path.to_string();
    };
    match rest.find('/') {
        Some(slash) => format!("{prefix}<token>{}", &rest[slash..]),
        None => format!("{prefix}<token>"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn tokens_are_redacted() {
        assert_eq!(redact("/bot123:abc/sendMessage"), "/bot<token>/sendMessage");
        assert_eq!(redact("/file/bot123:abc/photos/a.png"), "/file/bot<token>/photos/a.png");
        assert_eq!(redact("/v3/payments"), "/v3/payments");
    }
}
