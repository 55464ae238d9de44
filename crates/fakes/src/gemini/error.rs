//! Google's error body: `{"error":{"code","message","status","details":[…]}}`, with the
//! messages and details (ErrorInfo, RetryInfo, QuotaFailure) Gemini uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct GError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
    pub details: Vec<Value>,
}

impl GError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { code: 400, status: "INVALID_ARGUMENT", message: message.into(), details: vec![] }
    }

    pub fn key_invalid() -> Self {
        let message = "API key not valid. Please pass a valid API key.";
        Self {
            code: 400,
            status: "INVALID_ARGUMENT",
            message: message.into(),
            details: vec![
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}),
                json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}),
            ],
        }
    }

    pub fn unregistered() -> Self {
        Self {
            code: 403,
            status: "PERMISSION_DENIED",
            message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".into(),
            details: vec![],
        }
    }

    pub fn model_not_found(model: &str) -> Self {
        Self {
            code: 404,
            status: "NOT_FOUND",
            message: format!("models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."),
            details: vec![],
        }
    }

    /// 429 with RetryInfo; `per_day` uses a daily quota id that will not clear soon.
    pub fn quota(model: &str, retry_secs: u64, per_day: bool) -> Self {
        let (quota_id, metric) = if per_day {
            (
                "GenerateRequestsPerDayPerProjectPerModel",
                "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
            )
        } else {
            (
                "GenerateRequestsPerMinutePerProjectPerModel",
                "generativelanguage.googleapis.com/generate_requests_per_model",
            )
        };
        Self {
            code: 429,
            status: "RESOURCE_EXHAUSTED",
            message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.".into(),
            details: vec![
                json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": metric,
                    "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "250"}]}),
                json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
                json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_secs}s")}),
            ],
        }
    }

    pub fn server(code: u16) -> Self {
        let (status, message) = match code {
            503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
            504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
            _ => ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
        };
        Self { code, status, message: message.into(), details: vec![] }
    }

    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if !self.details.is_empty() {
            error["details"] = json!(self.details);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for GError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}
