//! The model catalog (DESIGN §10 "The model catalog is configuration"): the models we sell,
//! each with our stable key, Google's id, names in both languages, the sizes and aspect ratios
//! it offers, its reference limit, and per size the price in credits and the provider's cost.
//! Pure: `Catalog::new` validates a list of `ModelSpec` (as read from configuration) and names
//! the model and field of every problem; the lookups, the settings' resolution against the
//! catalog and the price of a picture smaller than bought live here too.

use serde::Deserialize;

use super::model::{aspect_ratio, ALL_ASPECT_RATIOS, COMMON_ASPECT_RATIOS};
use super::{Credits, ImageSize, MicroUsd, Model};

/// One model as configuration describes it, before validation. Every field is optional here
/// so that a missing one is reported by name, with its model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub key: Option<String>,
    /// Google's model id (`gemini-3-pro-image`).
    pub id: Option<String>,
    pub name: Option<Names>,
    pub sizes: Option<Vec<String>>,
    pub ratios: Option<Vec<String>>,
    pub max_references: Option<u32>,
    /// Credits per size: `{"1K": 10, "2K": 15}`.
    pub price: Option<std::collections::BTreeMap<String, i64>>,
    /// US dollars per size as decimal text: `{"1K": "0.034"}`.
    pub cost_usd: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub default: bool,
    /// Whether the model takes `imageConfig.imageSize` (default yes; a one-size model may not).
    pub image_size: Option<bool>,
    /// Keys this model answers to besides its own: earlier models it replaces, so stored
    /// settings naming them keep working (`flash` → Nano Banana 2.1).
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Names {
    pub ru: String,
    pub en: String,
}

/// A size a model offers, its price and what one picture of it costs us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub size: ImageSize,
    pub price: Credits,
    pub cost: MicroUsd,
}

/// A validated model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModel {
    pub key: Model,
    pub id: String,
    pub names: Names,
    /// By size, smallest first; never empty.
    pub offers: Vec<Offer>,
    /// Never empty; each one of `ALL_ASPECT_RATIOS`.
    pub ratios: Vec<&'static str>,
    pub max_references: u32,
    pub takes_size: bool,
    pub aliases: Vec<Model>,
}

/// A problem with the catalog, naming the model (its key, or its place in the list) and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model {model}: {field}: {problem}")]
pub struct CatalogError {
    pub model: String,
    pub field: &'static str,
    pub problem: String,
}

/// What we know Google's models take (external-apis.md, Gemini): a catalog entry for one of
/// these ids may not offer more. Other ids are trusted with any known size and ratio.
struct Known {
    id: &'static str,
    sizes: &'static [ImageSize],
    ratios: &'static [&'static str],
}

const KNOWN: [Known; 4] = [
    Known { id: "gemini-3-pro-image", sizes: &ImageSize::ALL, ratios: &COMMON_ASPECT_RATIOS },
    Known { id: "gemini-nano-banana-2.1", sizes: &ImageSize::ALL, ratios: &ALL_ASPECT_RATIOS },
    Known { id: "gemini-3.1-flash-lite-image", sizes: &[ImageSize::K1], ratios: &COMMON_ASPECT_RATIOS },
    Known { id: "gemini-3.1-flash-image", sizes: &[ImageSize::K1], ratios: &COMMON_ASPECT_RATIOS },
];

impl CatalogModel {
    pub fn name(&self, lang_en: bool) -> &str {
        if lang_en {
            &self.names.en
        } else {
            &self.names.ru
        }
    }

    /// "Nano Banana Pro 4K"; a one-size model is just its name.
    pub fn label(&self, lang_en: bool, size: ImageSize) -> String {
        if self.offers.len() > 1 {
            format!("{} {size}", self.name(lang_en))
        } else {
            self.name(lang_en).to_owned()
        }
    }

