//! What one call cost us at Gemini, from the configured price table per (model, size). Pure.
//!
//! Gemini bills an image by its output tokens, which are fixed per model and size (Pro: 1120
//! tokens at 1K/2K, 2000 at 4K; Flash: 1290), so a table per variant is exact for images. The
//! input tokens of a call that produced no image are a fraction of a cent and are not counted.

use super::outcome::Outcome;
use crate::domain::{ImageSize, MicroUsd, Model, ProviderCosts};

/// The provider cost of a call for `model` at `size`: the table's price when it produced an
/// image, `None` when it did not (nothing billed that we count).
pub fn provider_cost(
    costs: &ProviderCosts,
    model: Model,
    size: Option<ImageSize>,
    outcome: &Outcome,
) -> Option<MicroUsd> {
    matches!(outcome, Outcome::Image(_)).then(|| costs.get(model, size))
}

#[cfg(test)]
mod tests {
    use super::super::image::ImageFormat;
    use super::super::outcome::Image;
    use super::*;

    fn usd(text: &str) -> MicroUsd {
        MicroUsd::parse_dollars(text).expect("dollars")
    }

    fn costs() -> ProviderCosts {
        ProviderCosts { flash: usd("0.039"), pro_1k: usd("0.134"), pro_2k: usd("0.134"), pro_4k: usd("0.24") }
    }

    fn image() -> Outcome {
        Outcome::Image(Image { bytes: vec![1], format: ImageFormat::Png, width: 1, height: 1 })
    }

    #[test]
    fn images_cost_their_variant_price() {
        let table = costs();
        assert_eq!(
            provider_cost(&table, Model::Pro, Some(ImageSize::K4), &image()).map(MicroUsd::get),
            Some(240_000)
        );
        assert_eq!(
            provider_cost(&table, Model::Pro, Some(ImageSize::K2), &image()).map(MicroUsd::get),
            Some(134_000)
        );
        assert_eq!(provider_cost(&table, Model::Pro, None, &image()).map(MicroUsd::get), Some(134_000));
        assert_eq!(
            provider_cost(&table, Model::Flash, Some(ImageSize::K4), &image()).map(MicroUsd::get),
            Some(39_000)
        );
    }

    #[test]
    fn calls_without_an_image_cost_nothing_we_count() {
        let blocked = Outcome::Blocked { reason: "SAFETY".into() };
        assert_eq!(provider_cost(&costs(), Model::Pro, Some(ImageSize::K4), &blocked), None);
        let bad = Outcome::BadImage { reason: "garbage".into() };
        assert_eq!(provider_cost(&costs(), Model::Flash, None, &bad), None);
    }
}
