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

    /// Applies one change a settings button makes.
    pub fn apply(&mut self, change: SettingChange) {
        match change {
            SettingChange::Model(model) => self.model = model,
            SettingChange::Size(size) => self.size = size,
            SettingChange::AspectRatio(ratio) => self.aspect_ratio = ratio.to_owned(),
            SettingChange::Delivery(delivery) => self.delivery = delivery,
        }
    }
}

/// One change a settings button makes, named on the wire as `m:pro`, `s:2K`, `a:16:9`,
/// `d:photo` or `d:file` (after the button's `st:`, see `Button`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingChange {
    Model(Model),
    Size(ImageSize),
    /// One of `ASPECT_RATIOS`.
    AspectRatio(&'static str),
    Delivery(Delivery),
}

impl SettingChange {
    /// `None` when the change is not one we know.
    pub fn parse(text: &str) -> Option<Self> {
        let (field, value) = text.split_once(':')?;
        match field {
            "m" => Model::parse(value).ok().map(Self::Model),
            "s" => ImageSize::parse(value).ok().map(Self::Size),
            "a" => ASPECT_RATIOS.into_iter().find(|a| *a == value).map(Self::AspectRatio),
            "d" if value == "photo" => Some(Self::Delivery(Delivery::Photo)),
            "d" if value == "file" => Some(Self::Delivery(Delivery::PhotoAndFile)),
            _ => None,
        }
    }

    pub fn encode(self) -> String {
        match self {
            Self::Model(model) => format!("m:{model}"),
            Self::Size(size) => format!("s:{size}"),
            Self::AspectRatio(ratio) => format!("a:{ratio}"),
            Self::Delivery(Delivery::Photo) => "d:photo".to_owned(),
            Self::Delivery(Delivery::PhotoAndFile) => "d:file".to_owned(),
        }
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
        for change in ["m:pro", "s:4K", "a:16:9", "d:file"] {
            let parsed = SettingChange::parse(change).expect(change);
            assert_eq!(parsed.encode(), change);
            s.apply(parsed);
        }
        assert_eq!(s.image_size(), Some(ImageSize::K4));
        assert_eq!(Settings::from_json(&s.to_json()), s);
        for bad in ["m:ultra", "s:8K", "a:7:3", "d:fax", "zzz", "q:1"] {
            assert_eq!(SettingChange::parse(bad), None, "{bad}");
        }
        s.apply(SettingChange::Model(Model::Flash));
        assert_eq!(s.image_size(), None);
    }
}
