//! System: generation paused or running (pause and resume: `jobs::pause`'s operator pause,
//! which no probe lifts), the model probe's verdict per catalog model, the generation queue
//! (depth, oldest waiting), the outbox's backlog per priority class, the background processes'
//! last passes (`db::runs`), and the audit's last result with "run now" (`db::runs::run_audit`,
//! as `nanobanana audit`). Actions are recorded with their form's key: a double submit does
//! each once.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::Connection;

use super::forms;
use super::{Admin, Chrome, PanelError, PanelState};
use crate::db::panel::record_action;
use crate::db::runs::{self, Run};
use crate::jobs::{availability, pause};

const NOTES: &[(&str, &str, bool)] = &[
    (
        "paused",
        "Generation paused: new requests are refused and nothing queued starts until you resume.",
        false,
    ),
    ("resumed", "Generation resumed.", false),
    ("unchanged", "It was already so: nothing changed.", false),
    ("audited", "The audit ran: its result is below.", false),
    ("again", "That form was already submitted: done once, not twice.", false),
];

pub fn routes() -> Router<PanelState> {
    Router::new()
        .route("/system", get(page))
        .route("/system/pause", post(pause_generation))
        .route("/system/resume", post(resume_generation))
        .route("/system/audit", post(audit_now))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Shown {
    note: Option<String>,
}

struct ModelState {
    key: String,
    id: String,
    name: String,
    missing: Option<availability::Missing>,
}

impl ModelState {
    fn since(&self) -> String {
        self.missing.as_ref().map_or(String::new(), |m| super::when(&m.since))
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Lane {
    class: i16,
    pending: i64,
    due: i64,
    oldest: Option<f64>,
}

impl Lane {
    fn name(&self) -> &'static str {
        match self.class {
            0 => "paid deliveries",
            1 => "replies",
            2 => "progress edits",
            3 => "broadcasts",
            _ => "other",
        }
    }
    fn lag(&self) -> String {
        self.oldest.map_or("—".to_owned(), |s| forms::age(s as i64))
    }
}

struct Process {
    name: &'static str,
    what: &'static str,
    run: Option<Run>,
}

impl Process {
    fn last(&self) -> String {
        self.run.as_ref().map_or("never".to_owned(), |r| super::when(&r.finished_at))
    }
    fn last_ok(&self) -> String {
        self.run.as_ref().and_then(|r| r.last_ok_at).map_or("never".to_owned(), |t| super::when(&t))
    }
}

/// The audit's last result as shown.
struct Audit {
    at: DateTime<Utc>,
    clean: bool,
    detail: String,
    violations: Vec<(String, String, String)>,
}

impl Audit {
    fn of(run: &Run) -> Self {
        let violations = run
            .report
            .as_ref()
            .and_then(|report| report["violations"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (text("check"), text("subject"), text("detail"))
            })
            .collect();
        Self {
            at: run.finished_at,
            clean: run.ok,
            detail: run.detail.clone().unwrap_or_default(),
            violations,
        }
    }

    fn when(&self) -> String {
        super::when(&self.at)
    }
}

#[derive(Template)]
#[template(path = "panel/system.html")]
struct Page {
    chrome: Chrome,
    note: Option<(String, bool)>,
    paused: Option<pause::Pause>,
    paused_since: String,
    models: Vec<ModelState>,
    queued: i64,
    processing: i64,
    oldest_queued: String,
    lanes: Vec<Lane>,
    parked: i64,
    processes: Vec<Process>,
    audit: Option<Audit>,
    keys: [uuid::Uuid; 3],
}

/// The outbox's pending rows per priority class, every class listed.
async fn lanes(conn: &mut sqlx::PgConnection) -> sqlx::Result<Vec<Lane>> {
    let found: Vec<Lane> = sqlx::query_as(
        "SELECT class, COUNT(*) AS pending, COUNT(*) FILTER (WHERE next_attempt_at <= now()) AS due,
                EXTRACT(EPOCH FROM now() - MIN(created_at))::FLOAT8 AS oldest
         FROM outbox WHERE state = 'pending' GROUP BY class ORDER BY class",
    )
    .fetch_all(conn)
    .await?;
    Ok((0..=3i16)
        .map(|class| {
            found.iter().find(|l| l.class == class).map_or(
                Lane { class, pending: 0, due: 0, oldest: None },
                |l| Lane { class, pending: l.pending, due: l.due, oldest: l.oldest },
            )
        })
        .collect())
}

async fn page(
    State(state): State<PanelState>,
    admin: Admin,
    Query(shown): Query<Shown>,
) -> Result<Response, PanelError> {
    let mut conn = state.pool().acquire().await?;
    let paused = pause::is_paused(&mut conn).await?;
    let missing = availability::missing_since(&mut conn).await?;
    let models = state
        .config()
        .catalog
        .models()
        .iter()
        .map(|m| ModelState {
            key: m.key.to_string(),
            id: m.id.clone(),
            name: m.names.en.clone(),
            missing: missing.iter().find(|x| x.model_id == m.id).cloned(),
        })
        .collect();
    let (queued, processing, oldest): (i64, i64, Option<f64>) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE status = 'queued'), COUNT(*) FILTER (WHERE status = 'processing'),
                EXTRACT(EPOCH FROM now() - MIN(created_at) FILTER (WHERE status = 'queued'))::FLOAT8
         FROM generations WHERE status IN ('queued', 'processing')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let lanes = lanes(&mut conn).await?;
    let parked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'parked'")
        .fetch_one(&mut *conn)
        .await?;
    let recorded = runs::all(&mut conn).await?;
    let processes = runs::WATCHED
        .iter()
        .map(|(name, what)| Process { name, what, run: recorded.iter().find(|r| r.name == *name).cloned() })
        .collect();
    let audit = recorded.iter().find(|r| r.name == runs::AUDIT).map(Audit::of);
    super::render(Page {
        chrome: Chrome::new(&admin, "system"),
        note: forms::note(shown.note.as_deref(), NOTES),
        paused_since: paused.as_ref().map_or(String::new(), |p| super::when(&p.since)),
        paused,
        models,
        queued,
        processing,
        oldest_queued: oldest.map_or("—".to_owned(), |s| forms::age(s as i64)),
        lanes,
        parked,
        processes,
        audit,
        keys: [super::form_key(), super::form_key(), super::form_key()],
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActionForm {
    csrf: String,
    key: String,
}

async fn pause_generation(
    State(state): State<PanelState>,
    admin: Admin,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let Some(mut tx) = forms::begin(&state, key, &admin, "generation_pause", "generation", None).await?
    else {
        return Ok(super::see_other("/panel/system?note=again"));
    };
    let changed = pause::pause_by_operator(&mut tx, admin.id).await?;
    tx.commit().await?;
    tracing::warn!(admin = admin.id, "panel: generation paused by an operator");
    Ok(super::see_other(if changed { "/panel/system?note=paused" } else { "/panel/system?note=unchanged" }))
}

async fn resume_generation(
    State(state): State<PanelState>,
    admin: Admin,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let Some(mut tx) = forms::begin(&state, key, &admin, "generation_resume", "generation", None).await?
    else {
        return Ok(super::see_other("/panel/system?note=again"));
    };
    let changed = pause::resume_by_operator(&mut tx).await?;
    tx.commit().await?;
    tracing::warn!(admin = admin.id, "panel: generation resumed by an operator");
    Ok(super::see_other(if changed { "/panel/system?note=resumed" } else { "/panel/system?note=unchanged" }))
}

async fn audit_now(
    State(state): State<PanelState>,
    admin: Admin,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let mut conn = state.pool().acquire().await?;
    // Recorded first, in a transaction of its own: the audit runs in a read-only snapshot.
    let mut tx = conn.begin().await?;
    if !record_action(&mut tx, key, admin.id, "audit_run", "audit", None).await? {
        return Ok(super::see_other("/panel/system?note=again"));
    }
    tx.commit().await?;
    let report = runs::run_audit(&mut conn, &format!("panel:{}", admin.id)).await?;
    tracing::info!(
        admin = admin.id,
        clean = report.clean,
        violations = report.violations.len(),
        "panel: audit run"
    );
    Ok(super::see_other("/panel/system?note=audited"))
}
