//! Turning an HTTP answer from `generateContent` (status and body) into an [`Outcome`]. Pure:
//! the client feeds it what it read; tests feed it crafted JSON. Never trusts the declared
//! mime type: an image is what its bytes say it is.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;

use super::image::sniff;
use super::outcome::{Image, Outcome};
use super::response::{Candidate, ErrorBody, GenerateResponse, Usage};

/// Texts kept in outcomes (refusals, error messages) are cut to this many characters.
const MAX_TEXT: usize = 500;

/// Finish or block reasons that mean "refused for its content", as opposed to "no image".
const BLOCKING: [&str; 5] = ["SAFETY", "PROHIBITED", "BLOCKLIST", "SPII", "RECITATION"];

fn is_blocking(reason: &str) -> bool {
    BLOCKING.iter().any(|word| reason.contains(word))
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// Classifies a complete answer. `usage` is returned for every 200 that carried it.
pub fn classify(status: u16, body: &[u8]) -> (Outcome, Option<Usage>) {
    if status == 200 {
        match serde_json::from_slice::<GenerateResponse>(body) {
            Ok(response) => {
                let usage = response.usage_metadata;
                (success_body(response), usage)
            }
            Err(e) => {
                (Outcome::Retryable { after: None, reason: format!("unreadable 200 answer: {e}") }, None)
            }
        }
    } else {
        (error_status(status, body), None)
    }
}

fn error_status(status: u16, body: &[u8]) -> Outcome {
    let detail = serde_json::from_slice::<ErrorBody>(body).ok().and_then(|b| b.error).unwrap_or_default();
    let label = detail.status.as_deref().unwrap_or("");
    let message = cut(detail.message.as_deref().unwrap_or(""));
    let reason = format!("{status} {label}: {message}");
    if detail.reasons().any(|r| r.starts_with("API_KEY_")) || status == 401 {
        return Outcome::InvalidKey { reason };
    }
    match status {
        429 if detail.quota_ids().any(|id| id.contains("PerDay")) => Outcome::DailyQuota { reason },
        429 => Outcome::Retryable { after: detail.retry_delay(), reason },
        408 | 500..=599 => Outcome::Retryable { after: None, reason },
        404 if label == "NOT_FOUND" => Outcome::ModelNotFound { reason },
        _ => Outcome::Invalid { reason },
    }
}

/// A 200: blocked prompt, the last non-thought image, a blocked candidate, a text refusal or
/// nothing, in that order of precedence.
fn success_body(response: GenerateResponse) -> Outcome {
    if let Some(reason) = response.prompt_feedback.and_then(|f| f.block_reason) {
        return Outcome::Blocked { reason };
    }
    let Some(candidate) = response.candidates.into_iter().flatten().next() else {
        return Outcome::NoImage { finish_reason: None };
    };
    let finish_reason = candidate.finish_reason.clone();
    if let Some(reason) = finish_reason.as_deref().filter(|r| is_blocking(r)) {
        return Outcome::Blocked { reason: reason.to_owned() };
    }
    if let Some(data) = last_image(&candidate) {
        return image(data, model_turn(&candidate));
    }
    let text: Vec<&str> = parts(&candidate)
        .filter(|p| !p.is_thought())
        .filter_map(|p| p.text.as_deref())
        .filter(|t| !t.trim().is_empty())
        .collect();
    if text.is_empty() {
        Outcome::NoImage { finish_reason }
    } else {
        Outcome::TextRefusal { text: cut(&text.join("\n")) }
    }
}

fn parts(candidate: &Candidate) -> impl Iterator<Item = &super::response::Part> {
    candidate.content.iter().flat_map(|c| c.parts.iter().flatten())
}

/// The base64 data of the last image part that is not a thought.
fn last_image(candidate: &Candidate) -> Option<&str> {
    parts(candidate)
        .filter(|p| !p.is_thought())
        .filter_map(|p| p.inline_data.as_ref())
        .filter(|d| d.mime_type.as_deref().is_none_or(|m| m.starts_with("image/")))
        .filter_map(|d| d.data.as_deref())
        .last()
}

/// The candidate's turn as an edit sends it back: the parts that are not thoughts, each with
/// its signature (DESIGN §10 "Editing is a conversation").
fn model_turn(candidate: &Candidate) -> Option<serde_json::Value> {
    let parts: Vec<serde_json::Value> =
        parts(candidate).filter(|p| !p.is_thought()).filter_map(|p| p.echo()).collect();
    (!parts.is_empty()).then(|| serde_json::json!({ "role": "model", "parts": parts }))
}

fn image(data: &str, turn: Option<serde_json::Value>) -> Outcome {
    let Some(bytes) = STANDARD.decode(data).or_else(|_| URL_SAFE.decode(data)).ok() else {
        return Outcome::BadImage { reason: "image data is not base64".into() };
    };
    match sniff(&bytes) {
        Some(info) => {
            Outcome::Image(Image { bytes, format: info.format, width: info.width, height: info.height, turn })
        }
        None => Outcome::BadImage { reason: format!("{} bytes that are not a PNG or JPEG", bytes.len()) },
    }
}

#[cfg(test)]
mod tests {
    use super::super::image::tests::{jpeg_header, png_header};
    use super::super::image::ImageFormat;
    use super::*;
    use serde_json::{json, Value};
    use std::time::Duration;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn ok(body: Value) -> Outcome {
        classify(200, body.to_string().as_bytes()).0
    }

    fn err(status: u16, body: Value) -> Outcome {
        classify(status, body.to_string().as_bytes()).0
    }

    fn image_part(bytes: &[u8], thought: bool) -> Value {
        json!({"inlineData": {"mimeType": "image/png", "data": b64(bytes)}, "thought": thought})
    }

    fn candidate(parts: Vec<Value>, finish: &str) -> Value {
        json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 1120, "thoughtsTokenCount": 180,
                "totalTokenCount": 1310, "futureField": true}, "someNewField": [1, 2]})
    }

    #[test]
    fn the_last_non_thought_image_wins_and_the_mime_type_comes_from_the_bytes() {
        let body = candidate(
            vec![
                json!({"text": "thinking", "thought": true}),
                image_part(&png_header(10, 10), true),
                image_part(&jpeg_header(30, 20), false),
                json!({"text": "Here it is", "thoughtSignature": "abc"}),
                image_part(&png_header(7, 7), true),
            ],
            "STOP",
        );
        let (outcome, usage) = classify(200, body.to_string().as_bytes());
        let Outcome::Image(image) = outcome else { panic!("expected an image, got {outcome:?}") };
        assert_eq!((image.format, image.width, image.height), (ImageFormat::Jpeg, 30, 20));
        let usage = usage.expect("usage");
        assert_eq!((usage.candidates_token_count, usage.thoughts_token_count), (1120, 180));
    }

    #[test]
    fn the_model_turn_keeps_signatures_and_drops_thoughts() {
        let mut signed = image_part(&jpeg_header(30, 20), false);
        signed["thoughtSignature"] = json!("sig-image");
        let body = candidate(
            vec![
                json!({"text": "thinking", "thought": true, "thoughtSignature": "sig-thought"}),
                image_part(&png_header(10, 10), true),
                json!({"text": "Here it is", "thoughtSignature": "sig-text"}),
                signed,
            ],
            "STOP",
        );
        let Outcome::Image(image) = ok(body) else { panic!("an image") };
        let turn = image.turn.expect("the model turn");
        assert_eq!(turn["role"], "model");
        let parts = turn["parts"].as_array().expect("parts");
        assert_eq!(parts.len(), 2, "thoughts dropped: {turn}");
        assert_eq!(parts[0], json!({"text": "Here it is", "thoughtSignature": "sig-text"}));
        assert_eq!(parts[1]["thoughtSignature"], "sig-image");
        assert_eq!(parts[1]["inlineData"]["mimeType"], "image/png");
        assert!(parts[1]["inlineData"]["data"].as_str().is_some_and(|d| !d.is_empty()));
    }

    #[test]
    fn snake_case_answers_are_read_too() {
        let body = json!({"candidates": [{"content": {"parts": [
            {"inline_data": {"mime_type": "image/png", "data": b64(&png_header(3, 4))}}]}, "finish_reason": "STOP"}],
            "usage_metadata": {"total_token_count": 5}});
        let (outcome, usage) = classify(200, body.to_string().as_bytes());
        assert!(matches!(outcome, Outcome::Image(Image { width: 3, height: 4, .. })), "{outcome:?}");
        assert_eq!(usage.map(|u| u.total_token_count), Some(5));
    }

    #[test]
    fn undecodable_images_are_not_a_success() {
        let garbage = candidate(vec![image_part(b"GIF89a not what we expect", false)], "STOP");
        assert!(matches!(ok(garbage), Outcome::BadImage { .. }));
        let not_base64 =
            candidate(vec![json!({"inlineData": {"mimeType": "image/png", "data": "***"}})], "STOP");
        assert!(matches!(ok(not_base64), Outcome::BadImage { .. }));
        let only_thoughts = candidate(vec![image_part(&png_header(5, 5), true)], "STOP");
        assert_eq!(ok(only_thoughts), Outcome::NoImage { finish_reason: Some("STOP".into()) });
    }

    #[test]
    fn blocks_refusals_and_missing_images() {
        let prompt = json!({"promptFeedback": {"blockReason": "OTHER", "new": 1}, "usageMetadata": {}});
        assert_eq!(ok(prompt), Outcome::Blocked { reason: "OTHER".into() });
        for reason in
            ["SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "RECITATION"]
        {
            let body = json!({"candidates": [{"finishReason": reason, "finishMessage": "no"}]});
            assert_eq!(ok(body), Outcome::Blocked { reason: reason.into() });
        }
        let unknown = json!({"candidates": [{"finishReason": "IMAGE_BRAND_NEW_REASON"}]});
        assert_eq!(ok(unknown), Outcome::NoImage { finish_reason: Some("IMAGE_BRAND_NEW_REASON".into()) });
        let refusal = candidate(vec![json!({"text": "I can't draw that."})], "STOP");
        assert_eq!(ok(refusal), Outcome::TextRefusal { text: "I can't draw that.".into() });
        assert_eq!(ok(json!({})), Outcome::NoImage { finish_reason: None });
        assert_eq!(ok(json!({"candidates": null})), Outcome::NoImage { finish_reason: None });
        assert!(matches!(classify(200, b"{\"candidates\": [").0, Outcome::Retryable { after: None, .. }));
    }

    #[test]
    fn errors_by_status_and_details() {
        let detail = |t: &str, v: Value| {
            let mut d = v;
            d["@type"] = json!(format!("type.googleapis.com/google.rpc.{t}"));
            d
        };
        let minute = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
            detail("QuotaFailure", json!({"violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]})),
            detail("RetryInfo", json!({"retryDelay": "26s"}))]}});
        assert_eq!(err(429, minute).retry_after(), Some(Duration::from_secs(26)));
        let day = json!({"error": {"code": 429, "details": [
            detail("QuotaFailure", json!({"violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]})),
            detail("RetryInfo", json!({"retryDelay": "41s"}))]}});
        assert!(matches!(err(429, day), Outcome::DailyQuota { .. }));
        let key = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "API key not valid",
            "details": [detail("ErrorInfo", json!({"reason": "API_KEY_INVALID"}))]}});
        assert!(matches!(err(400, key), Outcome::InvalidKey { .. }));
        let invalid = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "Unsupported aspect ratio"}});
        let Outcome::Invalid { reason } = err(400, invalid) else { panic!("invalid") };
        assert!(reason.contains("INVALID_ARGUMENT") && reason.contains("aspect ratio"), "{reason}");
        for status in [400, 403, 404] {
            assert!(matches!(
                err(status, json!({"error": {"status": "FAILED_PRECONDITION"}})),
                Outcome::Invalid { .. }
            ));
        }
        let gone = json!({"error": {"code": 404, "status": "NOT_FOUND",
            "message": "models/gemini-3.1-flash-image is not found for API version v1beta"}});
        assert!(matches!(err(404, gone), Outcome::ModelNotFound { .. }));
        for status in [500, 502, 503, 504] {
            assert!(matches!(err(status, json!({})), Outcome::Retryable { after: None, .. }));
        }
        assert!(matches!(classify(503, b"<html>overloaded</html>").0, Outcome::Retryable { .. }));
        assert!(matches!(classify(429, b"").0, Outcome::Retryable { after: None, .. }));
    }
}
