//! Style presets (DESIGN §10 "Styles"): a catalog in the resource file `resources/styles.json`
//! (embedded at build time) — a key, ru/en names, a prompt template with `{prompt}` where the
//! user's words go, a suggested aspect ratio and optionally a model. Pure: the model gets the
//! template applied; history shows the user's own words and the style's name.

use std::sync::LazyLock;

use serde::Deserialize;

use super::model::aspect_ratio;

/// One preset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Style {
    /// Ours, stable (stored on generations and in settings): 1–16 of `a-z 0-9`.
    pub key: String,
    pub name: StyleName,
    /// The prompt the model gets, with `{prompt}` replaced by the user's words.
    pub template: String,
    /// One of Gemini's ratios, used when the user has not chosen one other than the default.
    pub aspect_ratio: String,
    /// A catalog key to use instead of the user's model, if the style needs one.
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StyleName {
    pub ru: String,
    pub en: String,
}

impl Style {
    pub fn name(&self, en: bool) -> &str {
        if en {
            &self.name.en
        } else {
            &self.name.ru
        }
    }

    /// The prompt the model gets for the user's `words`.
    pub fn apply(&self, words: &str) -> String {
        self.template.replace("{prompt}", words.trim())
    }
}

/// The placeholder every template holds once.
const PLACEHOLDER: &str = "{prompt}";

/// Why the resource file is not a usable catalog (checked by a test, so never at run time).
pub fn validate(styles: &[Style]) -> Result<(), String> {
    if styles.len() < 10 {
        return Err(format!("{} styles; at least ten", styles.len()));
    }
    for (i, style) in styles.iter().enumerate() {
        let key_ok = (1..=16).contains(&style.key.len())
            && style.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !key_ok {
            return Err(format!("style {i}: key {:?} is not 1-16 of a-z 0-9", style.key));
        }
        if styles[..i].iter().any(|s| s.key == style.key) {
            return Err(format!("style {:?} twice", style.key));
        }
        if style.template.matches(PLACEHOLDER).count() != 1 {
            return Err(format!("style {:?}: the template must hold {PLACEHOLDER} once", style.key));
        }
        if aspect_ratio(&style.aspect_ratio).is_err() {
            return Err(format!("style {:?}: unknown ratio {}", style.key, style.aspect_ratio));
        }
        if style.name.ru.trim().is_empty() || style.name.en.trim().is_empty() {
            return Err(format!("style {:?}: a name in both languages", style.key));
        }
    }
    Ok(())
}

static STYLES: LazyLock<Vec<Style>> = LazyLock::new(|| {
    let styles: Vec<Style> = serde_json::from_str(include_str!("../../resources/styles.json"))
        .unwrap_or_else(|e| unreachable!("resources/styles.json is checked by tests: {e}"));
    styles
});

/// Every preset, in the file's order.
pub fn styles() -> &'static [Style] {
    &STYLES
}

/// The preset `key`, if the catalog has it (a key stored before a preset was removed reads as
/// none: the prompt goes as the user wrote it).
pub fn style(key: &str) -> Option<&'static Style> {
    STYLES.iter().find(|s| s.key == key)
}

/// The prompt the model gets: the style's template applied, or the user's words.
pub fn model_prompt(words: &str, style_key: Option<&str>) -> String {
    match style_key.and_then(style) {
        Some(style) => style.apply(words),
        None => words.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_file_is_a_valid_catalog_of_at_least_ten() {
        assert_eq!(validate(styles()), Ok(()));
        for key in [
            "photo",
            "portrait",
            "product",
            "anime",
            "watercolor",
            "pixel",
            "sticker",
            "logo",
            "poster",
            "render3d",
        ] {
            assert!(style(key).is_some(), "{key}");
        }
    }

    #[test]
    fn the_template_takes_the_users_words() {
        let anime = style("anime").expect("anime");
        let prompt = model_prompt("  a cat on a roof ", Some("anime"));
        assert!(prompt.starts_with("An anime illustration of a cat on a roof,"), "{prompt}");
        assert_eq!(anime.name(true), "🌸 Anime");
        assert_eq!(model_prompt("a cat", None), "a cat");
        assert_eq!(model_prompt("a cat", Some("gone")), "a cat");
    }

    #[test]
    fn bad_catalogs_are_named() {
        let mut bad = styles().to_vec();
        bad[0].template = "no placeholder".into();
        assert!(validate(&bad).is_err());
        assert!(validate(&styles()[..3]).is_err());
        let mut twice = styles().to_vec();
        twice[1].key = twice[0].key.clone();
        assert!(validate(&twice).is_err());
    }
}
