//! The worker's side of the service-wide pause (`jobs::pause`): a spent daily quota or an
//! invalid key pauses generation for everyone, and the first call that succeeds resumes it;
//! the admins hear of each once.

use chrono::Utc;
use sqlx::Acquire;

use super::deliver;
use super::job::Finished;
use super::Worker;
use crate::jobs::{self, pause, Claimed};

/// A spent daily quota or an invalid key: the job goes back (its attempt not counted) and
/// generation pauses for everyone; the admins hear of it once, when the pause starts.
pub(super) async fn pause_generation(
    worker: &Worker,
    claimed: &Claimed,
    reason: &str,
) -> anyhow::Result<Finished> {
    let probe = worker.settings.probe_every;
    // Due at once: while paused, claims are gated by `pause::take_probe`, not by `run_after`.
    let at = Utc::now();
    let mut conn = worker.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    if !jobs::requeue_uncounted(&mut tx, claimed.id, claimed.epoch, at, reason).await? {
        tx.rollback().await?;
        return Ok(Finished::Discarded);
    }
    if pause::pause(&mut tx, reason, probe).await? {
        tracing::error!(reason, "Gemini refuses: generation paused for everyone");
        deliver::alert_admins(&mut tx, &worker.admins, "admin_paused", reason).await?;
    }
    tx.commit().await?;
    Ok(Finished::Paused)
}

pub(super) async fn resume_if_paused(worker: &Worker) -> anyhow::Result<()> {
    let mut conn = worker.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    if pause::resume(&mut tx).await? {
        tracing::info!("a Gemini call succeeded: generation resumed");
        deliver::alert_admins(&mut tx, &worker.admins, "admin_resumed", "probe succeeded").await?;
    }
    tx.commit().await?;
    Ok(())
}
