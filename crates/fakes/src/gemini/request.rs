//! Parsing and validating a generateContent request as Gemini does: protobuf-JSON field names
//! (camelCase or snake_case, unknown names rejected), part shapes, base64 of inline data,
//! reference image types and count, response modalities, candidateCount, aspect ratio (the
//! model's own list) and image size (a size the model renders, upper-case K; a one-size model
//! takes none). Pure; never touches state.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{Map, Value};

use super::error::GError;
use super::models::Model;
pub use super::state::TurnRecord;
use crate::common::image_info::sniff;

/// A reference image the caller sent.
#[derive(Debug, Clone)]
pub struct Reference {
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// What a valid request asks for.
#[derive(Debug, Clone)]
pub struct GenRequest {
    /// All text parts of user turns, joined by newlines.
    pub prompt: String,
    pub references: Vec<Reference>,
    pub aspect_ratio: String,
    pub image_size: String,
    pub seed: Option<i64>,
    /// `responseModalities` includes TEXT (or is absent).
    pub want_text: bool,
    /// Every turn of `contents`, as recorded for tests (`RequestRecord::turns`).
    pub turns: Vec<TurnRecord>,
}

const TOP: [&str; 7] = [
    "contents",
    "generationConfig",
    "safetySettings",
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
];
const PART: [&str; 12] = [
    "text",
    "inlineData",
    "fileData",
    "thought",
    "thoughtSignature",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
];
const GENERATION: [&str; 20] = [
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "imageConfig",
    "thinkingConfig",
    "mediaResolution",
    "speechConfig",
    "enableEnhancedCivicAnswers",
];
const IMAGE_CONFIG: [&str; 3] = ["aspectRatio", "imageSize", "personGeneration"];
const REFERENCE_TYPES: [&str; 5] = ["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"];

fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks field names of an object and returns it with camelCase keys.
fn fields(value: &Value, known: &[&str], at: &str) -> Result<Map<String, Value>, GError> {
    let object = value.as_object().ok_or_else(|| {
        GError::invalid(format!("Invalid JSON payload received. Expected an object at '{at}'."))
    })?;
    let mut out = Map::new();
    for (name, value) in object {
        let key = camel(name);
        if !known.contains(&key.as_str()) {
            let place = if at.is_empty() { String::new() } else { format!(" at '{at}'") };
            return Err(GError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{name}\"{place}: Cannot find field."
            )));
        }
        out.insert(key, value.clone());
    }
    Ok(out)
}

pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|engine| engine.decode(text).ok())
}

pub fn parse(model: Model, body: &[u8]) -> Result<GenRequest, GError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| GError::invalid("Invalid JSON payload received. Unexpected token."))?;
    let top = fields(&value, &TOP, "")?;
    let contents = top.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty());
    let contents = contents
        .ok_or_else(|| GError::invalid("* GenerateContentRequest.contents: contents is not specified\n"))?;
    let mut texts = Vec::new();
    let mut references = Vec::new();
    let mut turns = Vec::new();
    for (ci, content) in contents.iter().enumerate() {
        let content = fields(content, &["role", "parts"], &format!("contents[{ci}]"))?;
        let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
        if !matches!(role, "user" | "model") {
            return Err(GError::invalid("Please use a valid role: user, model."));
        }
        let parts = content.get("parts").and_then(Value::as_array).filter(|p| !p.is_empty());
        let parts = parts.ok_or_else(|| {
            GError::invalid(format!(
                "* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty.\n"
            ))
        })?;
        let mut turn = TurnRecord { role: role.to_owned(), ..TurnRecord::default() };
        for (pi, part) in parts.iter().enumerate() {
            let at = format!("contents[{ci}].parts[{pi}]");
            let part = fields(part, &PART, &at)?;
            let signature = part.get("thoughtSignature").and_then(Value::as_str);
            turn.signatures.extend(signature.map(str::to_owned));
            if part.get("thought") == Some(&Value::Bool(true)) {
                turn.thoughts += 1;
            }
            match (part.get("text"), part.get("inlineData")) {
                (Some(Value::String(text)), None) => {
                    if role == "user" {
                        texts.push(text.clone());
                    }
                    turn.texts.push(text.clone());
                }
                (Some(other), None) => return Err(GError::invalid(format!("Invalid value at '{at}.text' (TYPE_STRING), {other}"))),
                (None, Some(inline)) => {
                    let image = inline_data(inline, &at)?;
                    turn.images.push(sha256_hex(&image.bytes));
                    if role == "model" {
                        // As Gemini 3 image models do: a model turn's image must come back with
                        // the signature it was returned with.
                        check_signature(&image.bytes, signature, ci, pi)?;
                    } else {
                        references.push(image);
                    }
                }
                (None, None) if part.contains_key("fileData") => {
                    return Err(GError::invalid("Unsupported file uri: only files uploaded with the Files API can be used."))
                }
                (None, None) => {
                    return Err(GError::invalid(format!("* GenerateContentRequest.{at}.data: required oneof field 'data' must have one initialized field\n")))
                }
                (Some(_), Some(_)) => {
                    return Err(GError::invalid(format!("Invalid JSON payload received. Oneof field 'data' is already set. Cannot set 'inlineData' at '{at}'.")))
                }
            }
        }
        turns.push(turn);
    }
    if references.len() > model.max_references {
        return Err(GError::invalid(format!(
            "Too many images in the request: {}. The maximum is {}.",
            references.len(),
            model.max_references
        )));
    }
    let config = match top.get("generationConfig") {
        Some(config) => fields(config, &GENERATION, "generation_config")?,
        None => Map::new(),
    };
    let mut request = generation(model, &config, texts.join("\n"), references)?;
    request.turns = turns;
    Ok(request)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A model turn's image part without its `thoughtSignature`, or with one that is not the
