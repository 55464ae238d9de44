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
    /// The conversation before this prompt (an edit): `contents` entries, user and model turns
    /// alternating, the model turns as Gemini returned them (`Image::turn`). Empty for a new
    /// picture.
    pub history: Vec<Value>,
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
            .field("history_turns", &self.history.len())
            .finish()
    }
}

impl Request {
    /// The `generateContent` body.
    pub fn body(&self) -> Value {
        let mut contents = self.history.clone();
        contents.push(user_turn(&self.prompt, &self.references));
        let mut image_config = json!({ "aspectRatio": self.aspect_ratio });
        if let Some(size) = self.size {
            image_config["imageSize"] = json!(size.as_str());
        }
        json!({
            "contents": contents,
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
        })
    }
}

/// A user turn: the prompt, then the reference images inline.
pub fn user_turn(prompt: &str, references: &[Reference]) -> Value {
    let mut parts = vec![json!({ "text": prompt })];
    parts.extend(
        references
            .iter()
            .map(|r| json!({"inline_data": {"mime_type": r.mime_type, "data": STANDARD.encode(&r.bytes)}})),
    );
    json!({"role": "user", "parts": parts})
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
            history: Vec::new(),
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
    fn an_edit_sends_the_conversation_before_the_new_instruction() {
        let model = json!({"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": "AQ=="},
            "thoughtSignature": "sig"}]});
        let mut edit = request(Some(ImageSize::K1));
        edit.history = vec![user_turn("a cat", &[]), model.clone()];
        edit.references.clear();
        let contents = edit.body()["contents"].clone();
        assert_eq!(contents.as_array().map(Vec::len), Some(3));
        assert_eq!(contents[0], json!({"role": "user", "parts": [{"text": "a cat"}]}));
        assert_eq!(contents[1], model);
        assert_eq!(contents[2], json!({"role": "user", "parts": [{"text": "a secret banana"}]}));
    }

    #[test]
    fn debug_hides_the_prompt() {
        let shown = format!("{:?}", request(Some(ImageSize::K4)));
        assert!(!shown.contains("banana") && shown.contains("prompt_chars: 15"), "{shown}");
    }
}
