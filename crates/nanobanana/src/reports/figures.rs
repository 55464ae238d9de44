//! The overview's figures and the arithmetic on them, without I/O: a day's counts and money as
//! the rollup stores them, a window's totals, percentiles from the processing-time histogram,
//! and the conversion of Stars and micro-dollars to kopecks (integers only, never floats).

use chrono::NaiveDate;

use crate::domain::Kopecks;

/// The windows the overview offers: today, the last 7 and the last 30 days (today included),
/// in the operator's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Today,
    Week,
    Month,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Today, Range::Week, Range::Month];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "today" => Some(Range::Today),
            "7d" => Some(Range::Week),
            "30d" => Some(Range::Month),
            _ => None,
        }
    }

    pub fn encode(self) -> &'static str {
        match self {
            Range::Today => "today",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    /// How many calendar days the window spans, today included.
    pub fn days(self) -> u32 {
        match self {
            Range::Today => 1,
            Range::Week => 7,
            Range::Month => 30,
        }
    }

    /// The window's first day when today is `today`.
    pub fn first_day(self, today: NaiveDate) -> NaiveDate {
        today - chrono::Days::new(u64::from(self.days() - 1))
    }
}

/// Generations of one (model, status, failure) group of a day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GenerationGroup {
    pub model: String,
    pub status: String,
    /// The `Failure` text key of failed generations; empty otherwise.
    pub failure: String,
    pub generations: i64,
    pub cost_micro_usd: i64,
}

/// One day's figures: what the rollup stores for a closed day, and what today is computed as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub new_users: i64,
    pub payers: i64,
    pub rub_kopecks: i64,
    pub stars: i64,
    pub refund_kopecks: i64,
    pub refund_stars: i64,
    pub generations: Vec<GenerationGroup>,
    /// (bucket's lower bound in ms, succeeded generations in it).
    pub latency: Vec<(i64, i64)>,
}

/// The rates money is converted at (kopecks per unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub usd: Kopecks,
    pub star: Kopecks,
}

impl Rates {
    /// Stars in kopecks (exact: whole Stars times kopecks per Star).
    pub fn stars(self, stars: i64) -> i64 {
        stars.saturating_mul(self.star.get())
    }

    /// A sum of micro-dollars in kopecks, rounded up to the kopeck once for the whole sum.
    pub fn cost(self, micro_usd: i64) -> i64 {
        // As `MicroUsd::to_kopecks` rounds: up, so a cost is never understated.
        let product = i128::from(micro_usd.max(0)) * i128::from(self.usd.get());
        i64::try_from((product + 999_999) / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A day's money in kopecks, Stars counted at their rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Money {
    pub rub_kopecks: i64,
    pub stars: i64,
    pub stars_kopecks: i64,
    /// Rubles and Stars together.
    pub revenue_kopecks: i64,
    pub refunds_kopecks: i64,
    pub cost_kopecks: i64,
    /// Revenue − refunds − provider cost (may be negative).
    pub margin_kopecks: i64,
}

impl Money {
    /// The money of `days` at `rates`; the provider cost is converted once, from the sum.
    pub fn of<'a>(days: impl IntoIterator<Item = &'a DayFigures>, rates: Rates) -> Self {
        let (mut rub, mut stars, mut refund_rub, mut refund_stars, mut micro) =
            (0i64, 0i64, 0i64, 0i64, 0i64);
        for day in days {
            rub += day.rub_kopecks;
            stars += day.stars;
            refund_rub += day.refund_kopecks;
            refund_stars += day.refund_stars;
            micro += day.generations.iter().map(|g| g.cost_micro_usd).sum::<i64>();
        }
        let stars_kopecks = rates.stars(stars);
        let revenue_kopecks = rub.saturating_add(stars_kopecks);
        let refunds_kopecks = refund_rub.saturating_add(rates.stars(refund_stars));
        let cost_kopecks = rates.cost(micro);
        Money {
            rub_kopecks: rub,
            stars,
            stars_kopecks,
            revenue_kopecks,
            refunds_kopecks,
            cost_kopecks,
            margin_kopecks: revenue_kopecks.saturating_sub(refunds_kopecks).saturating_sub(cost_kopecks),
        }
    }
}

/// The histogram bucket (lower bound, ms) of a processing time: 100 ms below a minute, 1 s below
/// ten minutes, one bucket above. The SQL twin is `BUCKET_SQL`; a test keeps them equal.
pub fn bucket_ms(ms: i64) -> i64 {
    match ms {
        ..0 => 0,
        0..60_000 => ms / 100 * 100,
        60_000..600_000 => ms / 1000 * 1000,
        _ => 600_000,
    }
}

/// `bucket_ms` of the expression `ms` in SQL.
pub fn bucket_sql(ms: &str) -> String {
    format!(
        "(CASE WHEN {ms} < 0 THEN 0 WHEN {ms} < 60000 THEN {ms} / 100 * 100 \
         WHEN {ms} < 600000 THEN {ms} / 1000 * 1000 ELSE 600000 END)"
    )
}

/// The `p`-th percentile (1–100) of a histogram, nearest rank: the lower bound of the bucket
/// holding the rank; `None` when it is empty.
pub fn percentile(histogram: &[(i64, i64)], p: u32) -> Option<i64> {
    let mut buckets: Vec<(i64, i64)> = histogram.iter().copied().filter(|(_, n)| *n > 0).collect();
    buckets.sort_unstable();
    let total: i64 = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (total * i64::from(p.clamp(1, 100)) + 99) / 100;
    let mut seen = 0;
    for (bucket, n) in buckets {
        seen += n;
        if seen >= rank {
            return Some(bucket);
        }
    }
    None
}

/// Adds histograms bucket by bucket.
pub fn merge_histograms<'a>(parts: impl IntoIterator<Item = &'a [(i64, i64)]>) -> Vec<(i64, i64)> {
    let mut merged = std::collections::BTreeMap::new();
    for part in parts {
        for (bucket, n) in part {
            *merged.entry(*bucket).or_insert(0i64) += n;
        }
    }
    merged.into_iter().collect()
}

