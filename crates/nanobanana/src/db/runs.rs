//! The last pass of each watched background process (`background_runs`; DESIGN §10, the
//! panel's System page): the reconcilers, the deadline sweep, the model probe and the audit
//! record here, and the panel reads it. A pass that cannot record is logged and goes on: the
//! record is for the operator's eyes, never a reason to stop reconciling.

use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// The processes recorded, by name.
pub const PAYMENTS: &str = "payments_reconciler";
pub const STARS_REFUNDS: &str = "stars_refund_reconciler";
pub const DELIVERIES: &str = "delivery_reconciler";
pub const DEADLINES: &str = "deadline_sweep";
pub const MODEL_PROBE: &str = "model_probe";
pub const AUDIT: &str = "audit";

/// The processes the System page lists, in its order, with what each does.
pub const WATCHED: &[(&str, &str)] = &[
    (PAYMENTS, "YooKassa charges still pending and held YooKassa refunds, looked up at the provider"),
    (STARS_REFUNDS, "held Stars refunds, looked up in getStarTransactions"),
    (DELIVERIES, "paid pictures with no delivery pending and no file_id, queued again"),
    (DEADLINES, "generations past their deadline, ended failed and released"),
    (MODEL_PROBE, "GET /v1beta/models: which catalog ids Gemini serves"),
];

/// One pass's outcome.
#[derive(Debug, Clone)]
pub struct Pass {
    pub started_at: DateTime<Utc>,
    pub ok: bool,
    pub handled: i64,
    pub detail: Option<String>,
    pub report: Option<serde_json::Value>,
}

impl Pass {
    /// A pass that started `started` ago (an `Instant`) and ended with `result`.
    pub fn of<E: std::fmt::Display>(started: Instant, result: &Result<i64, E>) -> Self {
        let elapsed = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        let (ok, handled, detail) = match result {
            Ok(n) => (true, *n, None),
            Err(e) => (false, 0, Some(format!("{e:#}").chars().take(500).collect())),
        };
        Self { started_at: Utc::now() - elapsed, ok, handled, detail, report: None }
    }
}

/// A recorded pass as the panel shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub ok: bool,
    pub handled: i64,
    pub detail: Option<String>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub report: Option<serde_json::Value>,
}

/// Records `pass` as `name`'s last.
pub async fn record(conn: &mut PgConnection, name: &str, pass: &Pass) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO background_runs (name, started_at, ok, handled, detail, last_ok_at, report)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 THEN now() END, $6)
         ON CONFLICT (name) DO UPDATE
             SET started_at = EXCLUDED.started_at, finished_at = now(), ok = EXCLUDED.ok,
                 handled = EXCLUDED.handled, detail = EXCLUDED.detail,
                 last_ok_at = COALESCE(EXCLUDED.last_ok_at, background_runs.last_ok_at),
                 report = EXCLUDED.report",
    )
    .bind(name)
    .bind(pass.started_at)
    .bind(pass.ok)
    .bind(pass.handled)
    .bind(&pass.detail)
    .bind(&pass.report)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a background pass, logging (not returning) a failure to record.
pub async fn note<E: std::fmt::Display>(
    pool: &PgPool,
    name: &str,
    started: Instant,
    result: &Result<i64, E>,
) {
    let pass = Pass::of(started, result);
    let recorded = async {
        let mut conn = pool.acquire().await?;
        record(&mut conn, name, &pass).await
    };
    if let Err(e) = recorded.await {
        tracing::warn!(error = %e, process = name, "could not record the pass");
    }
}

/// Every recorded pass.
pub async fn all(conn: &mut PgConnection) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(
        "SELECT name, started_at, finished_at, ok, handled, detail, last_ok_at, report
         FROM background_runs ORDER BY name",
    )
    .fetch_all(conn)
    .await
}

/// Violations kept in a recorded audit report (the CLI's `--json` lists them all).
const AUDIT_KEPT: usize = 50;

/// Runs the audit (`audit::run`) and records its result as the audit's last pass, `by` whom
/// (`cli`, `panel:ADMIN`). The full report.
pub async fn run_audit(conn: &mut PgConnection, by: &str) -> sqlx::Result<crate::audit::Report> {
    let started = Instant::now();
    let report = crate::audit::run(conn).await?;
    let found = i64::try_from(report.violations.len()).unwrap_or(i64::MAX);
    let mut pass = Pass::of::<String>(started, &Ok(found));
    pass.ok = report.clean;
    pass.detail = Some(if report.clean {
        format!("clean ({} checks), run by {by}", report.checks.len())
    } else {
        format!("{found} violation(s), run by {by}")
    });
    let kept: Vec<_> = report.violations.iter().take(AUDIT_KEPT).collect();
    pass.report = Some(serde_json::json!({
        "clean": report.clean,
        "by": by,
        "totals": report.totals,
        "violations": kept,
    }));
    record(conn, AUDIT, &pass).await?;
    Ok(report)
}
