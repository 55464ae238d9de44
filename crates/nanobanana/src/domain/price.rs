//! Prices per (model, size) in credits, and the check that none is sold below the
//! provider's cost at the configured exchange rate (1 credit = 1 ₽).

use super::{Credits, ImageSize, Kopecks, MicroUsd, Model};

/// One value per sellable (model, size) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerVariant<T> {
    pub flash: T,
    pub pro_1k: T,
    pub pro_2k: T,
    pub pro_4k: T,
}

impl<T: Copy> PerVariant<T> {
    /// The value for a model and size; Flash ignores the size, Pro without one means 1K.
    pub fn get(&self, model: Model, size: Option<ImageSize>) -> T {
        match (model, size) {
            (Model::Flash, _) => self.flash,
            (Model::Pro, None | Some(ImageSize::K1)) => self.pro_1k,
            (Model::Pro, Some(ImageSize::K2)) => self.pro_2k,
            (Model::Pro, Some(ImageSize::K4)) => self.pro_4k,
        }
    }

    pub fn variants() -> impl Iterator<Item = (Model, Option<ImageSize>)> {
        Model::ALL.into_iter().flat_map(|m| m.sizes().iter().map(move |s| (m, *s)))
    }
}

pub type Prices = PerVariant<Credits>;
pub type ProviderCosts = PerVariant<MicroUsd>;

/// A (model, size) whose price does not cover what Gemini charges us for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowCost {
    pub model: Model,
    pub size: Option<ImageSize>,
    pub price: Credits,
    pub cost: Kopecks,
}

impl std::fmt::Display for BelowCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = self.size.map(|s| format!(" {s}")).unwrap_or_default();
        write!(
            f,
            "price of {}{size} is {} credits (₽) but the provider charges {} ₽",
            self.model, self.price, self.cost
        )
    }
}

pub fn below_cost(prices: &Prices, costs: &ProviderCosts, usd_rate: Kopecks) -> Vec<BelowCost> {
    Prices::variants()
        .filter_map(|(model, size)| {
            let price = prices.get(model, size);
            let cost = costs.get(model, size).to_kopecks(usd_rate);
            (price.get() * 100 < cost.get()).then_some(BelowCost { model, size, price, cost })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credits(n: i64) -> Credits {
        Credits::new(n).unwrap()
    }

    fn usd(s: &str) -> MicroUsd {
        MicroUsd::parse_dollars(s).unwrap()
    }

    #[test]
    fn prices_depend_on_model_and_size() {
        let prices =
            Prices { flash: credits(10), pro_1k: credits(20), pro_2k: credits(25), pro_4k: credits(40) };
        assert_eq!(prices.get(Model::Flash, Some(ImageSize::K4)).get(), 10);
        assert_eq!(prices.get(Model::Pro, None).get(), 20);
        assert_eq!(prices.get(Model::Pro, Some(ImageSize::K2)).get(), 25);
        assert_eq!(prices.get(Model::Pro, Some(ImageSize::K4)).get(), 40);
        assert_eq!(Prices::variants().count(), 4);
    }

    #[test]
    fn warns_about_prices_below_cost() {
        let costs = ProviderCosts {
            flash: usd("0.039"),
            pro_1k: usd("0.134"),
            pro_2k: usd("0.134"),
            pro_4k: usd("0.24"),
        };
        let rate = Kopecks::parse_rubles("100").unwrap();
        let prices =
            Prices { flash: credits(10), pro_1k: credits(10), pro_2k: credits(20), pro_4k: credits(20) };
        let warnings = below_cost(&prices, &costs, rate);
        let flagged: Vec<_> = warnings.iter().map(|w| (w.model, w.size)).collect();
        assert_eq!(flagged, vec![(Model::Pro, Some(ImageSize::K1)), (Model::Pro, Some(ImageSize::K4))]);
        assert!(warnings[0].to_string().contains("13.40"));
    }
}
