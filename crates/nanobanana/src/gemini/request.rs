//! What we ask Gemini for, and its `generateContent` JSON body: the prompt, reference images
//! as base64 `inline_data`, both modalities, the aspect ratio, and `imageSize` whenever the
//! model takes it (the catalog says which do) — never only when a ratio is set, the bug that
//! sells 1K pictures at a 4K price elsewhere. Pure; never sends anything.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::domain::ImageSize;

/// A reference image, already downloaded.
#[derive(Clone, PartialEq, Eq)]
pub struct Reference {
    /// `image/png`, `image/jpeg`, `image/webp`, `image/heic` or `image/heif`.
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reference({}, {} bytes)", self.mime_type, self.bytes.len())
    }
}

/// One image to generate.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Google's model id (`gemini-3-pro-image`), from the catalog.
    pub model_id: String,
    pub prompt: String,
    pub references: Vec<Reference>,
    /// One of Gemini's ratios ("1:1", "16:9", …); an unknown one is answered 400 → `Invalid`.
    pub aspect_ratio: String,
    /// `imageSize`; `None` only for a model that does not take it (`CatalogModel::takes_size`).
    pub size: Option<ImageSize>,
}

/// Debug output shows the prompt's length, never the prompt (it is the user's content).
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("model_id", &self.model_id)
            .field("prompt_chars", &self.prompt.chars().count())
            .field("references", &self.references)
            .field("aspect_ratio", &self.aspect_ratio)
            .field("size", &self.size)
            .finish()
    }
}

impl Request {
    /// The `generateContent` body.
    pub fn body(&self) -> Value {
        let mut parts = vec![json!({ "text": self.prompt })];
        parts.extend(
            self.references.iter().map(
                |r| json!({"inline_data": {"mime_type": r.mime_type, "data": STANDARD.encode(&r.bytes)}}),
            ),
        );
        let mut image_config = json!({ "aspectRatio": self.aspect_ratio });
        if let Some(size) = self.size {
            image_config["imageSize"] = json!(size.as_str());
        }
        json!({
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(size: Option<ImageSize>) -> Request {
        Request {
            model_id: "gemini-3-pro-image".into(),
            prompt: "a secret banana".into(),
            references: vec![Reference { mime_type: "image/png".into(), bytes: vec![1, 2, 3] }],
            aspect_ratio: "16:9".into(),
            size,
        }
    }

    #[test]
    fn size_whenever_the_model_takes_it_and_references_inline() {
        let pro = request(Some(ImageSize::K2)).body();
        assert_eq!(pro["generationConfig"]["imageConfig"], json!({"aspectRatio": "16:9", "imageSize": "2K"}));
        let parts = &pro["contents"][0]["parts"];
        assert_eq!(parts[0]["text"], "a secret banana");
        assert_eq!(parts[1]["inline_data"], json!({"mime_type": "image/png", "data": "AQID"}));
        let flash = request(None).body();
        assert_eq!(flash["generationConfig"]["imageConfig"], json!({"aspectRatio": "16:9"}));
    }

    #[test]
    fn debug_hides_the_prompt() {
        let shown = format!("{:?}", request(Some(ImageSize::K4)));
        assert!(!shown.contains("banana") && shown.contains("prompt_chars: 15"), "{shown}");
    }
}