    pub fn sizes(&self) -> impl Iterator<Item = ImageSize> + '_ {
        self.offers.iter().map(|o| o.size)
    }

    pub fn offer(&self, size: ImageSize) -> Option<&Offer> {
        self.offers.iter().find(|o| o.size == size)
    }

    /// The offered size for a wish: itself if offered, else the largest offered below it,
    /// else the smallest offered.
    pub fn fit_size(&self, wanted: ImageSize) -> ImageSize {
        self.offers.iter().rev().find(|o| o.size <= wanted).unwrap_or(&self.offers[0]).size
    }

    pub fn price(&self, size: ImageSize) -> Credits {
        self.offer(self.fit_size(size)).map_or(self.offers[0].price, |o| o.price)
    }

    pub fn cost(&self, size: ImageSize) -> MicroUsd {
        self.offer(self.fit_size(size)).map_or(self.offers[0].cost, |o| o.cost)
    }

    /// What a picture bought at `bought` but delivered at `delivered` (`None`: below 1K) is
    /// charged, and the size it is charged as: the price of the size delivered, never more
    /// than the price bought.
    pub fn charge(&self, bought: ImageSize, delivered: Option<ImageSize>) -> (Credits, ImageSize) {
        let paid = self.price(bought);
        let got = match delivered {
            Some(size) if size >= bought => return (paid, bought),
            Some(size) => self.fit_size(size),
            None => self.offers[0].size,
        };
        let price = self.price(got);
        (if price.get() <= paid.get() { price } else { paid }, got)
    }

    fn answers_to(&self, key: &Model) -> bool {
        self.key == *key || self.aliases.contains(key)
    }
}

/// The validated catalog: at least one model, exactly one of them the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    models: Vec<CatalogModel>,
    default: usize,
}

/// A user's settings resolved against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice<'a> {
    pub model: &'a CatalogModel,
    pub size: ImageSize,
    pub ratio: &'static str,
    /// The stored model key named no model of the catalog: the default took its place.
    pub replaced: Option<Model>,
}

impl Catalog {
    /// Validates every spec; all problems at once.
    pub fn new(specs: &[ModelSpec]) -> Result<Self, Vec<CatalogError>> {
        let mut errors = Vec::new();
        let mut models = Vec::new();
        let mut defaults = Vec::new();
        if specs.is_empty() {
            errors.push(CatalogError {
                model: "-".into(),
                field: "models",
                problem: "the catalog is empty".into(),
            });
        }
        for (index, spec) in specs.iter().enumerate() {
            if let Some(model) = validate(index, spec, &mut errors) {
                if spec.default {
                    defaults.push(models.len());
                }
                let taken = models.iter().find(|m: &&CatalogModel| {
                    m.answers_to(&model.key) || model.aliases.iter().any(|a| m.answers_to(a))
                });
                if let Some(other) = taken {
                    errors.push(CatalogError {
                        model: model.key.to_string(),
                        field: "key",
                        problem: format!("duplicate key: model {} already answers to it", other.key),
                    });
                }
                models.push(model);
            }
        }
        match defaults.as_slice() {
            [one] if errors.is_empty() => return Ok(Self { models, default: *one }),
            [] if !specs.is_empty() => errors.push(CatalogError {
                model: "-".into(),
                field: "default",
                problem: "no model is marked \"default\": true".into(),
            }),
            [_, second, ..] => errors.push(CatalogError {
                model: models[*second].key.to_string(),
                field: "default",
                problem: "more than one model is the default".into(),
            }),
            _ => {}
        }
        Err(errors)
    }

    /// Models in the catalog's order.
    pub fn models(&self) -> &[CatalogModel] {
        &self.models
    }

    pub fn default_model(&self) -> &CatalogModel {
        &self.models[self.default]
    }

    /// The model this key (or one of its aliases) names.
    pub fn get(&self, key: &Model) -> Option<&CatalogModel> {
        self.models.iter().find(|m| m.answers_to(key))
    }

    /// The model a stored key names, parsed leniently (`None` for any key the catalog lacks).
    pub fn find(&self, stored: &str) -> Option<&CatalogModel> {
        Model::parse(stored).ok().and_then(|key| self.get(&key))
    }

    pub fn get_mut(&mut self, key: &Model) -> Option<&mut CatalogModel> {
        self.models.iter_mut().find(|m| m.answers_to(key))
    }

    /// "Nano Banana Pro 4K" for a stored generation; its raw key when the catalog lacks it.
    pub fn label(&self, lang_en: bool, stored_key: &str, size: Option<ImageSize>) -> String {
        match self.find(stored_key) {
            Some(model) => model.label(lang_en, size.unwrap_or(model.offers[0].size)),
            None => stored_key.to_owned(),
        }
    }

