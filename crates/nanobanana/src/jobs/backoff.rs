//! Retry delays: exponential backoff with jitter, as a pure function (DESIGN §4: retryable
//! errors go back to `queued` with `run_after` = now + backoff). No I/O, no clock.

use std::time::Duration;

/// The delay before the second attempt; each later one doubles it ...
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// ... up to this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(64);

/// The delay after failed attempt number `attempt` (1 = the first attempt failed), with
/// "equal jitter": half of the exponential step is fixed, the other half is spread by
/// `random` (any value; the caller supplies randomness so this stays pure and testable).
/// Always within `[step / 2, step]` where `step = min(2 s · 2^(attempt-1), 64 s)`.
pub fn backoff_with_jitter(attempt: u32, random: u64) -> Duration {
    let cap = millis(BACKOFF_CAP);
    let doublings = attempt.saturating_sub(1).min(31);
    let step = millis(BACKOFF_BASE).saturating_mul(1 << doublings).min(cap);
    let half = step / 2;
    Duration::from_millis(half + random % (step - half + 1))
}

/// `backoff_with_jitter` with fresh randomness (from a v4 UUID, so no extra dependency).
pub fn backoff(attempt: u32) -> Duration {
    let (random, _) = uuid::Uuid::new_v4().as_u64_pair();
    backoff_with_jitter(attempt, random)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(attempt: u32) -> (Duration, Duration) {
        (backoff_with_jitter(attempt, 0), backoff_with_jitter(attempt, u64::MAX - 1))
    }

    #[test]
    fn doubles_from_two_seconds() {
        assert_eq!(backoff_with_jitter(1, 0), Duration::from_secs(1));
        assert_eq!(backoff_with_jitter(1, 1000), Duration::from_secs(2));
        assert_eq!(backoff_with_jitter(2, 2000), Duration::from_secs(4));
        assert_eq!(backoff_with_jitter(3, 4000), Duration::from_secs(8));
    }

    #[test]
    fn caps_at_sixty_four_seconds_even_for_huge_attempts() {
        for attempt in [7, 8, 31, 32, 1000, u32::MAX] {
            let (low, high) = bounds(attempt);
            assert!(low >= Duration::from_secs(32) && high <= BACKOFF_CAP, "{attempt}: {low:?}..{high:?}");
        }
        assert_eq!(backoff_with_jitter(u32::MAX, 32_000), BACKOFF_CAP);
    }

    #[test]
    fn attempt_zero_is_treated_as_the_first() {
        assert_eq!(bounds(0), bounds(1));
    }

    #[test]
    fn jitter_stays_within_half_to_full_step() {
        for attempt in 1..=10 {
            let step = BACKOFF_BASE.saturating_mul(1 << (attempt - 1)).min(BACKOFF_CAP);
            for random in [0, 1, 7, 999, 123_456_789, u64::MAX] {
                let delay = backoff_with_jitter(attempt, random);
                assert!(delay >= step / 2 && delay <= step, "{attempt} {random}: {delay:?}");
            }
        }
    }

    #[test]
    fn fresh_randomness_spreads_the_delays() {
        let delays: std::collections::HashSet<Duration> = (0..50).map(|_| backoff(6)).collect();
        assert!(delays.len() > 1, "50 draws gave one delay: {delays:?}");
    }
}
