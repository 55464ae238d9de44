//! YooKassa's error body: `{"type":"error","id","code","description","parameter"}` with the
//! HTTP status that goes with each code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YkError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    pub parameter: Option<String>,
}

impl YkError {
    pub fn invalid(description: impl Into<String>, parameter: &str) -> Self {
        Self {
            status: 400,
            code: "invalid_request",
            description: description.into(),
            parameter: Some(parameter.into()),
        }
    }

    pub fn credentials() -> Self {
        Self {
            status: 401,
            code: "invalid_credentials",
            description: "Error in shopId or secret key. Check their validity. You can reissue the key in the Merchant Profile".into(),
            parameter: Some("Authorization".into()),
        }
    }

    pub fn not_found(what: &str, parameter: &str) -> Self {
        Self {
            status: 404,
            code: "not_found",
            description: format!("Incorrect {parameter}. {what} doesn't exist or access denied."),
            parameter: Some(parameter.into()),
        }
    }

    pub fn too_many() -> Self {
        Self {
            status: 429,
            code: "too_many_requests",
            description: "Too many requests".into(),
            parameter: None,
        }
    }

    pub fn internal() -> Self {
        Self {
            status: 500,
            code: "internal_server_error",
            description: "Internal server error".into(),
            parameter: None,
        }
    }

    pub fn body(&self) -> Value {
        let mut body = json!({"type": "error", "id": uuid::Uuid::new_v4().to_string(), "code": self.code,
            "description": self.description});
        if let Some(parameter) = &self.parameter {
            body["parameter"] = json!(parameter);
        }
        body
    }
}

impl IntoResponse for YkError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}
