//! The daily report: at `DAILY_REPORT_HOUR` (operator's time zone) every admin gets
//! yesterday's figures in the bot, with a link to the panel. Exactly once per day however many
//! `serve` replicas run: the outbox rows are queued in the transaction that records the day
//! (`outbox::alerts`, keyed `daily_report`/date), and a second replica finds the day recorded.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};

use super::days;
use super::figures::{percent, rubles, seconds, thousands, Rates};
use super::summary::Summary;
use crate::outbox::alerts::{tell_admins_once, Alert};

/// What the report needs from the configuration.
#[derive(Debug, Clone)]
pub struct DailyReport {
    pub timezone: String,
    /// The hour (0–23) from which the day's report is due.
    pub hour: u8,
    pub admins: Vec<i64>,
    pub rates: Rates,
    /// Where the panel is (its login goes through the bot's `/panel`); `/panel` without one.
    pub panel_link: String,
}

/// How often the loop looks at the clock.
pub const TICK: Duration = Duration::from_secs(60);

impl DailyReport {
    /// The local date and hour now in the report's zone.
    async fn now(&self, pool: &PgPool) -> sqlx::Result<(NaiveDate, i32)> {
        sqlx::query_as("SELECT (now() AT TIME ZONE $1)::date, EXTRACT(HOUR FROM now() AT TIME ZONE $1)::int4")
            .bind(&self.timezone)
            .fetch_one(pool)
            .await
    }

    /// Sends the report of the day before `today` unless it was sent; whether this call sent it.
    pub async fn send_for(&self, pool: &PgPool, today: NaiveDate) -> sqlx::Result<bool> {
        let day = today - chrono::Days::new(1);
        // Stored (and so refreshed) first: the report and the overview show the same figures.
        let figures = days::store(pool, &self.timezone, day).await?;
        let summary = Summary::of(std::slice::from_ref(&figures), self.rates);
        let args = self.args(day, figures.payers, &summary);
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut tx = pool.begin().await?;
        let sent =
            tell_admins_once(&mut tx, &self.admins, Alert::DailyReport, &day.to_string(), &args).await?;
        tx.commit().await?;
        Ok(sent)
    }

    fn args(&self, day: NaiveDate, payers: i64, s: &Summary) -> Vec<(&'static str, String)> {
        let n = |v: i64| thousands(v.max(0) as u64);
        let m = &s.money;
        vec![
            ("day", day.to_string()),
            ("new_users", n(s.new_users)),
            ("payers", n(payers)),
            ("generations", n(s.generations())),
            ("succeeded", n(s.succeeded())),
            ("failed", n(s.failed())),
            ("failure_rate", percent(s.failed(), s.finished())),
            ("revenue", rubles(m.revenue_kopecks)),
            ("rub", rubles(m.rub_kopecks)),
            ("stars", n(m.stars)),
            ("stars_rub", rubles(m.stars_kopecks)),
            ("refunds", rubles(m.refunds_kopecks)),
            ("cost", rubles(m.cost_kopecks)),
            ("margin", rubles(m.margin_kopecks)),
            ("p50", seconds(s.p50_ms)),
            ("p95", seconds(s.p95_ms)),
            ("panel", self.panel_link.clone()),
        ]
    }

    /// Until shutdown: a look at the clock every `TICK`; the outbox is woken after a send.
    /// Each day is tried until it succeeds once in this process (a replica's send counts).
    pub async fn run(self, pool: PgPool, outbox: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut done: Option<NaiveDate> = None;
        while !*shutdown.borrow() {
            match self.now(&pool).await {
                Ok((today, hour)) if hour >= i32::from(self.hour) && done != Some(today) => {
                    match self.send_for(&pool, today).await {
                        Ok(sent) => {
                            done = Some(today);
                            if sent {
                                tracing::info!(%today, admins = self.admins.len(), "daily report queued");
                                outbox.notify_one();
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "daily report failed; retrying"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "daily report: reading the clock failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
