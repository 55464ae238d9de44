//! What identifies a model and a picture's format: our stable model key (what users' settings
//! and generations store; the catalog maps it to Google's id), the sizes Gemini renders and the
//! aspect ratios it knows. The models themselves are configuration (`catalog`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{0:?} is not a model key (1–24 of a-z, 0-9, ., _ and -)")]
    BadKey(String),
    #[error("unknown image size {0:?} (expected 1K, 2K or 4K)")]
    UnknownSize(String),
    #[error("unknown aspect ratio {0:?} (expected one of {list})", list = ALL_ASPECT_RATIOS.join(", "))]
    UnknownRatio(String),
}

/// Our stable name for a model in the catalog: short enough for a button's callback data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Model(String);

impl Model {
    pub const MAX_LEN: usize = 24;

    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let key = text.trim().to_ascii_lowercase();
        let valid = (1..=Self::MAX_LEN).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(key))
        } else {
            Err(ModelError::BadKey(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gemini's `imageConfig.imageSize`: upper-case K, as the API insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ImageSize {
    #[serde(rename = "1K")]
    K1,
    #[serde(rename = "2K")]
    K2,
    #[serde(rename = "4K")]
    K4,
}

impl ImageSize {
    pub const ALL: [ImageSize; 3] = [ImageSize::K1, ImageSize::K2, ImageSize::K4];

    pub fn parse(text: &str) -> Result<Self, ModelError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "1K" => Ok(Self::K1),
            "2K" => Ok(Self::K2),
            "4K" => Ok(Self::K4),
            _ => Err(ModelError::UnknownSize(text.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::K1 => "1K",
            Self::K2 => "2K",
            Self::K4 => "4K",
        }
    }

    /// The long side Gemini renders a square picture of this size at.
    pub fn long_side(self) -> u32 {
        match self {
            Self::K1 => 1024,
            Self::K2 => 2048,
            Self::K4 => 4096,
        }
    }

    /// The size a delivered picture really is, from its pixels: the largest size whose area
    /// (the square of its long side) it reaches at least half of. Gemini keeps the area of a
    /// size about constant across ratios (a 1K 21:9 picture is 1584×672, long side past 1K),
    /// so the area, not the long side, tells the sizes apart. `None`: well below 1K.
    pub fn measured(width: u32, height: u32) -> Option<Self> {
        let area = u64::from(width) * u64::from(height);
        Self::ALL.into_iter().rev().find(|size| area * 2 >= u64::from(size.long_side()).pow(2))
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every aspect ratio Gemini's image models know (Nano Banana 2.1 takes all of them; the
/// others the first ten). A model's own list is in the catalog.
pub const ALL_ASPECT_RATIOS: [&str; 14] =
    ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8", "8:1"];

/// The ten ratios every Gemini image model takes.
pub const COMMON_ASPECT_RATIOS: [&str; 10] =
    ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"];

/// The known ratio with this text, as a `'static` value (callback data round-trips through it).
pub fn aspect_ratio(text: &str) -> Result<&'static str, ModelError> {
    ALL_ASPECT_RATIOS
        .into_iter()
        .find(|r| *r == text.trim())
        .ok_or_else(|| ModelError::UnknownRatio(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_sizes_and_ratios() {
        assert_eq!(Model::parse("Pro").map(|m| m.to_string()), Ok("pro".to_owned()));
        assert!(Model::parse("nb-2.1_x").is_ok());
        assert!(
            Model::parse("").is_err()
                && Model::parse("a b").is_err()
                && Model::parse(&"x".repeat(25)).is_err()
        );
        assert_eq!(ImageSize::parse("4k"), Ok(ImageSize::K4));
        assert!(ImageSize::parse("8K").is_err());
        assert_eq!(aspect_ratio("8:1"), Ok("8:1"));
        assert!(aspect_ratio("7:3").is_err());
    }

    #[test]
    fn measures_the_size_of_a_picture() {
        assert_eq!(ImageSize::measured(1024, 1024), Some(ImageSize::K1));
        assert_eq!(ImageSize::measured(1376, 768), Some(ImageSize::K1));
        assert_eq!(ImageSize::measured(1584, 672), Some(ImageSize::K1));
        assert_eq!(ImageSize::measured(384, 3072), Some(ImageSize::K1));
        assert_eq!(ImageSize::measured(2048, 2048), Some(ImageSize::K2));
        assert_eq!(ImageSize::measured(2752, 1536), Some(ImageSize::K2));
        assert_eq!(ImageSize::measured(4096, 4096), Some(ImageSize::K4));
        assert_eq!(ImageSize::measured(5504, 3072), Some(ImageSize::K4));
        assert_eq!(ImageSize::measured(512, 512), None);
    }
}
