//! The generation worker (DESIGN §4 "Worker"): turns queued generations into
//! delivered images with exactly-once settlement.
//!
//! The loop wakes on a Redis signal or every `poll_every`, sweeps overdue generations, and
//! claims up to its free capacity (`GEMINI_MAX_CONCURRENCY`); each claimed job runs on its own
//! task (`job`) with a heartbeat holding its lease. Answers are read, stored and settled under
//! a small per-core permit count, so thousands of calls in flight never mean thousands of
//! answers decoded or on the blocking pool at once (over HTTP/2 the waiting answers' bytes stay
//! within their connections' flow-control windows). A job ends only through `ledger::settle`
//! (`deliver`), after its image is stored (`store`); retries go back to the queue with no
//! ledger change; a spent daily quota or an invalid key pauses generation for everyone
//! (`pause`). On shutdown the worker stops claiming and hands its in-flight jobs back.
//! This module never moves credits except through `ledger::settle`, and never sends to
//! Telegram itself: everything the user sees goes through the outbox.

mod conversation;
mod deliver;
mod job;
mod kept;
mod pausing;
pub mod probe;
mod references;
mod repo;

pub use deliver::{redeliver_lost, REDELIVER_AFTER};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// The keyboard under a delivered picture, for the test of every button sent (`bot`).
#[cfg(test)]
pub(crate) use deliver::buttons as result_buttons;
pub use deliver::{failure_text, Failure};
pub use job::Finished;

use crate::config::Config;
use crate::domain::Catalog;
use crate::gemini::{Client, Gateway, LimitSettings, Limits};
use crate::signals::Waiter;

/// How the worker paces itself. `from_config` gives production values; tests shorten them.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs in flight at once (the Gemini concurrency).
    pub concurrency: usize,
    pub lease: Duration,
    /// `None` turns heartbeats off (a test knob: lets a lease expire under a live worker).
    pub heartbeat_every: Option<Duration>,
    pub poll_every: Duration,
    pub sweep_every: Duration,
    /// A job past its deadline with a live holder is taken over after this.
    pub deadline_grace: Duration,
    /// A retryable outcome ends the job failed once it has had this many attempts.
    pub max_attempts: i32,
    /// Caps the backoff between attempts (tests); `None` keeps `jobs::backoff`.
    pub retry_delay_cap: Option<Duration>,
    /// While paused, one probe call per this interval.
    pub probe_every: Duration,
    /// How often `GET /v1beta/models` confirms the catalog's ids (`probe`).
    pub model_probe_every: Duration,
    /// Whether a delivered picture is measured against the size bought (honest sizes). Always
    /// in production; off only for tests and benchmarks whose fake Gemini answers with tiny
    /// pictures on purpose (`small`), which would all count as smaller than bought.
    pub measure_sizes: bool,
}

impl WorkerSettings {
    pub fn from_config(config: &Config) -> Self {
        let concurrency = config.gemini.as_ref().map_or(4, |g| g.max_concurrency.max(1));
        Self {
            concurrency: usize::try_from(concurrency).unwrap_or(4),
            lease: Duration::from_secs(60),
            heartbeat_every: Some(Duration::from_secs(20)),
            poll_every: Duration::from_secs(3),
            sweep_every: Duration::from_secs(10),
            deadline_grace: Duration::from_secs(30),
            max_attempts: 5,
            retry_delay_cap: None,
            probe_every: Duration::from_secs(300),
            model_probe_every: Duration::from_secs(
                config.gemini.as_ref().map_or(300, |g| u64::from(g.model_probe_secs)),
            ),
            measure_sizes: true,
        }
    }
}

/// How many jobs left this worker in each way since it started.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; 7],
}

impl Stats {
    fn index(finished: Option<Finished>) -> usize {
        match finished {
            Some(Finished::Succeeded) => 0,
            Some(Finished::Failed) => 1,
            Some(Finished::Requeued) => 2,
            Some(Finished::Paused) => 3,
            Some(Finished::HandedBack) => 4,
            Some(Finished::Discarded) => 5,
            None => 6,
        }
    }

