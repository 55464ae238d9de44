//! What one call cost us at Gemini, from the catalog's cost per (model, size). Pure.
//!
//! Gemini bills an image by its output tokens, which are fixed per model and size, so a table
//! per size is exact for images. The input tokens of a call that produced no image are a
//! fraction of a cent and are not counted.

use super::outcome::Outcome;
use crate::domain::{CatalogModel, ImageSize, MicroUsd};

/// The provider cost of a call for `model` at `size` (the size rendered): the catalog's cost
/// when it produced an image, `None` when it did not (nothing billed that we count).
pub fn provider_cost(model: &CatalogModel, size: ImageSize, outcome: &Outcome) -> Option<MicroUsd> {
    matches!(outcome, Outcome::Image(_)).then(|| model.cost(size))
}

#[cfg(test)]
mod tests {
    use super::super::image::ImageFormat;
    use super::super::outcome::Image;
    use super::*;
    use crate::domain::{default_catalog, Model};

    fn image() -> Outcome {
        Outcome::Image(Image { bytes: vec![1], format: ImageFormat::Png, width: 1, height: 1, turn: None })
    }

    #[test]
    fn images_cost_their_size_and_calls_without_one_nothing() {
        let catalog = default_catalog();
        let pro = catalog.get(&Model::parse("pro").expect("key")).expect("pro");
        assert_eq!(provider_cost(pro, ImageSize::K4, &image()).map(MicroUsd::get), Some(240_000));
        assert_eq!(provider_cost(pro, ImageSize::K2, &image()).map(MicroUsd::get), Some(134_000));
        let blocked = Outcome::Blocked { reason: "SAFETY".into() };
        assert_eq!(provider_cost(pro, ImageSize::K4, &blocked), None);
        let bad = Outcome::BadImage { reason: "garbage".into() };
        assert_eq!(provider_cost(pro, ImageSize::K1, &bad), None);
    }
}
