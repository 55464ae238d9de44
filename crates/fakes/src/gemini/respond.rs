//! Successful and 200-but-no-image answers in Gemini's shape: candidates with parts (Pro adds
//! two interim `thought` images and a `thoughtSignature`), `promptFeedback`, `finishReason`,
//! `usageMetadata`. Images (PNG or JPEG) are deterministic for the same model, prompt,
//! references, seed, ratio and size.

use serde_json::{json, Value};

use super::config::ImageFormat;
use super::models::{dimensions, Model};
use super::request::GenRequest;
use crate::common::b64;
use crate::common::image::{render_jpeg, render_png, seed_of};

fn usage(model: Model, request: &GenRequest, output_tokens: u64, thoughts: u64) -> Value {
    let text_tokens = (request.prompt.len() as u64 / 4).max(1);
    let image_tokens = request.references.len() as u64 * if model.pro { 560 } else { 258 };
    let mut usage = json!({
        "promptTokenCount": text_tokens + image_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": text_tokens + image_tokens + output_tokens + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": text_tokens}],
    });
    if image_tokens > 0 {
        if let Some(details) = usage["promptTokensDetails"].as_array_mut() {
            details.push(json!({"modality": "IMAGE", "tokenCount": image_tokens}));
        }
    }
    if thoughts > 0 {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    usage
}

fn envelope(
    model: Model,
    request: &GenRequest,
    candidates: Option<Value>,
    output_tokens: u64,
    thoughts: u64,
) -> Value {
    let mut body = json!({
        "usageMetadata": usage(model, request, output_tokens, thoughts),
        "modelVersion": model.id,
        "responseId": format!("fake-{}", uuid::Uuid::new_v4().simple()),
    });
    if let Some(candidates) = candidates {
        body["candidates"] = candidates;
    }
    body
}

fn seed(model: Model, request: &GenRequest, what: &str) -> [u8; 32] {
    let mut parts: Vec<&[u8]> = vec![model.id.as_bytes(), request.prompt.as_bytes()];
    for reference in &request.references {
        parts.push(&reference.bytes);
    }
    let seed = request.seed.map(|s| s.to_string()).unwrap_or_default();
    parts.extend([
        seed.as_bytes(),
        request.aspect_ratio.as_bytes(),
        request.image_size.as_bytes(),
        what.as_bytes(),
    ]);
    seed_of(&parts)
}

fn image_part(width: u32, height: u32, seed: &[u8; 32], jpeg: bool) -> (Value, Vec<u8>) {
    let (mime, bytes) = match jpeg {
        true => ("image/jpeg", render_jpeg(width, height, seed)),
        false => ("image/png", render_png(width, height, seed)),
    };
    (json!({"inlineData": {"mimeType": mime, "data": b64::encode(&bytes)}}), bytes)
}

/// The `thoughtSignature` the fake puts on an image it returns: bound to the image's bytes, so
/// a model turn sent back with a signature that is not the one of its image is caught
/// (`request::check_signatures`) without the fake keeping any state.
pub fn signature_of(image: &[u8]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(b"fake-gemini thought signature\0");
    hash.update(image);
    b64::encode(&hash.finalize())
}

/// JPEG or PNG for this request: a `[[jpeg]]` / `[[png]]` marker, else the configured format
/// (mixed: decided by the request's hash, so a repeat gets the same format).
fn wants_jpeg(model: Model, request: &GenRequest, format: ImageFormat) -> bool {
    if request.prompt.contains("[[jpeg]]") {
        return true;
    }
    if request.prompt.contains("[[png]]") {
        return false;
    }
    match format {
        ImageFormat::Png => false,
        ImageFormat::Jpeg => true,
        ImageFormat::Mixed => seed(model, request, "format")[0] & 1 == 1,
    }
}

/// A generated image answer. CPU-heavy for large sizes: call from a blocking task.
pub fn success(model: Model, request: &GenRequest, small: bool, format: ImageFormat) -> Value {
    let (width, height) = dimensions(&request.aspect_ratio, &request.image_size, small);
    let jpeg = wants_jpeg(model, request, format);
    let (mut last, final_bytes) = image_part(width, height, &seed(model, request, "final"), jpeg);
    // Every Gemini 3 image model signs its image parts and the first text part after its
    // thoughts; a multi-turn request must send them back.
    let signature = signature_of(&final_bytes);
    last["thoughtSignature"] = json!(signature);
    let mut parts = Vec::new();
    let mut thoughts = 0;
    if model.pro {
        thoughts = 180;
        parts.push(json!({"text": "**Composing the scene**\n\nI'm planning the layout and colours.", "thought": true}));
        // Up to two interim images, as Gemini 3 sends them: how many varies with the request.
        let interim = seed(model, request, "interim")[0] % 3;
        for n in 1..=interim {
            let (mut thought, _) = image_part(
                (width / 4).max(1),
                (height / 4).max(1),
                &seed(model, request, &format!("thought{n}")),
                jpeg,
            );
            thought["thought"] = json!(true);
            parts.push(thought);
        }
    }
    if request.want_text {
        parts.push(json!({"text": "Here is your image.", "thoughtSignature": signature}));
    }
    parts.push(last);
    // Sometimes a closing remark follows the image, so "the last part" is not the result.
    if request.want_text && seed(model, request, "remark")[0] % 4 == 0 {
        parts.push(json!({"text": "Let me know if you want changes."}));
    }
    let output = match (model.pro, request.image_size.as_str()) {
        (true, "4K") => 2000,
        (true, _) => 1120,
        (false, _) => 1290,
    };
    let candidates =
        json!([{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}]);
    envelope(model, request, Some(candidates), output, thoughts)
}

/// 200 with no candidates: the prompt was blocked.
pub fn blocked(model: Model, request: &GenRequest, reason: &str) -> Value {
    let mut body = envelope(model, request, None, 0, 0);
    body["promptFeedback"] = json!({"blockReason": reason});
    body
}

/// 200 with a candidate that stopped for `reason` and carries no image.
pub fn finished(model: Model, request: &GenRequest, reason: &str) -> Value {
    let candidate = json!([{"finishReason": reason, "index": 0,
        "finishMessage": format!("Unable to show the generated image. The model stopped with {reason}.")}]);
    envelope(model, request, Some(candidate), 0, 0)
}

/// 200 with only a text refusal.
pub fn text_only(model: Model, request: &GenRequest) -> Value {
    let parts = json!([{"text": "I can't create that image. Could you describe something else?"}]);
    let candidate =
        json!([{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}]);
    envelope(model, request, Some(candidate), 14, 0)
}

/// 200 with an image part whose bytes are not a picture (the first bytes of a PNG, cut off).
pub fn garbage(model: Model, request: &GenRequest) -> Value {
    let bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let part = json!({"inlineData": {"mimeType": "image/png", "data": b64::encode(&bytes[..12])}});
    let candidate =
        json!([{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}]);
    envelope(model, request, Some(candidate), 1290, 0)
}