/// signature the fake returned with that image: 400 INVALID_ARGUMENT, as Gemini 3 answers.
fn check_signature(image: &[u8], signature: Option<&str>, ci: usize, pi: usize) -> Result<(), GError> {
    let (content, part) = (ci + 1, pi + 1);
    match signature {
        None => Err(GError::invalid(format!(
            "Image part is missing a thought_signature in content position {content}, part position {part}. Ensure thought signatures are passed back to the model. See https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
        ))),
        Some(signature) if signature != super::respond::signature_of(image) => Err(GError::invalid(format!(
            "Corrupted thought signature in content position {content}, part position {part}."
        ))),
        Some(_) => Ok(()),
    }
}

fn inline_data(inline: &Value, at: &str) -> Result<Reference, GError> {
    let inline = fields(inline, &["mimeType", "data"], &format!("{at}.inline_data"))?;
    let mime_type = inline.get("mimeType").and_then(Value::as_str).unwrap_or("").to_string();
    let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = decode_base64(data).ok_or_else(|| {
        let shown: String = data.chars().take(32).collect();
        GError::invalid(format!(
            "Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
        ))
    })?;
    if !REFERENCE_TYPES.contains(&mime_type.as_str()) {
        return Err(GError::invalid(format!("Unsupported MIME type: {mime_type}")));
    }
    let checkable = matches!(mime_type.as_str(), "image/png" | "image/jpeg" | "image/webp");
    if bytes.is_empty() || (checkable && sniff(&bytes).is_none()) {
        return Err(GError::invalid("Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"));
    }
    Ok(Reference { mime_type, bytes })
}

