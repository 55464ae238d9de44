//! The two image models we sell and the output sizes the Pro model offers.
//! The provider's model ids live in configuration; these are our stable names for them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model {0:?} (expected pro or flash)")]
    UnknownModel(String),
    #[error("unknown image size {0:?} (expected 1K, 2K or 4K)")]
    UnknownSize(String),
}

/// "Nano Banana Pro" (`Pro`) or "Nano Banana 2" (`Flash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Pro,
    Flash,
}

impl Model {
    pub const ALL: [Model; 2] = [Model::Pro, Model::Flash];

    pub fn parse(text: &str) -> Result<Self, ModelError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "pro" => Ok(Self::Pro),
            "flash" => Ok(Self::Flash),
            _ => Err(ModelError::UnknownModel(text.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pro => "pro",
            Self::Flash => "flash",
        }
    }

    /// Only the Pro model accepts `imageSize`; Flash always renders at its one size.
    pub fn sizes(self) -> &'static [Option<ImageSize>] {
        match self {
            Self::Pro => &[Some(ImageSize::K1), Some(ImageSize::K2), Some(ImageSize::K4)],
            Self::Flash => &[None],
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Gemini's `imageConfig.imageSize`: upper-case K, as the API insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ImageSize {
    #[serde(rename = "1K")]
    K1,
    #[serde(rename = "2K")]
    K2,
    #[serde(rename = "4K")]
    K4,
}

impl ImageSize {
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
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model's name as users know it.
pub fn model_name(model: Model, size: Option<ImageSize>) -> String {
    match (model, size) {
        (Model::Flash, _) => "Nano Banana 2".to_owned(),
        (Model::Pro, Some(size)) => format!("Nano Banana Pro {size}"),
        (Model::Pro, None) => "Nano Banana Pro".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_models_and_sizes() {
        assert_eq!(Model::parse("Pro"), Ok(Model::Pro));
        assert_eq!(Model::parse("flash"), Ok(Model::Flash));
        assert!(Model::parse("ultra").is_err());
        assert_eq!(ImageSize::parse("4k"), Ok(ImageSize::K4));
        assert!(ImageSize::parse("8K").is_err());
        assert_eq!(Model::Flash.sizes(), &[None]);
    }
}
