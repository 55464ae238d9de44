//! The check that no (model, size) of the catalog is sold below the provider's cost at the
//! configured exchange rate (1 credit = 1 ₽). Prices themselves are the catalog's.

use super::{Catalog, Credits, ImageSize, Kopecks, Model};

/// A (model, size) whose price does not cover what Gemini charges us for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowCost {
    pub model: Model,
    pub size: ImageSize,
    pub price: Credits,
    pub cost: Kopecks,
}

impl std::fmt::Display for BelowCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "price of {} {} is {} credits (₽) but the provider charges {} ₽",
            self.model, self.size, self.price, self.cost
        )
    }
}

/// Every offered size whose price is below its cost at `usd_rate` kopecks per dollar.
pub fn below_cost(catalog: &Catalog, usd_rate: Kopecks) -> Vec<BelowCost> {
    catalog
        .models()
        .iter()
        .flat_map(|model| model.offers.iter().map(move |offer| (model, offer)))
        .filter_map(|(model, offer)| {
            let cost = offer.cost.to_kopecks(usd_rate);
            (offer.price.get() * 100 < cost.get()).then(|| BelowCost {
                model: model.key.clone(),
                size: offer.size,
                price: offer.price,
                cost,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::default_specs;

    #[test]
    fn warns_about_each_size_below_cost() {
        let rate = Kopecks::parse_rubles("100").expect("rate");
        assert_eq!(below_cost(&crate::domain::default_catalog(), rate), vec![]);
        let mut specs = default_specs();
        specs[0].price = Some([("1K", 10), ("2K", 20), ("4K", 20)].map(|(s, p)| (s.to_owned(), p)).into());
        let catalog = Catalog::new(&specs).expect("valid");
        let warnings = below_cost(&catalog, rate);
        let flagged: Vec<_> = warnings.iter().map(|w| (w.model.as_str(), w.size)).collect();
        assert_eq!(flagged, vec![("pro", ImageSize::K1), ("pro", ImageSize::K4)]);
        assert!(warnings[0].to_string().contains("13.40"), "{}", warnings[0]);
    }
}
