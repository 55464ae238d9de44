//! The chaos driver: while the users act, at random moments one fault of a random kind —
//! `kill -9` of a worker or a `serve` (started again a moment later), every Redis key of the
//! deployment deleted, leases expiring under live workers, Gemini errors of every class,
//! Telegram 429s and 500s, YooKassa notifications duplicated, delayed, held and released
//! reversed (reordered), dropped, and YooKassa API failures.

use std::collections::BTreeMap;
use std::time::Duration;

use fakes::gemini::Behaviour;
use fakes::telegram::{Fault, FaultKind};
use fakes::yookassa::{ApiFault, ApiFaultKind, NotifyMode};

use super::rng::Rng;
use super::system::{Role, System};

/// Which faults a run may inject.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Between two faults (uniform in this range, milliseconds).
    pub every_ms: (u64, u64),
    pub kill_workers: bool,
    pub kill_serves: bool,
    /// Notifications dropped for good: only the reconciler (60 s + 30 s) makes them good, so
    /// only runs with a long drain enable this.
    pub drop_notifications: bool,
    /// Gemini's daily quota spent once, at two thirds of the acting time: generation pauses for
    /// everyone until a probe call succeeds (one per 5 minutes), so only long runs enable this.
    pub daily_quota: bool,
    /// Strike every enabled kind once (in random order) before choosing at random, so that a
    /// short run still meets each fault.
    pub each_kind_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Chaos {
    KillWorker,
    KillServe,
    FlushRedis,
    ExpireLeases,
    GeminiTransient,
    GeminiDailyQuota,
    TelegramTooMany,
    TelegramServerError,
    NotificationsDuplicated,
    NotificationsDelayed,
    NotificationsReordered,
    NotificationsDropped,
    YooKassaApiFailure,
}

pub struct Driver {
    rng: Rng,
    options: ChaosOptions,
    pub injected: BTreeMap<Chaos, u64>,
    holding: bool,
    quota_spent: bool,
    /// The daily quota is spent once, at two thirds of the run: generation pauses for at
    /// least one probe interval (5 min), so earlier it would stop generation for the rest of
    /// the run.
    quota_at: std::time::Instant,
    /// Kinds still owed by `each_kind_first`.
    owed: Vec<Chaos>,
}

impl Driver {
    /// A driver for a run whose users act for `acting`.
    pub fn new(seed: u64, options: ChaosOptions, acting: Duration) -> Self {
        let mut driver = Self {
            rng: Rng::new(seed ^ 0xC4A0_5000),
            options,
            injected: BTreeMap::new(),
            holding: false,
            quota_spent: false,
            quota_at: std::time::Instant::now() + acting * 2 / 3,
            owed: Vec::new(),
        };
        if driver.options.each_kind_first {
            let mut kinds: Vec<Chaos> = driver.kinds().into_iter().map(|(kind, _)| kind).collect();
            // A shuffle: the order differs by seed.
            for i in (1..kinds.len()).rev() {
                let j = driver.rng.below(i as u64 + 1) as usize;
                kinds.swap(i, j);
            }
            driver.owed = kinds;
        }
        driver
    }

    /// How long to wait before the next fault.
    pub fn pause(&mut self) -> Duration {
        let (low, high) = self.options.every_ms;
        self.rng.millis(low, high)
    }

    fn choose(&mut self) -> Chaos {
        if self.options.daily_quota && !self.quota_spent && std::time::Instant::now() >= self.quota_at {
            return Chaos::GeminiDailyQuota;
        }
        if let Some(owed) = self.owed.pop() {
            return owed;
        }
        let choices = self.kinds();
        self.rng.weighted(&choices)
    }

    /// The enabled kinds with their weights.
    fn kinds(&self) -> Vec<(Chaos, u64)> {
        let mut choices = vec![
            (Chaos::FlushRedis, 2),
            (Chaos::ExpireLeases, 3),
            (Chaos::GeminiTransient, 6),
            (Chaos::TelegramTooMany, 3),
            (Chaos::TelegramServerError, 3),
            (Chaos::NotificationsDuplicated, 3),
            (Chaos::NotificationsDelayed, 2),
            (Chaos::NotificationsReordered, 2),
            (Chaos::YooKassaApiFailure, 2),
        ];
        if self.options.kill_workers {
            choices.push((Chaos::KillWorker, 3));
        }
        if self.options.kill_serves {
            choices.push((Chaos::KillServe, 2));
        }
        if self.options.drop_notifications {
            choices.push((Chaos::NotificationsDropped, 1));
        }
        choices
    }

