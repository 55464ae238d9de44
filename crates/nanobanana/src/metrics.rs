//! Process counters for `GET /metrics`, in Prometheus' text format. Counters are plain atomics
//! (no registry crate); figures that live in the database (queue depth, outbox lag, payments)
//! are read from the database so every process reports the same truth, but at most once per
//! `Figures::ttl` and by one scrape at a time: fifty scrapers at once cost one set of queries
//! and one pooled connection, never the pool the webhooks need. The business totals
//! (generations by status and model, charges, credits sold and spent) read whole tables — with
//! 1,000,000 generations and charges and 3,000,000 journal rows about 0.5 s of the database per
//! read, growing with the history — so they are read at most once per `Figures::totals_ttl`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

pub static UPDATES_HANDLED: AtomicU64 = AtomicU64::new(0);
pub static UPDATES_REPEATED: AtomicU64 = AtomicU64::new(0);
pub static UPDATES_FAILED: AtomicU64 = AtomicU64::new(0);
pub static WEBHOOK_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Text rendered at an instant.
type Cached = Mutex<Option<(Instant, String)>>;

/// The database figures, cached. The lock is held while they are read, so concurrent scrapes
/// of a stale cache wait for the one read instead of each starting their own.
pub struct Figures {
    ttl: Duration,
    totals_ttl: Duration,
    /// How many times the figures were read from the database (not served from the cache).
    reads: AtomicU64,
    cached: Cached,
    totals: Cached,
}

impl Figures {
    /// Live figures at most `ttl` old, totals at most `totals_ttl`.
    pub fn new(ttl: Duration, totals_ttl: Duration) -> Self {
        Self { ttl, totals_ttl, reads: AtomicU64::new(0), cached: Mutex::new(None), totals: Mutex::new(None) }
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The figures at most `ttl` old (their totals at most `totals_ttl`).
    pub async fn render(
        &self,
        pool: &sqlx::PgPool,
        catalog: &crate::domain::Catalog,
    ) -> sqlx::Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((_, text)) = cached.as_ref().filter(|(at, _)| at.elapsed() < self.ttl) {
            return Ok(text.clone());
        }
        let mut text = String::new();
        inc(&self.reads);
        render_live(&mut text, pool, catalog).await?;
        let mut totals = self.totals.lock().await;
        match totals.as_ref().filter(|(at, _)| at.elapsed() < self.totals_ttl) {
            Some((_, rendered)) => text.push_str(rendered),
            None => {
                let mut rendered = String::new();
                render_totals(&mut rendered, pool, catalog).await?;
                text.push_str(&rendered);
                *totals = Some((Instant::now(), rendered));
            }
        }
        *cached = Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Appends one sample line (with its `# TYPE` header when `kind` is given).
pub fn sample(out: &mut String, name: &str, kind: Option<&str>, labels: &str, value: impl std::fmt::Display) {
    if let Some(kind) = kind {
        let _ = writeln!(out, "# TYPE {name} {kind}");
    }
    let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// The process counters.
pub fn render_counters(out: &mut String) {
    let counter = |out: &mut String, name: &str, value: &AtomicU64| {
        sample(out, name, Some("counter"), "", value.load(Ordering::Relaxed));
    };
    counter(out, "nanobanana_updates_handled_total", &UPDATES_HANDLED);
    counter(out, "nanobanana_updates_repeated_total", &UPDATES_REPEATED);
    counter(out, "nanobanana_updates_failed_total", &UPDATES_FAILED);
    counter(out, "nanobanana_webhook_refused_total", &WEBHOOK_REFUSED);
}

/// Figures read through indexes, cheap at any size: whether each model of the catalog is
/// served, queue depth and age, outbox backlog and lag.
pub async fn render_live(
    out: &mut String,
    pool: &sqlx::PgPool,
    catalog: &crate::domain::Catalog,
) -> sqlx::Result<()> {
    let missing: Vec<String> =
        sqlx::query_scalar("SELECT model_id FROM unavailable_models").fetch_all(pool).await?;
    let _ = writeln!(out, "# TYPE nanobanana_model_available gauge");
    for model in catalog.models() {
        let up = u8::from(!missing.contains(&model.id));
        let labels = format!("model=\"{}\",id=\"{}\"", model.key, model.id);
        sample(out, "nanobanana_model_available", None, &labels, up);
    }
    let (queued, oldest) = backlog(pool, "generations WHERE status = 'queued'").await?;
    sample(out, "nanobanana_queue_depth", Some("gauge"), "", queued);
    sample(out, "nanobanana_queue_oldest_seconds", Some("gauge"), "", oldest);
    let (pending, lag) = backlog(pool, "outbox WHERE state = 'pending'").await?;
    sample(out, "nanobanana_outbox_pending", Some("gauge"), "", pending);
    sample(out, "nanobanana_outbox_lag_seconds", Some("gauge"), "", lag);
    Ok(())
}

/// The business totals, each a scan of a whole table: generations by status and model (the
/// catalog's key; a stored key of an earlier release counts under the model that replaced it),
/// charges by provider and status, credits sold and spent (a commit gives back what a smaller
/// picture did not cost).
pub async fn render_totals(
    out: &mut String,
    pool: &sqlx::PgPool,
    catalog: &crate::domain::Catalog,
) -> sqlx::Result<()> {
    let stored: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT status, model, COUNT(*) FROM generations GROUP BY status, model ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    let mut generations = std::collections::BTreeMap::<(String, String), i64>::new();
    for (status, model, count) in stored {
        let key = catalog.find(&model).map_or(model, |m| m.key.to_string());
        *generations.entry((status, key)).or_default() += count;
    }
    let _ = writeln!(out, "# TYPE nanobanana_generations gauge");
    for ((status, model), count) in generations {
        sample(out, "nanobanana_generations", None, &format!("status=\"{status}\",model=\"{model}\""), count);
    }
    let charges: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT provider, status, COUNT(*) FROM payments GROUP BY 1, 2 ORDER BY 1, 2")
            .fetch_all(pool)
            .await?;
    let _ = writeln!(out, "# TYPE nanobanana_charges gauge");
    for (provider, status, count) in charges {
        sample(
            out,
            "nanobanana_charges",
            None,
            &format!("provider=\"{provider}\",status=\"{status}\""),
            count,
        );
    }
    let (sold, spent): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(amount) FILTER (WHERE type = 'topup'), 0)::BIGINT,
                COALESCE(SUM(amount - delta_available) FILTER (WHERE type = 'commit'), 0)::BIGINT
         FROM transactions",
    )
    .fetch_one(pool)
    .await?;
    sample(out, "nanobanana_credits_sold_total", Some("counter"), "", sold);
    sample(out, "nanobanana_credits_spent_total", Some("counter"), "", spent);
    Ok(())
}

/// How many rows of `rows` (a table and its condition) wait, and the age of the oldest.
async fn backlog(pool: &sqlx::PgPool, rows: &'static str) -> sqlx::Result<(i64, f64)> {
    let sql = format!(
        "SELECT COUNT(*), COALESCE(EXTRACT(EPOCH FROM now() - MIN(created_at)), 0)::FLOAT8 FROM {rows}"
    );
    sqlx::query_as(&sql).fetch_one(pool).await
}
