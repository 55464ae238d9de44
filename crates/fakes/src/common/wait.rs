//! Waiting until something holds, up to a deadline: the one loop behind every `wait_for_…` of
//! the fakes, the long poll of the fake Telegram, the crate's tests and loadgen's waits. Owns
//! [`WaitTimeout`], the error of a wait that ran out, and [`Recheck`], when a wait looks again.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// A wait did not finish before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0:?} waiting for {1}")]
pub struct WaitTimeout(pub Duration, pub &'static str);

/// When a wait looks again.
#[derive(Debug)]
pub enum Recheck {
    /// On every change of a version counter (a fake's state bumps one on each change).
    OnChange(watch::Receiver<u64>),
    /// After this pause, for what announces no changes (a database, another process).
    Every(Duration),
}

impl Recheck {
    /// Looks again on every change of `version`, from now on.
    pub fn on_change(version: &watch::Sender<u64>) -> Self {
        Self::OnChange(version.subscribe())
    }

    /// Called before each look, so that only changes after it wake the next one.
    fn looking(&mut self) {
        if let Self::OnChange(version) = self {
            version.borrow_and_update();
        }
    }

    /// Resolves when it is time to look again, at the latest at `deadline`.
    async fn next(&mut self, deadline: Instant) {
        match self {
            Self::OnChange(version) => {
                tokio::select! {
                    _ = version.changed() => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            Self::Every(pause) => tokio::time::sleep_until(deadline.min(Instant::now() + *pause)).await,
        }
    }
}

/// Looks with `probe` until it finds something, again as `recheck` says; `None` once `deadline`
/// has passed. The last look is at the deadline (or, when a look takes longer than the rest of
/// the time, the first one that ends after it). A probe that needs no `.await` returns
/// `std::future::ready(…)`.
pub async fn until_deadline<T, F, Fut>(deadline: Instant, mut recheck: Recheck, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        recheck.looking();
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        recheck.next(deadline).await;
    }
}

/// [`until_deadline`] `timeout` from now; the error names `what` was waited for.
pub async fn wait_until<T, F, Fut>(
    timeout: Duration,
    what: &'static str,
    recheck: Recheck,
    probe: F,
) -> Result<T, WaitTimeout>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until_deadline(Instant::now() + timeout, recheck, probe).await.ok_or(WaitTimeout(timeout, what))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use std::future::ready;

    use super::*;

    #[tokio::test]
    async fn a_change_wakes_the_wait_and_a_timeout_names_what() {
        let version = watch::channel(0).0;
        let value = Arc::new(AtomicU64::new(0));
        let (setter, bump) = (value.clone(), version.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            setter.store(7, Ordering::Relaxed);
            bump.send_modify(|v| *v += 1);
        });
        let probe = || ready(Some(value.load(Ordering::Relaxed)).filter(|v| *v == 7));
        let found = wait_until(Duration::from_secs(10), "seven", Recheck::on_change(&version), probe).await;
        assert_eq!(found.expect("found"), 7);

        let started = Instant::now();
        let never = wait_until(Duration::from_millis(100), "never", Recheck::on_change(&version), || {
            ready(None::<()>)
        });
        let error = never.await.expect_err("times out");
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(error.to_string(), "timed out after 100ms waiting for never");
    }

    #[tokio::test]
    async fn polls_every_pause_and_looks_last_at_the_deadline() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        let mut looks = Vec::new();
        let found = until_deadline(deadline, Recheck::Every(Duration::from_millis(120)), || {
            looks.push(Instant::now());
            ready(None::<()>)
        })
        .await;
        assert!(found.is_none());
        // At 0, 120, 240 and 300 ms on an idle machine; on a busy one later, never sooner.
        let (last, pauses) = looks.split_last().expect("looks");
        assert!(!pauses.is_empty(), "{looks:?}");
        assert!(pauses.windows(2).all(|w| w[1] >= w[0] + Duration::from_millis(120)), "{looks:?}");
        assert!(*last >= deadline);
    }
}
