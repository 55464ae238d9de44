//! What a run of days adds up to (pure): money, generations by model and status, failures by
//! reason, processing-time percentiles. The overview and the daily report both read it.

use super::figures::{merge_histograms, percentile, DayFigures, Money, Rates};

/// One model's generations by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelCounts {
    pub model: String,
    pub queued: i64,
    pub processing: i64,
    pub succeeded: i64,
    pub failed: i64,
}

impl ModelCounts {
    pub fn total(&self) -> i64 {
        self.queued + self.processing + self.succeeded + self.failed
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub money: Money,
    pub new_users: i64,
    pub by_model: Vec<ModelCounts>,
    /// (failure key, generations), most frequent first.
    pub failures: Vec<(String, i64)>,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

impl Summary {
    pub fn of(days: &[DayFigures], rates: Rates) -> Self {
        Self::with_latency(days, &[], rates)
    }

    /// As `of`, with `latency` (processing times not in the days' own histograms) added.
    pub fn with_latency(days: &[DayFigures], latency: &[(i64, i64)], rates: Rates) -> Self {
        let mut by_model: Vec<ModelCounts> = Vec::new();
        let mut failures: Vec<(String, i64)> = Vec::new();
        for group in days.iter().flat_map(|d| &d.generations) {
            let at = match by_model.iter().position(|m| m.model == group.model) {
                Some(at) => at,
                None => {
                    by_model.push(ModelCounts { model: group.model.clone(), ..ModelCounts::default() });
                    by_model.len() - 1
                }
            };
            let counts = &mut by_model[at];
            match group.status.as_str() {
                "queued" => counts.queued += group.generations,
                "processing" => counts.processing += group.generations,
                "succeeded" => counts.succeeded += group.generations,
                _ => counts.failed += group.generations,
            }
            if group.status == "failed" {
                match failures.iter_mut().find(|(reason, _)| *reason == group.failure) {
                    Some((_, n)) => *n += group.generations,
                    None => failures.push((group.failure.clone(), group.generations)),
                }
            }
        }
        by_model.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.model.cmp(&b.model)));
        failures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let latency = merge_histograms(days.iter().map(|d| d.latency.as_slice()).chain([latency]));
        Summary {
            money: Money::of(days, rates),
            new_users: days.iter().map(|d| d.new_users).sum(),
            by_model,
            failures,
            p50_ms: percentile(&latency, 50),
            p95_ms: percentile(&latency, 95),
        }
    }

    pub fn generations(&self) -> i64 {
        self.by_model.iter().map(ModelCounts::total).sum()
    }

    pub fn succeeded(&self) -> i64 {
        self.by_model.iter().map(|m| m.succeeded).sum()
    }

    pub fn failed(&self) -> i64 {
        self.by_model.iter().map(|m| m.failed).sum()
    }

    /// Generations that ended (the failure rate's denominator).
    pub fn finished(&self) -> i64 {
        self.succeeded() + self.failed()
    }
}

#[cfg(test)]
mod tests {
    use super::super::figures::GenerationGroup;
    use super::*;
    use crate::domain::Kopecks;

    fn group(model: &str, status: &str, failure: &str, n: i64) -> GenerationGroup {
        GenerationGroup {
            model: model.into(),
            status: status.into(),
            failure: failure.into(),
            generations: n,
            cost_micro_usd: 0,
        }
    }

    #[test]
    fn days_add_up_by_model_status_and_reason() {
        let one = DayFigures {
            new_users: 3,
            generations: vec![
                group("nb21", "succeeded", "", 5),
                group("nb21", "failed", "failed_blocked", 1),
                group("pro", "queued", "", 2),
            ],
            latency: vec![(4_000, 4), (9_000, 1)],
            ..DayFigures::default()
        };
        let two = DayFigures {
            new_users: 1,
            generations: vec![
                group("pro", "failed", "failed_blocked", 2),
                group("pro", "failed", "other", 1),
            ],
            latency: vec![(4_000, 1)],
            ..DayFigures::default()
        };
        let rates =
            Rates { usd: Kopecks::parse_rubles("100").unwrap(), star: Kopecks::parse_rubles("1").unwrap() };
        let summary = Summary::of(&[one, two], rates);
        assert_eq!(summary.new_users, 4);
        assert_eq!(summary.generations(), 11);
        assert_eq!(summary.finished(), 9);
        assert_eq!(summary.failed(), 4);
        assert_eq!(summary.by_model[0].model, "nb21");
        assert_eq!(
            summary.by_model[1],
            ModelCounts { model: "pro".into(), queued: 2, failed: 3, ..Default::default() }
        );
        assert_eq!(summary.failures, vec![("failed_blocked".to_owned(), 3), ("other".to_owned(), 1)]);
        assert_eq!(summary.p50_ms, Some(4_000));
        assert_eq!(summary.p95_ms, Some(9_000));
    }
}
