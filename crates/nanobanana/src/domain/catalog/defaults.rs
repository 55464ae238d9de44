//! The catalog a deployment gets without `MODEL_CATALOG`.

use super::{Catalog, ModelSpec, Names, ALL_ASPECT_RATIOS, COMMON_ASPECT_RATIOS};

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
    let costs = |pairs: &[(&str, &str)]| {
        Some(pairs.iter().map(|(s, c)| ((*s).to_owned(), (*c).to_owned())).collect())
    };
    let mut nb21 = spec(
        "nb21",
        "gemini-nano-banana-2.1",
        "Nano Banana 2.1",
        "Nano Banana 2.1",
        &["1K", "2K", "4K"],
        &ALL_ASPECT_RATIOS,
    );
    nb21.price = table(&[("1K", 10), ("2K", 15), ("4K", 25)]);
    nb21.cost_usd = costs(&[("1K", "0.034"), ("2K", "0.067"), ("4K", "0.134")]);
    nb21.default = true;
    nb21.aliases = vec!["flash".into()];
    let mut pro = spec(
        "pro",
        "gemini-3-pro-image",
        "Nano Banana Pro",
        "Nano Banana Pro",
        &["1K", "2K", "4K"],
        &COMMON_ASPECT_RATIOS,
    );
    pro.price = table(&[("1K", 20), ("2K", 20), ("4K", 35)]);
    pro.cost_usd = costs(&[("1K", "0.134"), ("2K", "0.134"), ("4K", "0.24")]);
    let mut lite = spec(
        "lite",
        "gemini-3.1-flash-lite-image",
        "Nano Banana 2 Lite",
        "Nano Banana 2 Lite",
        &["1K"],
        &COMMON_ASPECT_RATIOS,
    );
    lite.price = table(&[("1K", 5)]);
    lite.cost_usd = costs(&[("1K", "0.02")]);
    lite.image_size = Some(false);
    lite.max_references = Some(3);
    vec![pro, nb21, lite]
}

/// The built-in catalog.
pub fn default_catalog() -> Catalog {
    Catalog::new(&default_specs())
        .unwrap_or_else(|e| unreachable!("the built-in catalog is valid (tested): {e:?}"))
}
