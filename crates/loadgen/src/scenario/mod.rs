//! The end-to-end scenario (issue #7, DESIGN §1 as a whole): the real processes — `serve`
//! behind a balancer, `worker`s — against the fakes, real Postgres and real Redis; simulated
//! users acting at random while a chaos driver kills processes, deletes Redis' keys and injects
//! faults into every external API; then everything drained and every guarantee checked.
//!
//! One driver for both sizes: `cargo test` runs a short one (`tests/it/scenario.rs` in the
//! nanobanana crate), `loadgen scenario` a long one with hundreds of users.

mod act;
mod buy;
pub mod chaos;
pub mod check;
pub mod growth;
mod money;
pub mod proxy;
mod refunds;
pub mod rng;
pub mod system;
pub mod users;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use chaos::ChaosOptions;
pub use check::Counts;
pub use system::{Role, Setup, System};
pub use users::Crowd;

/// A scenario's size and what may go wrong in it.
#[derive(Debug, Clone)]
pub struct Options {
    pub setup: Setup,
    pub users: usize,
    /// How long the users act (and the chaos strikes).
    pub duration: Duration,
    /// Pause between two user actions.
    pub step_every: Duration,
    /// `None`: no chaos (a baseline run).
    pub chaos: Option<ChaosOptions>,
    pub seed: u64,
    /// How long everything may take to settle after the users stop.
    pub drain: Duration,
    /// Prompts that carry a retryable Gemini error on every attempt (retries exhausted after
    /// ~30 s of backoff): only for runs whose drain allows it.
    pub persistent_retries: bool,
    /// Each way of paying and refunding once before chance decides (see `Crowd`).
    pub each_flow_first: bool,
    /// Act on past `duration` (up to four times it) until every flow of
    /// `users::REQUIRED_FLOWS` has happened: the short test's run, which must show them all,
    /// is delayed by a slow machine instead of failing.
    pub act_until_flows_shown: bool,
}

/// What a run did and found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub users: usize,
    pub actions: BTreeMap<String, u64>,
    pub actions_skipped: u64,
    /// How purchases and refunds went (paid, paid twice, canceled, refunded in the bot…).
    pub flows: BTreeMap<String, u64>,
    pub chaos: BTreeMap<String, u64>,
    pub process_starts: u32,
    pub process_kills: u32,
    pub counts: Counts,
    pub act_secs: f64,
    pub drain_secs: f64,
    /// Exit codes of the final SIGTERM of every process (`None`: killed after the limit).
    pub final_exits: Vec<(String, Option<i32>, f64)>,
    /// Every broken promise; empty when the run passed.
    pub problems: Vec<String>,
    pub workdir: PathBuf,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "scenario: {} users, seed {}, acted {:.1} s, drained in {:.1} s",
            self.users, self.seed, self.act_secs, self.drain_secs
        )?;
        writeln!(f, "  actions: {:?} (skipped {})", self.actions, self.actions_skipped)?;
        writeln!(f, "  purchases and refunds: {:?}", self.flows)?;
        writeln!(
            f,
            "  chaos: {:?}; process starts {}, kills {}",
            self.chaos, self.process_starts, self.process_kills
        )?;
        writeln!(f, "  updates: {} sent, {} handled", c.updates_sent, c.updates_handled)?;
        writeln!(
            f,
            "  generations: {} succeeded ({} photos in chats, {} undeliverable: user blocked), {} failed ({} explained)",
            c.generations_succeeded, c.photos_in_chats, c.deliveries_dropped_blocked, c.generations_failed, c.failures_explained
        )?;
        writeln!(
            f,
            "  YooKassa payments: {} succeeded, {} canceled, {} left unpaid",
            c.payments_succeeded, c.payments_canceled, c.payments_pending
        )?;
        writeln!(
            f,
            "  Stars: {} invoices, {} charges ({} of them a second charge of an order), {} payments not made (abandoned before the answer, declined or expired)",
            c.stars_invoices, c.stars_charges, c.stars_second_charges, c.stars_unpaid
        )?;
        writeln!(
            f,
            "  refunds: {} committed ({} credits, money returned), {} released, {} left held",
            c.refunds_committed, c.credits_refunded, c.refunds_released, c.refunds_held
        )?;
        writeln!(
            f,
            "  credits: sold {}, spent {}, refunded {}; {} balances match the ledger",
            c.credits_sold, c.credits_spent, c.credits_refunded, c.balances_checked
        )?;
        writeln!(
            f,
            "  outbox: {} sent, {} dropped {:?}",
            c.outbox_sent, c.outbox_dropped, c.outbox_dropped_by_reason
        )?;
        writeln!(f, "  final SIGTERM: {:?}", self.final_exits)?;
        if self.problems.is_empty() {
            write!(f, "  PASSED: audit clean, every guarantee held")
        } else {
            writeln!(f, "  FAILED ({} problems; logs in {}):", self.problems.len(), self.workdir.display())?;
            for problem in &self.problems {
                writeln!(f, "    - {problem}")?;
            }
            Ok(())
        }
    }
}