    fn add(&self, finished: Option<Finished>) {
        self.counts[Self::index(finished)].fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs that ended this way (`None`: ended by an error, left to their lease).
    pub fn get(&self, finished: Option<Finished>) -> u64 {
        self.counts[Self::index(finished)].load(Ordering::Relaxed)
    }
}

/// What every job task shares.
pub struct Worker {
    pub id: String,
    pool: PgPool,
    gateway: Gateway,
    storage: crate::storage::Storage,
    settings: WorkerSettings,
    /// The models: Google's ids, sizes, prices and costs.
    catalog: Catalog,
    admins: Vec<i64>,
    /// For downloading reference photos; absent without `TELEGRAM_BOT_TOKEN`.
    telegram: Option<crate::telegram::client::BotApi>,
    /// Whether the last claim found generation paused: only then does a success look for a
    /// pause to lift (the probes' successes), so an unpaused service pays nothing for it.
    paused_seen: AtomicBool,
    /// Answers being read, stored and settled at once (`FINISHING_PER_CORE` per core).
    finishing: Arc<tokio::sync::Semaphore>,
    /// Bytes of reference photos and answers held at once (`WORKER_MEMORY_BUDGET_MB`).
    pub memory: crate::budget::MemoryBudget,
    pub stats: Stats,
}

/// A busy worker waits for this share of its capacity to be free before it claims again, but
/// never longer than `CLAIM_DEFER`.
const CLAIM_BATCH_DIVISOR: usize = 16;
const CLAIM_DEFER: Duration = Duration::from_millis(50);

/// How many answers a worker processes at once per CPU core: enough to keep the cores and the
/// database busy, few enough that a burst of thousands of answers waits in the sockets.
const FINISHING_PER_CORE: usize = 4;

impl Worker {
    /// Builds the Gemini gateway (its limits in Redis) and the storage from `config`.
    pub async fn new(config: &Config, pool: PgPool, settings: WorkerSettings) -> anyhow::Result<Self> {
        let gemini = config.gemini.as_ref().context("the worker needs GEMINI_API_KEY")?;
        let client = Client::new(gemini)?;
        let redis = crate::redis::connect(&config.redis).await?;
        let mut limit_settings = LimitSettings::from_config(gemini, config.redis.prefix.clone());
        // Every job in flight is one call: the worker's capacity is the process' Gemini slots.
        limit_settings.max_concurrency = u32::try_from(settings.concurrency).unwrap_or(u32::MAX);
        let limits = Limits::new(redis, limit_settings);
        Ok(Self {
            id: crate::jobs::new_worker_id(),
            pool,
            gateway: Gateway::new(client, limits),
            storage: crate::storage::Storage::from_location(&config.storage)?,
            settings,
            catalog: config.catalog.clone(),
            admins: config.operator.admin_ids.clone(),
            telegram: config.telegram.as_ref().map(crate::telegram::client::BotApi::new).transpose()?,
            paused_seen: AtomicBool::new(false),
            finishing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from) * FINISHING_PER_CORE,
            )),
            memory: crate::budget::MemoryBudget::new(
                u64::from(config.limits.worker_memory_budget_mb) * 1024 * 1024,
            ),
            stats: Stats::default(),
        })
    }
}