    /// The user's model (the default for none or one the catalog lacks), with the chosen size
    /// and ratio fitted to what that model offers.
    pub fn resolve(&self, key: Option<&Model>, size: ImageSize, ratio: &str) -> Choice<'_> {
        let found = key.and_then(|k| self.get(k));
        let replaced = key.filter(|_| found.is_none()).cloned();
        let model = found.unwrap_or(self.default_model());
        let ratio = model
            .ratios
            .iter()
            .copied()
            .find(|r| *r == ratio)
            .or_else(|| model.ratios.iter().copied().find(|r| *r == "1:1"))
            .unwrap_or(model.ratios[0]);
        Choice { model, size: model.fit_size(size), ratio, replaced }
    }
}

mod defaults;
mod validate;

pub use defaults::{default_catalog, default_specs};
use validate::validate;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Model {
        Model::parse(k).expect("key")
    }

    #[test]
    fn the_default_catalog_is_valid_and_keeps_the_seed_price() {
        let catalog = Catalog::new(&default_specs()).expect("valid");
        let default = catalog.default_model();
        assert_eq!((default.key.as_str(), default.id.as_str()), ("nb21", "gemini-nano-banana-2.1"));
        assert_eq!(default.price(ImageSize::K1).get(), 10);
        assert_eq!(default.ratios.len(), 14);
        assert_eq!(catalog.get(&key("pro")).map(|m| m.ratios.len()), Some(10));
        assert_eq!(
            catalog.get(&key("lite")).map(|m| m.sizes().collect::<Vec<_>>()),
            Some(vec![ImageSize::K1])
        );
        // The previous release's keys: `flash` is now Nano Banana 2.1.
        assert_eq!(catalog.get(&key("flash")).map(|m| m.key.as_str()), Some("nb21"));
    }

    fn errors(specs: Vec<ModelSpec>) -> Vec<String> {
        Catalog::new(&specs).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_problem_names_its_model_and_field() {
        let mut specs = default_specs();
        specs[2].key = Some("pro".into());
        let found = errors(specs);
        assert!(found.iter().any(|e| e.starts_with("model pro: key: duplicate key")), "{found:?}");

        let mut specs = default_specs();
        specs[0].sizes = Some(vec!["1K".into(), "8K".into()]);
        assert!(errors(specs).iter().any(|e| e.starts_with("model pro: sizes: unknown image size \"8K\"")));

        let mut specs = default_specs();
        specs[2].sizes = Some(vec!["1K".into(), "2K".into()]);
        assert!(errors(specs).iter().any(|e| e.starts_with("model lite: sizes: unknown size \"2K\"")));

        let mut specs = default_specs();
        specs[0].ratios = Some(vec!["1:1".into(), "1:8".into()]);
        let found = errors(specs);
        assert!(
            found.iter().any(|e| e == "model pro: ratios: 1:8 is a ratio gemini-3-pro-image does not take"),
            "{found:?}"
        );

        let mut specs = default_specs();
        if let Some(p) = specs[1].price.as_mut() {
            p.remove("2K");
        }
        assert!(errors(specs).iter().any(|e| e == "model nb21: price: missing price for 2K"));

        let mut specs = default_specs();
        specs[0].default = true;
        assert!(errors(specs).iter().any(|e| e.starts_with("model nb21: default: more than one")));
    }

    #[test]
    fn settings_resolve_against_the_catalog() {
        let catalog = default_catalog();
        let choice = catalog.resolve(Some(&key("lite")), ImageSize::K4, "8:1");
        assert_eq!((choice.model.key.as_str(), choice.size, choice.ratio), ("lite", ImageSize::K1, "1:1"));
        let choice = catalog.resolve(Some(&key("ultra")), ImageSize::K2, "16:9");
        assert_eq!(
            (choice.model.key.as_str(), choice.size, choice.replaced),
            ("nb21", ImageSize::K2, Some(key("ultra")))
        );
        let choice = catalog.resolve(None, ImageSize::K1, "1:1");
        assert_eq!(choice.replaced, None);
    }

    #[test]
    fn a_smaller_picture_costs_the_price_of_its_size_never_more() {
        let catalog = default_catalog();
        let pro = catalog.get(&key("pro")).expect("pro");
        assert_eq!(
            pro.charge(ImageSize::K4, Some(ImageSize::K1)),
            (Credits::new(20).expect("c"), ImageSize::K1)
        );
        assert_eq!(pro.charge(ImageSize::K4, Some(ImageSize::K4)).0.get(), 35);
        assert_eq!(pro.charge(ImageSize::K2, None).0.get(), 20);
        assert_eq!(pro.charge(ImageSize::K1, Some(ImageSize::K4)).0.get(), 20);
    }
}
