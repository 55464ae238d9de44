//! The worker's byte budget (`WORKER_MEMORY_BUDGET_MB`) for what a job holds in memory: its
//! reference photos and Gemini's answer. A job with references reserves the worst case
//! (`MAX_DOWNLOAD` per photo, plus its answer's estimate) in one step before downloading any,
//! and keeps only what the shrunk photos take plus the answer's share. A job without
//! references reserves its answer's share once the answer starts to arrive (`gemini::Client`),
//! sized by its `Content-Length` or, without one, by the size asked for, and grows it while the
//! body is read if the body outgrows it. Everything is returned when the job ends. So however
//! many jobs are in flight, the bytes held at once stay within the budget; a job that needs
//! more than the whole budget takes all of it and runs alone rather than never.
//!
//! Deadlock: a job waits for budget while holding none (the references' reservation, an
//! answer's first share), or waits for more with a deadline (an answer outgrowing its share:
//! the call's own timeout), so no two jobs wait for each other forever.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is counted in KiB, so that a permit count fits `u32` for any budget.
const UNIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total: u32,
}

/// Bytes of the budget held until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).max(1);
        Self { units: Arc::new(Semaphore::new(total as usize)), total }
    }

    /// Waits until `bytes` are free and holds them. A single request larger than the whole
    /// budget takes the whole budget (it runs alone rather than never).
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let mut reservation = self.empty();
        reservation.grow_to(bytes).await;
        reservation
    }

    /// A reservation holding nothing yet (`Reservation::grow_to`).
    pub fn empty(&self) -> Reservation {
        Reservation { budget: self.clone(), permit: None }
    }

    /// Bytes free right now.
    pub fn available(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }

    /// The whole budget in bytes.
    pub fn total(&self) -> u64 {
        u64::from(self.total) * UNIT
    }
}

impl Reservation {
    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.units_held() as u64 * UNIT
    }

    /// Whether this reservation holds the whole budget (it cannot grow further).
    pub fn is_whole(&self) -> bool {
        self.units_held() >= self.budget.total as usize
    }

    fn units_held(&self) -> usize {
        self.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Units still to acquire for `bytes` in all (capped at the whole budget).
    fn missing(&self, bytes: u64) -> u32 {
        let wanted = units(bytes).min(self.budget.total) as usize;
        u32::try_from(wanted.saturating_sub(self.units_held())).unwrap_or(u32::MAX)
    }

    fn add(&mut self, permit: OwnedSemaphorePermit) {
        match self.permit.as_mut() {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
    }

    /// Waits until this reservation holds `bytes` (at most the whole budget). Waiting while
    /// holding something can wait for another holder: bound it (`tokio::time::timeout`).
    pub async fn grow_to(&mut self, bytes: u64) {
        let missing = self.missing(bytes);
        if missing == 0 {
            return;
        }
        // The semaphore is never closed; were it to be, the job goes on without the bytes.
        if let Ok(permit) = self.budget.units.clone().acquire_many_owned(missing).await {
            self.add(permit);
        }
    }

    /// `grow_to` without waiting: whether it now holds `bytes` (or the whole budget).
    pub fn try_grow_to(&mut self, bytes: u64) -> bool {
        let missing = self.missing(bytes);
        if missing == 0 {
            return true;
        }
        match self.budget.units.clone().try_acquire_many_owned(missing) {
            Ok(permit) => {
                self.add(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps `bytes` of what is held (never more) and returns the rest to the budget.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = units(bytes) as usize;
        if let Some(permit) = self.permit.as_mut() {
            let held = permit.num_permits();
            if held > keep {
                drop(permit.split(held - keep));
            }
        }
    }
}

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = UNIT * UNIT;

    #[tokio::test]
    async fn reservations_wait_for_room_and_shrink() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut first = budget.reserve(8 * MIB).await;
        assert_eq!(budget.available(), 2 * MIB);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(5 * MIB).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "5 MiB do not fit in the 2 free");
        first.shrink_to(MIB);
        let second = waiting.await.expect("reserved once room was made");
        assert_eq!(budget.available(), 4 * MIB);
        drop((first, second));
        assert_eq!(budget.available(), 10 * MIB);
        // Larger than the budget: takes all of it rather than waiting forever.
        let all = budget.reserve(100 * MIB).await;
        assert_eq!(budget.available(), 0);
        assert!(all.is_whole());
        drop(all);
    }

    #[tokio::test]
    async fn a_reservation_grows_in_steps_up_to_the_whole_budget() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut job = budget.empty();
        assert_eq!(job.held(), 0);
        assert!(job.try_grow_to(3 * MIB));
        let other = budget.reserve(6 * MIB).await;
        assert!(!job.try_grow_to(5 * MIB), "only 1 MiB is free");
        assert_eq!(job.held(), 3 * MIB, "a failed try takes nothing");
        let grow = tokio::spawn(async move {
            job.grow_to(50 * MIB).await;
            job
        });
        tokio::task::yield_now().await;
        assert!(!grow.is_finished(), "waits for the other holder");
        drop(other);
        let job = grow.await.expect("grown");
        assert!(job.is_whole());
        assert_eq!((job.held(), budget.available()), (10 * MIB, 0));
        drop(job);
        assert_eq!(budget.available(), 10 * MIB);
    }
}