/// Kopecks as people read rubles: `1 234.50 ₽`, `-12.00 ₽`.
pub fn rubles(kopecks: i64) -> String {
    let sign = if kopecks < 0 { "-" } else { "" };
    let abs = kopecks.unsigned_abs();
    format!("{sign}{}.{:02} ₽", thousands(abs / 100), abs % 100)
}

/// A whole number with thin groups of thousands: `1 000 000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// `part / whole` as a percent with one decimal, rounded half up (`12.5%`); `—` when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "—".to_owned();
    }
    let tenths = (i128::from(part) * 1000 * 2 + i128::from(whole)) / (i128::from(whole) * 2);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// Milliseconds as seconds with one decimal: `4.2 s`; `—` for none.
pub fn seconds(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => format!("{}.{} s", ms / 1000, (ms % 1000) / 100),
        None => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> Rates {
        Rates { usd: Kopecks::parse_rubles("90").unwrap(), star: Kopecks::parse_rubles("1.30").unwrap() }
    }

    #[test]
    fn ranges_round_trip_and_span_their_days() {
        for range in Range::ALL {
            assert_eq!(Range::parse(range.encode()), Some(range));
        }
        assert_eq!(Range::parse("1y"), None);
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(Range::Today.first_day(today), today);
        assert_eq!(Range::Week.first_day(today), NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(Range::Month.first_day(today), NaiveDate::from_ymd_opt(2026, 11, 3).unwrap());
    }

    #[test]
    fn money_adds_up_in_kopecks() {
        let group = |cost| GenerationGroup {
            model: "pro".into(),
            status: "succeeded".into(),
            failure: String::new(),
            generations: 1,
            cost_micro_usd: cost,
        };
        let day = DayFigures {
            rub_kopecks: 10_000,
            stars: 100,
            refund_kopecks: 5_000,
            refund_stars: 10,
            generations: vec![group(134_000), group(34_000)],
            ..DayFigures::default()
        };
        let money = Money::of([&day, &day], rates());
        assert_eq!(money.rub_kopecks, 20_000);
        assert_eq!(money.stars, 200);
        assert_eq!(money.stars_kopecks, 26_000);
        assert_eq!(money.revenue_kopecks, 46_000);
        assert_eq!(money.refunds_kopecks, 10_000 + 2_600);
        // 0.336 $ at 90 ₽/$ = 30.24 ₽.
        assert_eq!(money.cost_kopecks, 3_024);
        assert_eq!(money.margin_kopecks, 46_000 - 12_600 - 3_024);
        // A fraction of a kopeck rounds up, once.
        assert_eq!(rates().cost(1), 1);
        assert_eq!(rates().cost(0), 0);
    }

    #[test]
    fn buckets_match_their_sql_twin_at_the_edges() {
        assert_eq!(bucket_ms(0), 0);
        assert_eq!(bucket_ms(4_299), 4_200);
        assert_eq!(bucket_ms(59_999), 59_900);
        assert_eq!(bucket_ms(61_500), 61_000);
        assert_eq!(bucket_ms(3_600_000), 600_000);
        assert!(bucket_sql("x").contains("x / 100 * 100"));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let histogram: Vec<(i64, i64)> = (1..=100).map(|i| (i * 100, 1)).collect();
        assert_eq!(percentile(&histogram, 50), Some(5_000));
        assert_eq!(percentile(&histogram, 95), Some(9_500));
        assert_eq!(percentile(&[(4_000, 3), (9_000, 1)], 50), Some(4_000));
        assert_eq!(percentile(&[(4_000, 3), (9_000, 1)], 95), Some(9_000));
        assert_eq!(percentile(&[], 50), None);
        let merged = merge_histograms([&[(100, 1), (200, 2)][..], &[(200, 1)][..]]);
        assert_eq!(merged, vec![(100, 1), (200, 3)]);
    }

    #[test]
    fn numbers_read_as_people_expect() {
        assert_eq!(rubles(123_456), "1\u{202f}234.56 ₽");
        assert_eq!(rubles(-1_200), "-12.00 ₽");
        assert_eq!(rubles(5), "0.05 ₽");
        assert_eq!(thousands(1_000_000), "1\u{202f}000\u{202f}000");
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(1, 0), "—");
        assert_eq!(seconds(Some(4_250)), "4.2 s");
        assert_eq!(seconds(None), "—");
    }
}