    /// Injects one fault; `Ok(what)` names it.
    pub async fn strike(&mut self, system: &System) -> anyhow::Result<Chaos> {
        // A hold started by the previous strike ends now, reversed: reordered delivery.
        if self.holding {
            system.yk.release_notifications(true).await;
            self.holding = false;
        }
        let chaos = self.choose();
        match chaos {
            Chaos::KillWorker | Chaos::KillServe => {
                let role = if chaos == Chaos::KillWorker { Role::Worker } else { Role::Serve };
                if !self.kill_and_restart(system, role).await? {
                    return Ok(chaos);
                }
            }
            Chaos::FlushRedis => {
                system.flush_redis().await?;
            }
            Chaos::ExpireLeases => {
                // Under live workers: their heartbeat or settle then finds the epoch gone.
                sqlx::query(
                    "UPDATE generations SET locked_until = now()
                     WHERE status = 'processing' AND random() < 0.5",
                )
                .execute(&system.pool)
                .await?;
            }
            Chaos::GeminiTransient => {
                let (behaviour, count) = self.gemini_transient();
                system.gemini.queue(behaviour, count);
            }
            Chaos::GeminiDailyQuota => {
                system.gemini.queue(Behaviour::DailyQuota, 1);
                self.quota_spent = true;
            }
            Chaos::TelegramTooMany | Chaos::TelegramServerError => {
                let kind = if chaos == Chaos::TelegramTooMany {
                    FaultKind::TooManyRequests
                } else {
                    FaultKind::ServerError
                };
                system.tg.inject_fault(self.telegram_fault(kind));
            }
            Chaos::NotificationsDuplicated
            | Chaos::NotificationsDelayed
            | Chaos::NotificationsReordered
            | Chaos::NotificationsDropped => system.yk.set_notify_mode(self.notify_mode(chaos)),
            Chaos::YooKassaApiFailure => system.yk.inject_fault(self.yookassa_fault()),
        }
        *self.injected.entry(chaos).or_default() += 1;
        Ok(chaos)
    }

    /// `kill -9` of a random process of `role`, started again a moment later; `false` when
    /// none runs.
    async fn kill_and_restart(&mut self, system: &System, role: Role) -> anyhow::Result<bool> {
        let slots = system.slots(role).await;
        if slots.is_empty() {
            return Ok(false);
        }
        let slot = *self.rng.pick(&slots);
        let pid = system.kill9(slot).await;
        tokio::time::sleep(self.rng.millis(200, 1500)).await;
        if let (Role::Worker, Some(pid)) = (role, pid) {
            // Its 60 s leases run out (time the test does not wait for).
            system.expire_leases_of(pid).await?;
        }
        system.restart(slot).await?;
        Ok(true)
    }

    /// A retryable Gemini error of a random class, for how many calls.
    fn gemini_transient(&mut self) -> (Behaviour, usize) {
        let behaviour = match self.rng.below(6) {
            0 => Behaviour::Server(503),
            1 => Behaviour::Server(500),
            2 => Behaviour::Server(504),
            3 => Behaviour::RateLimited { retry_secs: 1 },
            4 => Behaviour::Drop,
            _ => Behaviour::Hang,
        };
        let count = if behaviour == Behaviour::Hang { 1 } else { 1 + self.rng.below(3) as usize };
        (behaviour, count)
    }

    /// A Telegram error of `kind` for the next one to three calls of a random method.
    fn telegram_fault(&mut self, kind: FaultKind) -> Fault {
        let method = *self.rng.pick(&["*", "sendMessage", "sendPhoto", "editMessageText"]);
        Fault {
            method: method.to_owned(),
            count: 1 + self.rng.below(3) as u32,
            kind,
            retry_after: Some(1),
            processed: false,
        }
    }

    /// How YooKassa's notifications go from now on, for one of the `Notifications…` kinds. A
    /// hold (reordering) is released, reversed, at the next strike.
    fn notify_mode(&mut self, chaos: Chaos) -> NotifyMode {
        match chaos {
            Chaos::NotificationsDuplicated => {
                NotifyMode { duplicate: 2 + self.rng.below(2) as u32, ..Default::default() }
            }
            Chaos::NotificationsDelayed => {
                NotifyMode { delay_ms: 200 + self.rng.below(2000), ..Default::default() }
            }
            Chaos::NotificationsReordered => {
                self.holding = true;
                NotifyMode { hold: true, duplicate: 2, ..Default::default() }
            }
            Chaos::NotificationsDropped => NotifyMode { drop_next: 1, ..Default::default() },
            other => unreachable!("{other:?} is not a notifications fault"),
        }
    }

    /// A YooKassa API failure of the next call, the call done or not behind it.
    fn yookassa_fault(&mut self) -> ApiFault {
        let kind = if self.rng.percent(50) { ApiFaultKind::ServerError } else { ApiFaultKind::Processing };
        ApiFault { kind, count: 1, processed: self.rng.percent(50), path: None, method: None }
    }

    /// Everything back to normal for the drain: held notifications released, faults cleared.
    pub async fn calm(&mut self, system: &System) {
        system.yk.set_notify_mode(NotifyMode::default());
        system.yk.release_notifications(true).await;
        self.holding = false;
        system.tg.clear_faults();
        // Faults queued while generation was paused would meet the drain's first calls (the
        // pause's probe among them, and the next probe is 5 minutes later).
        system.gemini.clear_queue();
    }
}
