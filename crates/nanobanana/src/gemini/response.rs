//! Gemini's answers as lenient serde types: every field optional, unknown fields ignored,
//! `finishReason` and `blockReason` kept as open strings (the list grows; the community crates
//! fail on real values). Only shapes live here; what an answer means is `classify`'s job.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of a 200 from `generateContent`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse {
    #[serde(default)]
    pub candidates: Option<Vec<Candidate>>,
    #[serde(default, alias = "prompt_feedback")]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default, alias = "usage_metadata")]
    pub usage_metadata: Option<Usage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default, alias = "finish_reason")]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Content {
    #[serde(default)]
    pub parts: Option<Vec<Part>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default, alias = "inline_data")]
    pub inline_data: Option<InlineData>,
    /// Interim images and reasoning text of thinking models; never the result.
    #[serde(default)]
    pub thought: Option<bool>,
    /// Gemini 3's opaque signature of its reasoning: a multi-turn request must return it on
    /// the part that carried it (DESIGN §10 "Editing is a conversation").
    #[serde(default, alias = "thought_signature")]
    pub thought_signature: Option<String>,
}

impl Part {
    pub fn is_thought(&self) -> bool {
        self.thought == Some(true)
    }

    /// This part as a multi-turn request sends it back: text or image, with its signature.
    /// `None` for a part with neither (nothing to send back).
    pub fn echo(&self) -> Option<Value> {
        let mut part = match (&self.text, &self.inline_data) {
            (Some(text), _) => serde_json::json!({ "text": text }),
            (None, Some(InlineData { mime_type, data: Some(data) })) => serde_json::json!({
                "inlineData": { "mimeType": mime_type.as_deref().unwrap_or("image/png"), "data": data }
            }),
            _ => return None,
        };
        if let Some(signature) = &self.thought_signature {
            part["thoughtSignature"] = Value::String(signature.clone());
        }
        Some(part)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineData {
    #[serde(default, alias = "mime_type")]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default, alias = "block_reason")]
    pub block_reason: Option<String>,
}

/// Token counts from `usageMetadata`; absent, null or odd counts are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Usage {
    #[serde(alias = "prompt_token_count", deserialize_with = "count")]
    pub prompt_token_count: u64,
    #[serde(alias = "candidates_token_count", deserialize_with = "count")]
    pub candidates_token_count: u64,
    #[serde(alias = "thoughts_token_count", deserialize_with = "count")]
    pub thoughts_token_count: u64,
    #[serde(alias = "total_token_count", deserialize_with = "count")]
    pub total_token_count: u64,
}

/// A token count that never fails the whole answer: anything but a non-negative integer is 0.
fn count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64().unwrap_or(0))
}

/// Google's error body: `{"error":{"code","message","status","details":[…]}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// `google.rpc` details (ErrorInfo, RetryInfo, QuotaFailure, …), kept as raw JSON.
    #[serde(default)]
    pub details: Option<Vec<Value>>,
}

impl ErrorDetail {
    fn details_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.details.iter().flatten().filter(move |d| {
            d.get("@type").and_then(Value::as_str).is_some_and(|t| t.rsplit('.').next() == Some(kind))
        })
    }

    /// `ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        self.details_of("ErrorInfo").filter_map(|d| d.get("reason").and_then(Value::as_str))
    }

    /// `RetryInfo.retryDelay` as Google writes it ("26s", "0.5s").
    pub fn retry_delay(&self) -> Option<std::time::Duration> {
        self.details_of("RetryInfo")
            .filter_map(|d| d.get("retryDelay").and_then(Value::as_str))
            .find_map(parse_duration)
    }

    /// Every `QuotaFailure.violations[].quotaId`.
    pub fn quota_ids(&self) -> impl Iterator<Item = &str> {
        self.details_of("QuotaFailure")
            .filter_map(|d| d.get("violations").and_then(Value::as_array))
            .flatten()
            .filter_map(|v| v.get("quotaId").and_then(Value::as_str))
    }
}

/// A protobuf-JSON duration: decimal seconds with an `s` suffix. Bounded to a day.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds))
        .then(|| std::time::Duration::from_millis((seconds * 1000.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_google_durations() {
        assert_eq!(parse_duration("26s"), Some(Duration::from_secs(26)));
        assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("26"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1e9s"), None);
    }

    #[test]
    fn ignores_unknown_fields_and_keeps_unknown_reasons() {
        let body = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hi","newThing":1}]},
            "finishReason":"SOMETHING_NEW","safetyRatings":[],"index":0}],
            "usageMetadata":{"promptTokenCount":7,"totalTokenCount":9,"cacheTokensDetails":[],
                "thoughtsTokenCount":null,"candidatesTokenCount":"12"},
            "brandNewTopLevel":{"x":1}}"#;
        let parsed: GenerateResponse = serde_json::from_str(body).expect("lenient");
        let candidate = &parsed.candidates.expect("candidates")[0];
        assert_eq!(candidate.finish_reason.as_deref(), Some("SOMETHING_NEW"));
        let usage = parsed.usage_metadata.expect("usage");
        assert_eq!(
            (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count),
            (7, 0, 9)
        );
    }

    #[test]
    fn reads_error_details() {
        let body = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"A"},{"quotaId":"BPerDay"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"},
            {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"X"}]}}"#;
        let error = serde_json::from_str::<ErrorBody>(body).expect("error").error.expect("detail");
        assert_eq!(error.retry_delay(), Some(Duration::from_secs(12)));
        assert_eq!(error.quota_ids().collect::<Vec<_>>(), ["A", "BPerDay"]);
        assert_eq!(error.reasons().collect::<Vec<_>>(), ["X"]);
    }
}
