//! A user's generation settings: model, size (Pro only), aspect ratio and how results are
//! delivered. Stored as JSON; whatever cannot be read falls back to the default.

use serde::{Deserialize, Serialize};

use super::{ImageSize, Model};

/// The aspect ratios Gemini's image models accept.
pub const ASPECT_RATIOS: [&str; 10] =
    ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The preview as a photo.
    #[default]
    Photo,
    /// The photo and the original as a file.
    PhotoAndFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub model: Model,
    /// Used by the Pro model only.
    pub size: ImageSize,
    pub aspect_ratio: String,
    pub delivery: Delivery,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: Model::Flash,
            size: ImageSize::K1,
            aspect_ratio: "1:1".to_owned(),
            delivery: Delivery::Photo,
        }
    }
}

impl Settings {
    /// Reads stored settings; anything unreadable or out of range becomes the default.
    pub fn from_json(value: &serde_json::Value) -> Self {
        let mut settings: Settings = serde_json::from_value(value.clone()).unwrap_or_default();
        if !ASPECT_RATIOS.contains(&settings.aspect_ratio.as_str()) {
            settings.aspect_ratio = Settings::default().aspect_ratio;
        }
        settings
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The size to ask for: Pro's chosen size, none for Flash.
    pub fn image_size(&self) -> Option<ImageSize> {
        match self.model {
            Model::Pro => Some(self.size),
            Model::Flash => None,
        }
    }

    /// Applies one change named as in a settings button (`m:pro`, `s:2K`, `a:16:9`, `d:file`);
    /// `false` when the change is not one we know.
    pub fn apply(&mut self, change: &str) -> bool {
        let Some((field, value)) = change.split_once(':') else {
            return false;
        };
        match field {
            "m" => match Model::parse(value) {
                Ok(model) => self.model = model,
                Err(_) => return false,
            },
            "s" => match ImageSize::parse(value) {
                Ok(size) => self.size = size,
                Err(_) => return false,
            },
            "a" if ASPECT_RATIOS.contains(&value) => self.aspect_ratio = value.to_owned(),
            "d" if value == "photo" => self.delivery = Delivery::Photo,
            "d" if value == "file" => self.delivery = Delivery::PhotoAndFile,
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_leniently_and_applies_button_changes() {
        assert_eq!(
            Settings::from_json(&serde_json::json!({"aspect_ratio": "7:3", "x": 1})),
            Settings::default()
        );
        let mut s = Settings::default();
        assert!(s.apply("m:pro") && s.apply("s:4K") && s.apply("a:16:9") && s.apply("d:file"));
        assert_eq!(s.image_size(), Some(ImageSize::K4));
        assert_eq!(Settings::from_json(&s.to_json()), s);
        for bad in ["m:ultra", "s:8K", "a:7:3", "d:fax", "zzz", "q:1"] {
            assert!(!s.apply(bad), "{bad}");
        }
        s.apply("m:flash");
        assert_eq!(s.image_size(), None);
    }
}
