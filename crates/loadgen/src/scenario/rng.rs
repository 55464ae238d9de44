//! A small seeded generator (xorshift64*): a scenario run is repeatable from its seed as far
//! as the driver's own choices go (the processes' timing is not).

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Milliseconds in `low..high`, as a duration.
    pub fn millis(&mut self, low: u64, high: u64) -> std::time::Duration {
        std::time::Duration::from_millis(low + self.below(high.saturating_sub(low).max(1)))
    }

    /// A weighted choice: `weights[i]` for `items[i]`.
    pub fn weighted<T: Copy>(&mut self, choices: &[(T, u64)]) -> T {
        let total: u64 = choices.iter().map(|(_, w)| w).sum();
        let mut roll = self.below(total);
        for (item, weight) in choices {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        choices[choices.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_choices_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let n = a.below(10);
            assert_eq!(n, b.below(10));
            assert!(n < 10);
        }
        let picks: std::collections::BTreeSet<_> =
            (0..200).map(|_| a.weighted(&[('x', 1), ('y', 1)])).collect();
        assert_eq!(picks.len(), 2);
    }
}
