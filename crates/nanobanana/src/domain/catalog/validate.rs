//! Checking one model of the catalog as configured: every problem is collected (named by
//! model and field), and only a model without any becomes a `CatalogModel`.

use super::{aspect_ratio, CatalogError, CatalogModel, ModelSpec, Names, Offer, KNOWN};
use crate::domain::{Credits, ImageSize, MicroUsd, Model};

/// The problems found in one model, named by its key (or its place in the list).
struct Problems<'a> {
    model: String,
    errors: &'a mut Vec<CatalogError>,
}

impl Problems<'_> {
    fn fail(&mut self, field: &'static str, problem: String) {
        self.errors.push(CatalogError { model: self.model.clone(), field, problem });
    }
}

pub(super) fn validate(
    index: usize,
    spec: &ModelSpec,
    errors: &mut Vec<CatalogError>,
) -> Option<CatalogModel> {
    let before = errors.len();
    let model = spec.key.clone().unwrap_or_else(|| format!("#{}", index + 1));
    let mut problems = Problems { model, errors };
    let (key, id, names) = identity(spec, &mut problems);
    let known = id.as_deref().and_then(|id| KNOWN.iter().find(|k| k.id == id));
    let sizes = sizes(spec, id.as_deref(), known.map(|k| k.sizes), &mut problems);
    let ratios = ratios(spec, id.as_deref(), known.map(|k| k.ratios), &mut problems);
    let max_references = spec.max_references.filter(|n| *n <= 14);
    if max_references.is_none() {
        problems.fail("max_references", "missing or above Gemini's 14".into());
    }
    let offers = offers(spec, &sizes, &mut problems);
    let mut aliases = Vec::new();
    for raw in &spec.aliases {
        match Model::parse(raw) {
            Ok(alias) => aliases.push(alias),
            Err(e) => problems.fail("aliases", e.to_string()),
        }
    }
    if problems.errors.len() > before {
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

/// Our key, Google's id and the display names.
fn identity(spec: &ModelSpec, problems: &mut Problems<'_>) -> (Option<Model>, Option<String>, Option<Names>) {
    let key = match spec.key.as_deref().map(Model::parse) {
        Some(Ok(key)) => Some(key),
        Some(Err(e)) => {
            problems.fail("key", e.to_string());
            None
        }
        None => {
            problems.fail("key", "missing".into());
            None
        }
    };
    let id = spec.id.clone().filter(|id| {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    if id.is_none() {
        problems.fail("id", "missing or not a Gemini model id (a-z, 0-9, ., _ and -)".into());
    }
    let names = spec.name.clone().filter(|n| !n.ru.trim().is_empty() && !n.en.trim().is_empty());
    if names.is_none() {
        problems.fail("name", "missing: {\"ru\": …, \"en\": …}, both non-empty".into());
    }
    (key, id, names)
}

/// The sizes offered: known, each once, and only those a known Google model renders.
fn sizes(
    spec: &ModelSpec,
    id: Option<&str>,
    renders: Option<&[ImageSize]>,
    problems: &mut Problems<'_>,
) -> Vec<ImageSize> {
    let mut sizes = Vec::new();
    for raw in spec.sizes.iter().flatten() {
        match ImageSize::parse(raw) {
            Ok(size) if renders.is_some_and(|r| !r.contains(&size)) => {
                let id = id.unwrap_or_default();
                problems.fail(
                    "sizes",
                    format!("unknown size {raw:?} for {id}, which renders only {}", list(renders)),
                );
            }
            Ok(size) if sizes.contains(&size) => problems.fail("sizes", format!("{size} is listed twice")),
            Ok(size) => sizes.push(size),
            Err(e) => problems.fail("sizes", e.to_string()),
        }
    }
    sizes.sort();
    if spec.sizes.as_ref().is_none_or(Vec::is_empty) {
        problems.fail("sizes", "missing: at least one of 1K, 2K, 4K".into());
    }
    sizes
}

/// The aspect ratios offered: valid, each once, and only those a known Google model takes.
fn ratios(
    spec: &ModelSpec,
    id: Option<&str>,
    takes: Option<&[&'static str]>,
    problems: &mut Problems<'_>,
) -> Vec<&'static str> {
    let mut ratios = Vec::new();
    for raw in spec.ratios.iter().flatten() {
        match aspect_ratio(raw) {
            Ok(ratio) if takes.is_some_and(|t| !t.contains(&ratio)) => {
                let id = id.unwrap_or_default();
                problems.fail("ratios", format!("{ratio} is a ratio {id} does not take"));
            }
            Ok(ratio) if ratios.contains(&ratio) => {
                problems.fail("ratios", format!("{ratio} is listed twice"))
            }
            Ok(ratio) => ratios.push(ratio),
            Err(e) => problems.fail("ratios", e.to_string()),
        }
    }
    if spec.ratios.as_ref().is_none_or(Vec::is_empty) {
        problems.fail("ratios", "missing: at least one aspect ratio".into());
    }
    ratios
}

/// A price and a provider cost for every size offered, and for no other.
fn offers(spec: &ModelSpec, sizes: &[ImageSize], problems: &mut Problems<'_>) -> Vec<Offer> {
    let mut offers = Vec::new();
    for size in sizes {
        let price = match spec.price.as_ref().and_then(|p| p.get(size.as_str())).map(|p| Credits::new(*p)) {
            Some(Ok(price)) => Some(price),
            Some(Err(e)) => {
                problems.fail("price", format!("{size}: {e}"));
                None
            }
            None => {
                problems.fail("price", format!("missing price for {size}"));
                None
            }
        };
        let cost = match spec
            .cost_usd
            .as_ref()
            .and_then(|c| c.get(size.as_str()))
            .map(|c| MicroUsd::parse_dollars(c))
        {
            Some(Ok(cost)) => Some(cost),
            Some(Err(e)) => {
                problems.fail("cost_usd", format!("{size}: {e}"));
                None
            }
            None => {
                problems.fail("cost_usd", format!("missing cost for {size}"));
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
                problems.fail(field, format!("{size} is not among the model's sizes"));
            }
        }
    }
    offers
}

fn list(sizes: Option<&[ImageSize]>) -> String {
    sizes.unwrap_or_default().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
