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
            errors.push(CatalogError { model: "-".into(), field: "models", problem: "the catalog is empty".into() });
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

fn validate(index: usize, spec: &ModelSpec, errors: &mut Vec<CatalogError>) -> Option<CatalogModel> {
    let before = errors.len();
    let name = spec.key.clone().unwrap_or_else(|| format!("#{}", index + 1));
    let mut fail = |field: &'static str, problem: String| {
        errors.push(CatalogError { model: name.clone(), field, problem });
    };
    let key = match spec.key.as_deref().map(Model::parse) {
        Some(Ok(key)) => Some(key),
        Some(Err(e)) => {
            fail("key", e.to_string());
            None
        }
        None => {
            fail("key", "missing".into());
            None
        }
    };
    let id = spec.id.clone().filter(|id| {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    if id.is_none() {
        fail("id", "missing or not a Gemini model id (a-z, 0-9, ., _ and -)".into());
    }
    let known = id.as_deref().and_then(|id| KNOWN.iter().find(|k| k.id == id));
    let names = spec.name.clone().filter(|n| !n.ru.trim().is_empty() && !n.en.trim().is_empty());
    if names.is_none() {
        fail("name", "missing: {\"ru\": …, \"en\": …}, both non-empty".into());
    }
    let mut sizes = Vec::new();
    for raw in spec.sizes.iter().flatten() {
        match ImageSize::parse(raw) {
            Ok(size) if known.is_some_and(|k| !k.sizes.contains(&size)) => {
                let id = id.as_deref().unwrap_or_default();
                fail("sizes", format!("unknown size {raw:?} for {id}, which renders only {}", list(known.map(|k| k.sizes))));
            }
            Ok(size) if sizes.contains(&size) => fail("sizes", format!("{size} is listed twice")),
            Ok(size) => sizes.push(size),
            Err(e) => fail("sizes", e.to_string()),
        }
    }
    sizes.sort();
    if spec.sizes.as_ref().is_none_or(Vec::is_empty) {
        fail("sizes", "missing: at least one of 1K, 2K, 4K".into());
    }
    let mut ratios = Vec::new();
    for raw in spec.ratios.iter().flatten() {
        match aspect_ratio(raw) {
            Ok(ratio) if known.is_some_and(|k| !k.ratios.contains(&ratio)) => {
                let id = id.as_deref().unwrap_or_default();
                fail("ratios", format!("{ratio} is a ratio {id} does not take"));
            }
            Ok(ratio) if ratios.contains(&ratio) => fail("ratios", format!("{ratio} is listed twice")),
            Ok(ratio) => ratios.push(ratio),
            Err(e) => fail("ratios", e.to_string()),
        }
    }
    if spec.ratios.as_ref().is_none_or(Vec::is_empty) {
        fail("ratios", "missing: at least one aspect ratio".into());
    }
    let max_references = spec.max_references.filter(|n| *n <= 14);
    if max_references.is_none() {
        fail("max_references", "missing or above Gemini's 14".into());
    }
    let mut offers = Vec::new();
    for size in &sizes {
        let price = spec.price.as_ref().and_then(|p| p.get(size.as_str()));
        let price = match price.map(|p| Credits::new(*p)) {
            Some(Ok(price)) => Some(price),
            Some(Err(e)) => {
                fail("price", format!("{size}: {e}"));
                None
            }
            None => {
                fail("price", format!("missing price for {size}"));
                None
            }
        };
        let cost = spec.cost_usd.as_ref().and_then(|c| c.get(size.as_str()));
        let cost = match cost.map(|c| MicroUsd::parse_dollars(c)) {
            Some(Ok(cost)) => Some(cost),
            Some(Err(e)) => {
                fail("cost_usd", format!("{size}: {e}"));
                None
            }
            None => {
                fail("cost_usd", format!("missing cost for {size}"));
                None
            }
        };
        if let (Some(price), Some(cost)) = (price, cost) {
            offers.push(Offer { size: *size, price, cost });
        }
    }
    for (field, extra) in [
        ("price", spec.price.iter().flat_map(|p| p.keys()).collect::<Vec<_>>()),
        ("cost_usd", spec.cost_usd.iter().flat_map(|c| c.keys()).collect()),
    ] {
        for size in extra {
            if !sizes.iter().any(|s| s.as_str() == size) {
                fail(field, format!("{size} is not among the model's sizes"));
            }
        }
    }
    let mut aliases = Vec::new();
    for raw in &spec.aliases {
        match Model::parse(raw) {
            Ok(alias) => aliases.push(alias),
            Err(e) => fail("aliases", e.to_string()),
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(CatalogModel {
        key: key?,
        id: id?,
        names: names?,
        offers,
        ratios,
        max_references: max_references?,
        takes_size: spec.image_size.unwrap_or(true),
        aliases,
    })
}

fn list(sizes: Option<&[ImageSize]>) -> String {
    sizes.unwrap_or_default().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// The catalog a deployment gets without `MODEL_CATALOG` (December 2026). Prices: the default
/// model's 1K picture keeps the seed's 10 credits; every price is above its cost at 100 ₽/$.
pub fn default_specs() -> Vec<ModelSpec> {
    let spec = |key: &str, id: &str, ru: &str, en: &str, sizes: &[&str], ratios: &[&str]| ModelSpec {
        key: Some(key.into()),
        id: Some(id.into()),
        name: Some(Names { ru: ru.into(), en: en.into() }),
        sizes: Some(sizes.iter().map(|s| (*s).to_owned()).collect()),
        ratios: Some(ratios.iter().map(|s| (*s).to_owned()).collect()),
        max_references: Some(14),
        ..ModelSpec::default()
    };
    let table = |pairs: &[(&str, i64)]| Some(pairs.iter().map(|(s, p)| ((*s).to_owned(), *p)).collect());
    let costs = |pairs: &[(&str, &str)]| Some(pairs.iter().map(|(s, c)| ((*s).to_owned(), (*c).to_owned())).collect());
    let mut nb21 = spec("nb21", "gemini-nano-banana-2.1", "Nano Banana 2.1", "Nano Banana 2.1", &["1K", "2K", "4K"], &ALL_ASPECT_RATIOS);
    nb21.price = table(&[("1K", 10), ("2K", 15), ("4K", 25)]);
    nb21.cost_usd = costs(&[("1K", "0.034"), ("2K", "0.067"), ("4K", "0.134")]);
    nb21.default = true;
    nb21.aliases = vec!["flash".into()];
    let mut pro = spec("pro", "gemini-3-pro-image", "Nano Banana Pro", "Nano Banana Pro", &["1K", "2K", "4K"], &COMMON_ASPECT_RATIOS);
    pro.price = table(&[("1K", 20), ("2K", 20), ("4K", 35)]);
    pro.cost_usd = costs(&[("1K", "0.134"), ("2K", "0.134"), ("4K", "0.24")]);
    let mut lite = spec("lite", "gemini-3.1-flash-lite-image", "Nano Banana 2 Lite", "Nano Banana 2 Lite", &["1K"], &COMMON_ASPECT_RATIOS);
    lite.price = table(&[("1K", 5)]);
    lite.cost_usd = costs(&[("1K", "0.02")]);
    lite.image_size = Some(false);
    lite.max_references = Some(3);
    vec![pro, nb21, lite]
}

/// The built-in catalog.
pub fn default_catalog() -> Catalog {
    Catalog::new(&default_specs()).unwrap_or_else(|e| unreachable!("the built-in catalog is valid (tested): {e:?}"))
}

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
        assert_eq!(catalog.get(&key("lite")).map(|m| m.sizes().collect::<Vec<_>>()), Some(vec![ImageSize::K1]));
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
        assert!(found.iter().any(|e| e == "model pro: ratios: 1:8 is a ratio gemini-3-pro-image does not take"), "{found:?}");

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
        assert_eq!((choice.model.key.as_str(), choice.size, choice.replaced), ("nb21", ImageSize::K2, Some(key("ultra"))));
        let choice = catalog.resolve(None, ImageSize::K1, "1:1");
        assert_eq!(choice.replaced, None);
    }

    #[test]
    fn a_smaller_picture_costs_the_price_of_its_size_never_more() {
        let catalog = default_catalog();
        let pro = catalog.get(&key("pro")).expect("pro");
        assert_eq!(pro.charge(ImageSize::K4, Some(ImageSize::K1)), (Credits::new(20).expect("c"), ImageSize::K1));
        assert_eq!(pro.charge(ImageSize::K4, Some(ImageSize::K4)).0.get(), 35);
        assert_eq!(pro.charge(ImageSize::K2, None).0.get(), 20);
        assert_eq!(pro.charge(ImageSize::K1, Some(ImageSize::K4)).0.get(), 20);
    }
}
