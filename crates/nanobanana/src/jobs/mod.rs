//! Jobs: generations as work items in Postgres (DESIGN §3 `generations`, §4 "Worker"; L2),
//! and the owner of the `generations`, `service_state` and `unavailable_models` tables.
//!
//! Owns creating generations (`new`), claiming, leases with fencing, heartbeats, retries,
//! graceful hand-back, the deadline sweep, what a generation's row records beside its status
//! (`record`), the service-wide pause (`pause`) and which models Gemini does not serve now
//! (`availability`). Postgres decides who holds a job: a claim
//! is one fenced conditional update that bumps `lease_epoch`, and every later write of the
//! holder presents that epoch. A holder whose epoch is gone gets `false` (or `Settled::Stale`
//! from the ledger) and must discard its result: it changes nothing.
//!
//! Never moves credits and never ends a generation itself: every terminal transition is
//! `ledger::settle`, including the deadline sweep's (the one other writer of `generations`).
//! Wake-up signals are `crate::signals`, a hint only; nothing here depends on Redis.

pub mod availability;
mod backoff;
mod claim;
mod deadline;
mod lease;
pub mod new;
pub mod pause;
mod record;

use std::time::Duration;

pub use backoff::{backoff, backoff_with_jitter, BACKOFF_BASE, BACKOFF_CAP};
pub use claim::{claim, new_worker_id, Claimed};
pub use deadline::{expire_overdue, Expired, DEADLINE_ERROR, SWEEPER_ID};
pub use lease::{hand_back, heartbeat, requeue_uncounted, retry_later};
pub use record::{
    erase_prompts, erased, record_result, set_failure, set_file_id, status_shown, to_erase, Delivered,
    Produced,
};

/// The longest lease, claim batch or sweep batch accepted: anything longer is clamped, so a
/// misconfigured caller cannot hold jobs for days or lock the table in one statement.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);
pub const MAX_BATCH: u32 = 1000;

/// `d` as Postgres can store it in an `interval` (whole microseconds), at most `MAX_LEASE`.
fn interval(d: Duration) -> Duration {
    let micros = d.min(MAX_LEASE).as_micros();
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

fn batch(limit: u32) -> i64 {
    i64::from(limit.min(MAX_BATCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_whole_microseconds_and_bounded() {
        assert_eq!(interval(Duration::from_nanos(1_500)), Duration::from_micros(1));
        assert_eq!(interval(Duration::from_secs(30)), Duration::from_secs(30));
        assert_eq!(interval(Duration::from_secs(86_400)), MAX_LEASE);
    }

    #[test]
    fn batches_are_bounded() {
        assert_eq!(batch(0), 0);
        assert_eq!(batch(10), 10);
        assert_eq!(batch(u32::MAX), 1000);
    }
}
