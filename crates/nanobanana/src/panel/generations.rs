//! Generations: newest first, filtered by status, model and days, a page at a time (a cursor
//! on creation time and id); waiting and running ones highlighted, failures with their reason,
//! and the failures of the same filters counted by reason and model. Read-only: a report, so
//! it reads `generations` directly (DESIGN §2).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::{self, Choice};
use super::{Admin, Chrome, PanelError, PanelState};

/// Rows per page.
const PAGE: i64 = 50;
const STATUSES: &[(&str, &str)] =
    &[("queued", "queued"), ("processing", "processing"), ("succeeded", "succeeded"), ("failed", "failed")];

pub fn routes() -> Router<PanelState> {
    Router::new().route("/generations", get(page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filter {
    status: String,
    model: String,
    from: String,
    to: String,
    before: String,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    user_id: i64,
    model: String,
    image_size: Option<String>,
    status: String,
    cost: i64,
    attempts: i32,
    error: Option<String>,
    prompt: String,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

impl Row {
    fn waiting(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "processing")
    }

    fn created(&self) -> String {
        super::when(&self.created_at)
    }

    fn took(&self) -> String {
        self.completed_at.map_or(String::new(), |done| forms::age((done - self.created_at).num_seconds()))
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Failure {
    reason: String,
    model: String,
    count: i64,
}

#[derive(Template)]
#[template(path = "panel/generations.html")]
struct Page {
    chrome: Chrome,
    statuses: Vec<Choice>,
    models: Vec<Choice>,
    from: String,
    to: String,
    rows: Vec<Row>,
    failures: Vec<Failure>,
    failures_since: String,
    waiting: i64,
    older: Option<String>,
    first: Option<String>,
}

/// The filters as SQL binds: status, model, start, end.
struct Binds {
    status: Option<String>,
    model: Option<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

const WHERE: &str = "($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR model = $2)
     AND ($3::TIMESTAMPTZ IS NULL OR created_at >= $3) AND ($4::TIMESTAMPTZ IS NULL OR created_at < $4)";

/// A page of rows (one more than shown, to tell whether there is a next) older than `before`.
async fn newest(
    conn: &mut sqlx::PgConnection,
    binds: &Binds,
    before: Option<(DateTime<Utc>, uuid::Uuid)>,
) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(&format!(
        "SELECT id, user_id, model, image_size, status, cost, attempts, error, left(prompt, 80) AS prompt,
                created_at, completed_at
         FROM generations
         WHERE {WHERE} AND ($5::TIMESTAMPTZ IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC LIMIT $7"
    ))
    .bind(&binds.status)
    .bind(&binds.model)
    .bind(binds.start)
    .bind(binds.end)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(PAGE + 1)
    .fetch_all(conn)
    .await
}

/// The failures of the filters (any status) since `since`, by reason and model.
async fn failures(
    conn: &mut sqlx::PgConnection,
    binds: &Binds,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<Failure>> {
    sqlx::query_as(&format!(
        "SELECT COALESCE(error, '(no reason)') AS reason, model, COUNT(*) AS count FROM generations
         WHERE {WHERE} AND status = 'failed' AND created_at >= $5
         GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 20"
    ))
    .bind(None::<String>)
    .bind(&binds.model)
    .bind(binds.start)
    .bind(binds.end)
    .bind(since)
    .fetch_all(conn)
    .await
}

async fn page(
    State(state): State<PanelState>,
    admin: Admin,
    Query(filter): Query<Filter>,
) -> Result<Response, PanelError> {
    let (start, end) = forms::days(&filter.from, &filter.to)?;
    let binds = Binds {
        status: forms::one_of("status", &filter.status, &STATUSES.iter().map(|s| s.0).collect::<Vec<_>>())?,
        // A model no longer in the catalog can still be asked for by its key.
        model: Some(filter.model.trim().to_owned()).filter(|m| !m.is_empty() && m.len() <= 64),
        start,
        end,
    };
    let cursor = forms::parse_cursor::<uuid::Uuid>(&filter.before)?;
    let mut conn = state.pool().acquire().await?;
    let mut rows = newest(&mut conn, &binds, cursor).await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    // Failures by reason: in the chosen days, or the last seven.
    let since = binds.start.unwrap_or_else(|| Utc::now() - chrono::Duration::days(7));
    let failures = failures(&mut conn, &binds, since).await?;
    let waiting: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')")
            .fetch_one(&mut *conn)
            .await?;
    let link = |before: &str| {
        let q = forms::query(&[
            ("status", &filter.status),
            ("model", &filter.model),
            ("from", &filter.from),
            ("to", &filter.to),
            ("before", before),
        ]);
        format!("/panel/generations?{q}")
    };
    let older = rows.last().filter(|_| more).map(|last| link(&forms::cursor(&last.created_at, last.id)));
    let first = cursor.is_some().then(|| link(""));
    let keys: Vec<String> = state.config().catalog.models().iter().map(|m| m.key.to_string()).collect();
    let models: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), k.as_str())).collect();
    super::render(Page {
        chrome: Chrome::new(&admin, "generations"),
        statuses: forms::choices("any status", STATUSES, &filter.status),
        models: forms::choices("any model", &models, filter.model.trim()),
        from: filter.from.trim().to_owned(),
        to: filter.to.trim().to_owned(),
        rows,
        failures,
        failures_since: super::when(&since),
        waiting,
        older,
        first,
    })
}
