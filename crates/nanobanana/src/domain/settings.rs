//! A user's generation settings: model (a catalog key), size, aspect ratio and how results are
//! delivered. Stored as JSON; whatever cannot be read falls back to the default, and what the
//! catalog lacks is fitted by `Catalog::resolve` (the model key is kept as stored, so a key of
//! the previous release — `"flash"`, `"pro"` — still reads).

use serde::{Deserialize, Serialize};

use super::model::{aspect_ratio, ALL_ASPECT_RATIOS};
use super::{Catalog, Choice, ImageSize, Model};

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
    /// `None`: never chosen, the catalog's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    pub size: ImageSize,
    pub aspect_ratio: String,
    pub delivery: Delivery,
    /// Whether broadcasts reach the user ("news: on/off" in `/settings`).
    pub news: bool,
    /// Pictures per prompt: 1, 2 or 4 (DESIGN §10 "Variants and cancel").
    pub variants: u8,
    /// A style preset applied to every prompt until turned off (`domain::styles`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
}

/// The numbers of variants a request may ask for.
pub const VARIANTS: [u8; 3] = [1, 2, 4];

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            size: ImageSize::K1,
            aspect_ratio: "1:1".to_owned(),
            delivery: Delivery::Photo,
            news: true,
            variants: 1,
            style: None,
        }
    }
}

impl Settings {
    /// Reads stored settings; anything unreadable or out of range becomes the default.
    pub fn from_json(value: &serde_json::Value) -> Self {
        let mut settings = match serde_json::from_value::<Settings>(value.clone()) {
            Ok(settings) => settings,
            // One bad field (an old model key with spaces, say) must not lose the others.
            Err(_) => {
                let mut lenient = value.clone();
                if let Some(object) = lenient.as_object_mut() {
                    object.remove("model");
                }
                serde_json::from_value(lenient).unwrap_or_default()
            }
        };
        settings.model = settings.model.and_then(|m| Model::parse(m.as_str()).ok());
        if aspect_ratio(&settings.aspect_ratio).is_err() {
            settings.aspect_ratio = Settings::default().aspect_ratio;
        }
        if !VARIANTS.contains(&settings.variants) {
            settings.variants = 1;
        }
        settings.style = settings.style.filter(|key| super::styles::style(key).is_some());
        settings
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// These settings against the catalog: the model, and the size and ratio it offers.
    pub fn choice<'c>(&self, catalog: &'c Catalog) -> Choice<'c> {
        catalog.resolve(self.model.as_ref(), self.size, &self.aspect_ratio)
    }

    /// Applies one change a settings button makes.
    pub fn apply(&mut self, change: SettingChange) {
        match change {
            SettingChange::Model(model) => self.model = Some(model),
            SettingChange::Size(size) => self.size = size,
            SettingChange::AspectRatio(ratio) => self.aspect_ratio = ratio.to_owned(),
            SettingChange::Delivery(delivery) => self.delivery = delivery,
            SettingChange::News(on) => self.news = on,
            SettingChange::Variants(n) => self.variants = n,
        }
    }
}

/// One change a settings button makes, named on the wire as `m:pro`, `s:2K`, `a:16:9`,
/// `d:photo`, `d:file`, `n:on` or `n:off` (after the button's `st:`, see `Button`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingChange {
    /// A catalog key (checked against the catalog when applied).
    Model(Model),
    Size(ImageSize),
    /// One of `ALL_ASPECT_RATIOS`.
    AspectRatio(&'static str),
    Delivery(Delivery),
    /// Broadcasts on or off.
    News(bool),
    /// One of `VARIANTS` (`v:4`).
    Variants(u8),
}

impl SettingChange {
    /// `None` when the change is not one we know.
    pub fn parse(text: &str) -> Option<Self> {
        let (field, value) = text.split_once(':')?;
        match field {
            "m" => Model::parse(value).ok().map(Self::Model),
            "s" => ImageSize::parse(value).ok().map(Self::Size),
            "a" => ALL_ASPECT_RATIOS.into_iter().find(|a| *a == value).map(Self::AspectRatio),
            "d" if value == "photo" => Some(Self::Delivery(Delivery::Photo)),
            "d" if value == "file" => Some(Self::Delivery(Delivery::PhotoAndFile)),
            "n" if value == "on" => Some(Self::News(true)),
            "n" if value == "off" => Some(Self::News(false)),
            "v" => value.parse().ok().filter(|n| VARIANTS.contains(n)).map(Self::Variants),
            _ => None,
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Self::Model(model) => format!("m:{model}"),
            Self::Size(size) => format!("s:{size}"),
            Self::AspectRatio(ratio) => format!("a:{ratio}"),
            Self::Delivery(Delivery::Photo) => "d:photo".to_owned(),
            Self::Delivery(Delivery::PhotoAndFile) => "d:file".to_owned(),
            Self::News(true) => "n:on".to_owned(),
            Self::News(false) => "n:off".to_owned(),
            Self::Variants(n) => format!("v:{n}"),
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
        for change in ["m:pro", "s:4K", "a:16:9", "d:file", "v:4", "n:off"] {
            let parsed = SettingChange::parse(change).expect(change);
            assert_eq!(parsed.encode(), change);
            s.apply(parsed);
        }
        assert_eq!((s.size, s.variants), (ImageSize::K4, 4));
        assert!(!s.news);
        assert_eq!(Settings::from_json(&s.to_json()), s);
        for bad in ["m:ultra ultra", "s:8K", "a:7:3", "d:fax", "zzz", "q:1", "v:3", "v:x"] {
            assert_eq!(SettingChange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn odd_variants_and_unknown_styles_read_as_the_default() {
        let odd = Settings::from_json(&serde_json::json!({"variants": 3, "style": "no-such"}));
        assert_eq!((odd.variants, odd.style), (1, None));
        let fine = Settings::from_json(&serde_json::json!({"variants": 2, "style": "anime"}));
        assert_eq!((fine.variants, fine.style.as_deref()), (2, Some("anime")));
    }

    #[test]
    fn the_previous_release_settings_still_read() {
        let catalog = crate::domain::default_catalog();
        let stored =
            serde_json::json!({"model": "flash", "size": "1K", "aspect_ratio": "16:9", "delivery": "photo"});
        let settings = Settings::from_json(&stored);
        let choice = settings.choice(&catalog);
        assert_eq!((choice.model.key.as_str(), choice.ratio, choice.replaced), ("nb21", "16:9", None));
        let pro = Settings::from_json(&serde_json::json!({"model": "pro", "size": "4K"}));
        assert_eq!(pro.choice(&catalog).model.id, "gemini-3-pro-image");
        let gone = Settings::from_json(&serde_json::json!({"model": "ultra"}));
        assert_eq!(gone.choice(&catalog).replaced.map(|m| m.to_string()), Some("ultra".to_owned()));
    }
}
