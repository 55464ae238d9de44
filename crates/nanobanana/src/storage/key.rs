//! Object keys: where each kind of image lives, and what a key may look like. A key is a
//! relative path of ASCII segments (`A-Z a-z 0-9 . _ -`) joined by `/`; no segment is empty or
//! starts with a dot, so `..`, hidden files and absolute paths cannot be expressed, and the
//! `#` that the local backend uses for its staging files can never collide with a key.

use uuid::Uuid;

/// Longer keys are refused; ours are under 100 bytes.
const MAX_KEY_BYTES: usize = 512;

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
    #[error("the key has a character outside A-Z a-z 0-9 . _ - /")]
    Character,
    #[error("the key has an empty segment (a leading, trailing or doubled '/')")]
    EmptySegment,
    #[error("a segment of the key starts with '.'")]
    DotSegment,
}

/// `Ok` when `key` is a safe relative object key.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if !key.chars().all(allowed) {
        return Err(KeyError::Character);
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(KeyError::EmptySegment);
        }
        if segment.starts_with('.') {
            return Err(KeyError::DotSegment);
        }
    }
    Ok(())
}

/// `generations/{id}/original.{ext}`: the image as Gemini returned it (`png` or `jpg`).
pub fn original_key(generation: Uuid, ext: &str) -> String {
    format!("generations/{generation}/original.{ext}")
}

/// `generations/{id}/preview.jpg`: the JPEG sent as a Telegram photo.
pub fn preview_key(generation: Uuid) -> String {
    format!("generations/{generation}/preview.jpg")
}

/// `generations/{id}/conversation.json`: the Gemini conversation that made the picture (the
/// user turns with their references, the model turns as Gemini returned them, signatures
/// included), which an edit of it continues. Under the generation's folder, so `/deleteme`
/// erases it with the pictures.
pub fn conversation_key(generation: Uuid) -> String {
    format!("generations/{generation}/conversation.json")
}

/// `references/{id}/{index}.{ext}`: the user's reference photos, stored before the Gemini call.
pub fn reference_key(generation: Uuid, index: usize, ext: &str) -> String {
    format!("references/{generation}/{index}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_keys_are_valid_and_shaped_as_documented() {
        let id = Uuid::nil();
        let original = original_key(id, "png");
        assert_eq!(original, "generations/00000000-0000-0000-0000-000000000000/original.png");
        assert_eq!(preview_key(id), "generations/00000000-0000-0000-0000-000000000000/preview.jpg");
        assert_eq!(reference_key(id, 2, "jpg"), "references/00000000-0000-0000-0000-000000000000/2.jpg");
        for key in [original, preview_key(id), reference_key(id, 0, "jpg"), conversation_key(id)] {
            assert_eq!(validate_key(&key), Ok(()), "{key}");
        }
    }

    #[test]
    fn unsafe_keys_are_refused() {
        assert_eq!(validate_key(""), Err(KeyError::Empty));
        assert_eq!(validate_key(&"a".repeat(513)), Err(KeyError::TooLong));
        assert_eq!(validate_key("/etc/passwd"), Err(KeyError::EmptySegment));
        assert_eq!(validate_key("a//b"), Err(KeyError::EmptySegment));
        assert_eq!(validate_key("a/b/"), Err(KeyError::EmptySegment));
        assert_eq!(validate_key("../secret"), Err(KeyError::DotSegment));
        assert_eq!(validate_key("a/../../b"), Err(KeyError::DotSegment));
        assert_eq!(validate_key("a/./b"), Err(KeyError::DotSegment));
        assert_eq!(validate_key(".hidden"), Err(KeyError::DotSegment));
        assert_eq!(validate_key("a\\b"), Err(KeyError::Character));
        assert_eq!(validate_key("a b"), Err(KeyError::Character));
        assert_eq!(validate_key("a#1"), Err(KeyError::Character));
        assert_eq!(validate_key("ключ"), Err(KeyError::Character));
        assert_eq!(validate_key("a\0b"), Err(KeyError::Character));
        assert_eq!(validate_key("a/b.c_d-e/1.jpg"), Ok(()));
    }
}