fn generation(
    model: Model,
    config: &Map<String, Value>,
    prompt: String,
    references: Vec<Reference>,
) -> Result<GenRequest, GError> {
    if config.get("candidateCount").and_then(Value::as_i64).is_some_and(|n| n > 1) {
        return Err(GError::invalid(format!("Multiple candidates is not enabled for models/{}", model.id)));
    }
    let modalities: Option<Vec<String>> = config
        .get("responseModalities")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).map(str::to_ascii_uppercase).collect());
    if let Some(modalities) = &modalities {
        if let Some(bad) = modalities.iter().find(|m| !matches!(m.as_str(), "TEXT" | "IMAGE")) {
            return Err(GError::invalid(format!("Invalid value at 'generation_config.response_modalities' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), \"{bad}\"")));
        }
        if !modalities.iter().any(|m| m == "IMAGE") {
            return Err(GError::invalid("Model does not support the requested response modalities: text"));
        }
    }
    let image = match config.get("imageConfig") {
        Some(image) => fields(image, &IMAGE_CONFIG, "generation_config.image_config")?,
        None => Map::new(),
    };
    let aspect_ratio = image.get("aspectRatio").and_then(Value::as_str).unwrap_or("1:1").to_string();
    if !model.takes_ratio(&aspect_ratio) {
        return Err(GError::invalid(format!(
            "Unsupported aspect ratio: {aspect_ratio}. Supported values are {}.",
            model.ratio_list()
        )));
    }
    let image_size = match image.get("imageSize").and_then(Value::as_str) {
        None => "1K".to_string(),
        Some(_) if !model.takes_size() => {
            return Err(GError::invalid(format!("Image size is not supported for models/{}.", model.id)))
        }
        Some(size) if model.sizes.contains(&size) => size.to_string(),
        Some(size) => {
            return Err(GError::invalid(format!(
                "Unsupported image size: {size}. Supported values are {}.",
                model.sizes.join(", ")
            )))
        }
    };
    let want_text = modalities.is_none_or(|m| m.iter().any(|x| x == "TEXT"));
    let seed = config.get("seed").and_then(Value::as_i64);
    Ok(GenRequest { prompt, references, aspect_ratio, image_size, seed, want_text, turns: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::super::models::find;
    use super::*;
    use serde_json::json;

    fn pro() -> Model {
        find("gemini-3-pro-image").expect("pro")
    }

    fn parse_json(model: Model, value: Value) -> Result<GenRequest, GError> {
        parse(model, value.to_string().as_bytes())
    }

    #[test]
    fn accepts_both_spellings_and_rejects_unknown_fields() {
        let ok = json!({"contents": [{"parts": [{"text": "a cat"}]}],
            "generation_config": {"response_modalities": ["TEXT", "IMAGE"], "image_config": {"aspect_ratio": "16:9", "image_size": "2K"}}});
        let request = parse_json(pro(), ok).expect("valid");
        assert_eq!((request.aspect_ratio.as_str(), request.image_size.as_str()), ("16:9", "2K"));
        let unknown = json!({"contents": [{"parts": [{"txt": "a cat"}]}]});
        let error = parse_json(pro(), unknown).expect_err("unknown field");
        assert!(error.message.contains("Unknown name \"txt\""), "{}", error.message);
    }

    #[test]
    fn image_rules() {
        let lite = find("gemini-3.1-flash-lite-image").expect("lite");
        let sized = json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"imageConfig": {"imageSize": "2K"}}});
        assert!(parse_json(lite, sized).is_err(), "no size for a one-size model");
        let wide = json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"imageConfig": {"aspectRatio": "1:8"}}});
        assert!(parse_json(pro(), wide.clone()).is_err(), "1:8 only on 2.1");
        assert!(parse_json(find("gemini-nano-banana-2.1").expect("2.1"), wide).is_ok());
        let lower = json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"imageConfig": {"imageSize": "2k"}}});
        assert!(parse_json(pro(), lower).is_err(), "upper-case K only");
        let two =
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}});
        assert!(parse_json(pro(), two).is_err());
        let bad =
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "***"}}]}]});
        assert!(parse_json(pro(), bad).expect_err("base64").message.contains("Base64 decoding failed"));
    }

    #[test]
    fn a_model_turn_needs_the_signature_of_its_image() {
        let image = crate::common::image::render_png(8, 8, &[7; 32]);
        let data = crate::common::b64::encode(&image);
        let turn = |signature: Option<String>| {
            let mut part = json!({"inlineData": {"mimeType": "image/png", "data": data}});
            if let Some(signature) = signature {
                part["thoughtSignature"] = json!(signature);
            }
            json!({"contents": [{"role": "user", "parts": [{"text": "a cat"}]},
                {"role": "model", "parts": [{"text": "Here", "thoughtSignature": "x"}, part]},
                {"role": "user", "parts": [{"text": "make it blue"}]}]})
        };
        let missing = parse_json(pro(), turn(None)).expect_err("unsigned");
        assert_eq!((missing.code, missing.status), (400, "INVALID_ARGUMENT"));
        assert!(missing.message.contains("content position 2, part position 2"), "{}", missing.message);
        let wrong = parse_json(pro(), turn(Some("AAAA".into()))).expect_err("not its signature");
        assert!(wrong.message.contains("Corrupted thought signature"), "{}", wrong.message);
        let signed =
            parse_json(pro(), turn(Some(super::super::respond::signature_of(&image)))).expect("signed");
        assert_eq!(signed.prompt, "a cat\nmake it blue");
        assert!(signed.references.is_empty(), "the model's picture is not a reference");
        let roles: Vec<&str> = signed.turns.iter().map(|t| t.role.as_str()).collect();
        assert_eq!(roles, ["user", "model", "user"]);
        assert_eq!(signed.turns[1].signatures.len(), 2);
        assert_eq!(signed.turns[1].images.len(), 1);
    }
}
