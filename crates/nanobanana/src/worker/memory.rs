//! The worker's byte budget for reference photos (`WORKER_MEMORY_BUDGET_MB`). A job with
//! references reserves the worst case (`MAX_DOWNLOAD` per photo) before downloading any, keeps
//! only what the shrunk photos really take once they are in hand, and returns it when the job
//! ends. Jobs whose references do not fit wait for others to finish, so however many jobs are
//! in flight (up to 256) the photos held at once stay within the budget. Gemini's answers are
//! bounded separately: at most `FINISHING_PER_CORE` per core are read and processed at once.

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
        let units = units(bytes).min(self.total);
        // The semaphore is never closed; were it to be, the job runs without a reservation.
        let permit = self.units.clone().acquire_many_owned(units).await.ok();
        Reservation { permit }
    }

    /// Bytes free right now.
    pub fn available(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }
}

impl Reservation {
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

    #[tokio::test]
    async fn reservations_wait_for_room_and_shrink() {
        let budget = MemoryBudget::new(10 * UNIT * UNIT);
        let mut first = budget.reserve(8 * UNIT * UNIT).await;
        assert_eq!(budget.available(), 2 * UNIT * UNIT);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(5 * UNIT * UNIT).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "5 MiB do not fit in the 2 free");
        first.shrink_to(UNIT * UNIT);
        let second = waiting.await.expect("reserved once room was made");
        assert_eq!(budget.available(), 4 * UNIT * UNIT);
        drop((first, second));
        assert_eq!(budget.available(), 10 * UNIT * UNIT);
        // Larger than the budget: takes all of it rather than waiting forever.
        let all = budget.reserve(100 * UNIT * UNIT).await;
        assert_eq!(budget.available(), 0);
        drop(all);
    }
}
