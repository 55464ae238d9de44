//! Telegram's error envelope: `{"ok":false,"error_code":N,"description":"…","parameters":{…}}`.
//! Owns the exact descriptions the real Bot API uses, so the fake fails the way Telegram does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error answer of the Bot API. The HTTP status equals `error_code`, as with Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgError {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl TgError {
    pub fn bad_request(what: &str) -> Self {
        Self { code: 400, description: format!("Bad Request: {what}"), retry_after: None }
    }

    pub fn unauthorized() -> Self {
        Self { code: 401, description: "Unauthorized".into(), retry_after: None }
    }

    pub fn not_found() -> Self {
        Self { code: 404, description: "Not Found".into(), retry_after: None }
    }

    pub fn blocked() -> Self {
        Self { code: 403, description: "Forbidden: bot was blocked by the user".into(), retry_after: None }
    }

    pub fn forbidden(what: &str) -> Self {
        Self { code: 403, description: format!("Forbidden: {what}"), retry_after: None }
    }

    pub fn conflict(what: &str) -> Self {
        Self { code: 409, description: format!("Conflict: {what}"), retry_after: None }
    }

    pub fn too_large() -> Self {
        Self { code: 413, description: "Request Entity Too Large".into(), retry_after: None }
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }

    pub fn internal() -> Self {
        Self { code: 500, description: "Internal Server Error".into(), retry_after: None }
    }

    pub fn bad_gateway() -> Self {
        Self { code: 502, description: "Bad Gateway".into(), retry_after: None }
    }

    pub fn chat_not_found() -> Self {
        Self::bad_request("chat not found")
    }

    pub fn query_too_old() -> Self {
        Self::bad_request("query is too old and response timeout expired or query ID is invalid")
    }

    pub fn body(&self) -> Value {
        let mut body = json!({"ok": false, "error_code": self.code, "description": self.description});
        if let Some(seconds) = self.retry_after {
            body["parameters"] = json!({ "retry_after": seconds });
        }
        body
    }
}

impl IntoResponse for TgError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// A successful Bot API answer.
pub fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

pub type TgResult = Result<Value, TgError>;
