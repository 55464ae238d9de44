//! `MODEL_CATALOG`: the models we sell (DESIGN §10), as JSON in the variable or in a file it
//! names; validated by `domain::Catalog`, each problem naming its model and field. Without it,
//! the built-in catalog, onto which the deprecated `GEMINI_MODEL_*`, `PRICE_*`, `COST_*_USD`
//! and `MAX_REFERENCES_*` are mapped (each with a deprecation warning).

use super::env::Env;
use crate::domain::catalog::default_specs;
use crate::domain::{Catalog, Credits, MicroUsd, ModelSpec, Names, COMMON_ASPECT_RATIOS};

/// The deprecated variables: (variable, catalog key, what it sets).
const LEGACY: [(&str, &str, Legacy); 11] = [
    ("GEMINI_MODEL_PRO", "pro", Legacy::Id),
    ("GEMINI_MODEL_FLASH", "nb21", Legacy::Id),
    ("PRICE_FLASH", "nb21", Legacy::Price("1K")),
    ("PRICE_PRO_1K", "pro", Legacy::Price("1K")),
    ("PRICE_PRO_2K", "pro", Legacy::Price("2K")),
    ("PRICE_PRO_4K", "pro", Legacy::Price("4K")),
    ("COST_FLASH_USD", "nb21", Legacy::Cost("1K")),
    ("COST_PRO_1K_USD", "pro", Legacy::Cost("1K")),
    ("COST_PRO_2K_USD", "pro", Legacy::Cost("2K")),
    ("COST_PRO_4K_USD", "pro", Legacy::Cost("4K")),
    ("MAX_REFERENCES_PRO", "pro", Legacy::References),
];

#[derive(Debug, Clone, Copy)]
enum Legacy {
    Id,
    Price(&'static str),
    Cost(&'static str),
    References,
}

/// The catalog and the warnings start-up logs about how it was made.
pub(super) fn catalog(env: &mut Env, warnings: &mut Vec<String>) -> Catalog {
    let legacy: Vec<_> = LEGACY
        .iter()
        .map(|(var, key, what)| (*var, *key, *what))
        .chain(std::iter::once(("MAX_REFERENCES_FLASH", "nb21", Legacy::References)))
        .filter(|(var, _, _)| env.is_set(var))
        .collect();
    let specs = match env.raw("MODEL_CATALOG") {
        Some(raw) => {
            for (var, _, _) in &legacy {
                warnings.push(format!("{var} is deprecated and ignored: MODEL_CATALOG is set"));
            }
            match read(&raw) {
                Ok(specs) => specs,
                Err(problem) => {
                    env.fail("MODEL_CATALOG", problem);
                    return crate::domain::default_catalog();
                }
            }
        }
        None => {
            let mut specs = default_specs();
            for (var, key, what) in legacy {
                warnings.push(format!(
                    "{var} is deprecated: set MODEL_CATALOG instead (mapped onto model {key})"
                ));
                apply_legacy(env, &mut specs, var, key, what);
            }
            specs
        }
    };
    match Catalog::new(&specs) {
        Ok(catalog) => catalog,
        Err(errors) => {
            for error in errors {
                env.fail("MODEL_CATALOG", error.to_string());
            }
            crate::domain::default_catalog()
        }
    }
}

/// Inline JSON (an array of models) or the path of a file holding it.
fn read(raw: &str) -> Result<Vec<ModelSpec>, String> {
    let text = if raw.trim_start().starts_with('[') {
        raw.to_owned()
    } else {
        std::fs::read_to_string(raw.trim())
            .map_err(|e| format!("cannot read the catalog file {raw:?}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("not a JSON array of models: {e}"))
}

fn apply_legacy(env: &mut Env, specs: &mut [ModelSpec], var: &'static str, key: &str, what: Legacy) {
    let Some(spec) = specs.iter_mut().find(|s| s.key.as_deref() == Some(key)) else { return };
    match what {
        Legacy::Id => {
            let Some(id) = env.raw(var) else { return };
            if key == "nb21" {
                // The previous release's Flash: one size, no imageSize, the ten common ratios.
                spec.name = Some(Names { ru: "Nano Banana 2".into(), en: "Nano Banana 2".into() });
                spec.sizes = Some(vec!["1K".into()]);
                spec.ratios = Some(COMMON_ASPECT_RATIOS.iter().map(|r| (*r).to_owned()).collect());
                spec.image_size = Some(false);
                spec.price.iter_mut().for_each(|p| p.retain(|size, _| size == "1K"));
                spec.cost_usd.iter_mut().for_each(|c| c.retain(|size, _| size == "1K"));
            }
            spec.id = Some(id.trim().to_owned());
        }
        Legacy::Price(size) => {
            if let Some(price) = env.optional(var, Credits::parse) {
                spec.price.get_or_insert_default().insert(size.to_owned(), price.get());
            }
        }
        Legacy::Cost(size) => {
            if let Some(cost) = env.optional(var, MicroUsd::parse_dollars) {
                let text = format!("{}.{:06}", cost.get() / 1_000_000, cost.get() % 1_000_000);
                spec.cost_usd.get_or_insert_default().insert(size.to_owned(), text);
            }
        }
        Legacy::References => {
            spec.max_references = Some(env.number(var, 14, 0..=14));
        }
    }
}