/// Runs the whole scenario on `options.setup` (a migrated, empty database).
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let system = System::start(options.setup.clone()).await?;
    let mut crowd = Crowd::new(
        7_000_000,
        options.users,
        options.seed,
        options.chaos.is_some(),
        options.persistent_retries,
    );
    if options.each_flow_first {
        crowd.each_flow_first();
    }
    crowd.fund(&system, 60).await?;
    growth::setup(&system).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let chaos =
        options.chaos.clone().map(|chaos_options| spawn_chaos(&options, chaos_options, &system, stopped));
    let (act_secs, mut problems) = act(&options, &mut crowd, &system).await;
    let _ = stop.send(true);
    problems.extend(crowd.finish_refunds().await);
    let mut injected = BTreeMap::new();
    if let Some(chaos) = chaos {
        let (counts, errors) = chaos.await?;
        injected = counts.into_iter().map(|(k, v)| (format!("{k:?}"), v)).collect();
        problems.extend(errors);
    }
    // Every process up again (a kill may have just happened), then wait for the quiet.
    system.restart_all().await?;
    let drain_started = Instant::now();
    if let Err(left) = check::drain(&system, options.drain).await? {
        problems.push(format!("not drained after {:?}: {left}", options.drain));
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let final_exits = terminate(&system, options.setup.grace_secs, &mut problems).await;
    let (counts, broken) = check::check(&system, &crowd.updates, &crowd.ever_blocked).await?;
    problems.extend(broken);
    growth::check(&system, &mut problems).await?;
    let (process_starts, process_kills) = system.restarts().await;
    let mut flows: BTreeMap<String, u64> = crowd.flows.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    flows.extend(refunds::admin_answers(&system).into_iter().map(|(k, v)| (k.to_owned(), v)));
    if !problems.is_empty() {
        problems.push(format!("process logs (tails):\n{}", system.logs()));
    }
    system.close();
    Ok(Report {
        seed: options.seed,
        users: options.users,
        actions: crowd.actions.iter().map(|(k, v)| (format!("{k:?}"), *v)).collect(),
        actions_skipped: crowd.skipped,
        flows,
        chaos: injected,
        process_starts,
        process_kills,
        counts,
        act_secs,
        drain_secs,
        final_exits,
        problems,
        workdir: options.setup.workdir.clone(),
    })
}

/// The chaos driver, striking until `stopped`, then calming everything; returns what it
/// injected and the strikes that failed.
fn spawn_chaos(
    options: &Options,
    chaos_options: ChaosOptions,
    system: &Arc<System>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(BTreeMap<chaos::Chaos, u64>, Vec<String>)> {
    let (system, seed, acting) = (system.clone(), options.seed, options.duration);
    tokio::spawn(async move {
        let mut driver = chaos::Driver::new(seed, chaos_options, acting);
        let mut errors = Vec::new();
        loop {
            let pause = driver.pause();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
            if let Err(e) = driver.strike(&system).await {
                errors.push(format!("chaos: {e:#}"));
            }
        }
        driver.calm(&system).await;
        (driver.injected, errors)
    })
}

/// The users act, a step every `step_every`, for `duration` (the short test's run on, up to
/// four times that, until it has shown every flow); returns the seconds it took and the
/// actions that failed.
async fn act(options: &Options, crowd: &mut Crowd, system: &Arc<System>) -> (f64, Vec<String>) {
    let started = Instant::now();
    let mut problems = Vec::new();
    let acting = |crowd: &Crowd| {
        let elapsed = started.elapsed();
        elapsed < options.duration
            || (options.act_until_flows_shown && crowd.owes_required() && elapsed < options.duration * 4)
    };
    let mut broadcast = false;
    while acting(crowd) {
        // The admin's broadcast, in the middle of the chaos.
        if !broadcast && started.elapsed() >= options.duration / 2 {
            growth::broadcast(crowd, system);
            broadcast = true;
        }
        if let Err(e) = crowd.step(system).await {
            problems.push(format!("user action: {e:#}"));
        }
        tokio::time::sleep(options.step_every).await;
    }
    (started.elapsed().as_secs_f64(), problems)
}

/// SIGTERM to every process; returns each one's exit code and how long it took, and adds a
/// problem for each that did not exit 0.
async fn terminate(
    system: &System,
    grace_secs: u64,
    problems: &mut Vec<String>,
) -> Vec<(String, Option<i32>, f64)> {
    let exits = system.terminate_all(Duration::from_secs(grace_secs + 10)).await;
    let final_exits: Vec<(String, Option<i32>, f64)> = exits
        .iter()
        .map(|(role, status, took)| (format!("{role:?}"), status.and_then(|s| s.code()), took.as_secs_f64()))
        .collect();
    for (role, code, _) in &final_exits {
        if *code != Some(0) {
            problems.push(format!("{role} did not exit 0 on SIGTERM: {code:?}"));
        }
    }
    final_exits
}