/// The loop. Returns once `shutdown` turned true and every in-flight job was handed back or
/// finished.
pub async fn run(
    worker: Arc<Worker>,
    waiter: Waiter,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    tracing::info!(worker_id = %worker.id, concurrency = worker.settings.concurrency, "worker started");
    let (wake_tx, mut wake) = mpsc::channel(1);
    let waker = tokio::spawn(listen(waiter, worker.settings.poll_every, wake_tx, shutdown.clone()));
    let prober = tokio::spawn(probe::run(worker.clone(), shutdown.clone()));
    let mut tasks: JoinSet<Option<Finished>> = JoinSet::new();
    let mut sweep = tokio::time::interval(worker.settings.sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A busy worker claims a batch at a time rather than one job per finished one: each claim
    // is a round of queries, and at a thousand jobs a second they would be most of the work.
    let batch = (worker.settings.concurrency / CLAIM_BATCH_DIVISOR).max(1);
    let mut last_claim: Option<tokio::time::Instant> = None;
    while !*shutdown.borrow() {
        let free = worker.settings.concurrency.saturating_sub(tasks.len());
        let deferred = free < batch && last_claim.is_some_and(|t| t.elapsed() < CLAIM_DEFER);
        if !deferred {
            last_claim = Some(tokio::time::Instant::now());
            if let Err(error) = claim(&worker, &mut tasks, &shutdown).await {
                tracing::warn!(error = %format!("{error:#}"), "claiming failed; will retry");
            }
        }
        tokio::select! {
            Some(()) = wake.recv() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = sweep.tick() => expire(&worker).await,
            _ = tokio::time::sleep(CLAIM_DEFER), if deferred && free > 0 => {}
            _ = shutdown.changed() => {}
        }
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!(worker_id = %worker.id, in_flight = tasks.len(), "worker stopping: handing back in-flight jobs");
    while tasks.join_next().await.is_some() {}
    waker.abort();
    prober.abort();
    Ok(())
}

/// Forwards wake-ups (signals and poll ticks) into a one-slot channel: a burst is one wake-up.
async fn listen(
    mut waiter: Waiter,
    poll_every: Duration,
    wake: mpsc::Sender<()>,
    shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        waiter.next(poll_every).await;
        let _ = wake.try_send(());
    }
}

/// Claims up to the free capacity (one probe at most while generation is paused) and spawns
/// a task per job.
async fn claim(
    worker: &Arc<Worker>,
    tasks: &mut JoinSet<Option<Finished>>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let free = worker.settings.concurrency.saturating_sub(tasks.len());
    if free == 0 {
        return Ok(());
    }
    let mut conn = worker.pool.acquire().await?;
    let mut limit = u32::try_from(free).unwrap_or(u32::MAX);
    let paused = crate::jobs::pause::is_paused(&mut conn).await?.is_some();
    worker.paused_seen.store(paused, Ordering::Relaxed);
    if paused {
        if !crate::jobs::pause::take_probe(&mut conn, worker.settings.probe_every).await? {
            return Ok(());
        }
        limit = 1;
    }
    let claimed = crate::jobs::claim(&mut conn, &worker.id, worker.settings.lease, limit).await?;
    drop(conn);
    for job in claimed {
        tasks.spawn(job::run(worker.clone(), job, shutdown.clone()));
    }
    Ok(())
}

/// Ends overdue generations and tells their users; re-queues paid pictures with no delivery
/// in sight (`deliver::redeliver_lost`).
async fn expire(worker: &Worker) {
    use crate::db::runs;
    let started = std::time::Instant::now();
    let result = async {
        let expired = crate::jobs::expire_overdue(&worker.pool, worker.settings.deadline_grace, 100).await?;
        let ended = i64::try_from(expired.len()).unwrap_or(i64::MAX);
        for ended in expired {
            let (user, credits) = (ended.entry.user_id, ended.entry.amount);
            deliver::tell_ended(&worker.pool, ended.id, user, credits, Failure::Deadline).await?;
        }
        anyhow::Ok(ended)
    }
    .await;
    if let Err(error) = &result {
        tracing::warn!(error = %format!("{error:#}"), "deadline sweep failed; will retry");
    }
    runs::note(&worker.pool, runs::DEADLINES, started, &result).await;
    let started = std::time::Instant::now();
    let result = deliver::redeliver_lost(&worker.pool, deliver::REDELIVER_AFTER, &worker.admins)
        .await
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    if let Err(error) = &result {
        tracing::warn!(error = %format!("{error:#}"), "delivery reconciler failed; will retry");
    }
    runs::note(&worker.pool, runs::DELIVERIES, started, &result).await;
}
