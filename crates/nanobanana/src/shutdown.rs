//! Graceful shutdown of the long-running commands (`serve`, `worker`, `run`): SIGTERM or
//! SIGINT turns a watch flag true; every loop watches it, stops taking new work and lets go
//! of what it holds (the HTTP server stops accepting and answers the requests in flight,
//! readiness turns false, workers hand their in-flight generations back, the outbox sender
//! finishes its batch). `within_grace` bounds all of that by `SHUTDOWN_GRACE_SECS`.
//!
//! Past the grace period the process exits anyway: whatever was still running is left in a
//! state that the crash guarantees cover (an unanswered update is redelivered by Telegram, an
//! unreleased lease expires, a sent-but-unmarked outbox row is sent once more).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Turns true on SIGTERM or SIGINT (Ctrl-C).
pub fn signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down: no new work; finishing what is in flight");
        let _ = tx.send(true);
    });
    rx
}

/// What became of a command asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It returned by itself (before or after the signal, within the grace period).
    Cleanly,
    /// The grace period ran out; the rest of its work was abandoned.
    GraceExpired,
}

/// Runs `work` to its end, but once `shutdown` turns true gives it at most `grace` more.
pub async fn within_grace<F>(
    work: F,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> anyhow::Result<Stopped>
where
    F: Future<Output = anyhow::Result<()>>,
{
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => return result.map(|()| Stopped::Cleanly),
        asked = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
            if !asked {
                // Nobody can ask any more: run to the end.
                return work.await.map(|()| Stopped::Cleanly);
            }
        }
    }
    match tokio::time::timeout(grace, work).await {
        Ok(result) => result.map(|()| Stopped::Cleanly),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over: exiting with work in flight \
                 (updates are redelivered, leases expire, nothing is lost)"
            );
            Ok(Stopped::GraceExpired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_that_ends_in_time_ends_cleanly_and_slow_work_is_cut_at_the_grace() {
        let grace = Duration::from_millis(300);
        let (tx, rx) = watch::channel(false);
        let quick = async { Ok(()) };
        assert_eq!(within_grace(quick, rx.clone(), grace).await.ok(), Some(Stopped::Cleanly));

        let mut stop = rx.clone();
        let finishing = async move {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        };
        let task = tokio::spawn(within_grace(finishing, rx.clone(), grace));
        tx.send(true).expect("receivers alive");
        assert_eq!(task.await.expect("task").ok(), Some(Stopped::Cleanly));

        let stuck = std::future::pending::<anyhow::Result<()>>();
        let started = std::time::Instant::now();
        assert_eq!(within_grace(stuck, rx, grace).await.ok(), Some(Stopped::GraceExpired));
        assert!(started.elapsed() >= grace && started.elapsed() < grace * 10);
    }
}
