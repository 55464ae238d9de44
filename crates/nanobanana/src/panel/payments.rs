//! Payments: provider charges newest first, filtered by provider, status and days, a page at
//! a time; charges still pending at the provider highlighted; refunds with the held ones
//! (credits taken, the provider's answer not in yet) first and highlighted. Read-only: a
//! report, so it reads `payments` and `refunds` directly (DESIGN §2).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::{self, Choice};
use super::{Admin, Chrome, PanelError, PanelState};

const PAGE: i64 = 50;
const PROVIDERS: &[(&str, &str)] = &[("yookassa", "YooKassa (₽)"), ("stars", "Stars (⭐)")];
const STATUSES: &[(&str, &str)] = &[
    ("pending", "pending"),
    ("waiting_for_capture", "waiting for capture"),
    ("succeeded", "succeeded"),
    ("canceled", "canceled"),
];

pub fn routes() -> Router<PanelState> {
    Router::new().route("/payments", get(page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filter {
    provider: String,
    status: String,
    from: String,
    to: String,
    before: String,
}

#[derive(Debug, sqlx::FromRow)]
struct Charge {
    id: i64,
    provider: String,
    payment_id: String,
    user_id: i64,
    currency: String,
    amount_minor: i64,
    credits: i64,
    status: String,
    created_at: DateTime<Utc>,
}

impl Charge {
    fn pending(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "waiting_for_capture")
    }
    fn amount(&self) -> String {
        super::money(&self.currency, self.amount_minor)
    }
    fn created(&self) -> String {
        super::when(&self.created_at)
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Refund {
    id: uuid::Uuid,
    charge: i64,
    user_id: i64,
    credits: i64,
    currency: String,
    amount_minor: i64,
    status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl Refund {
    fn held(&self) -> bool {
        self.status == "held"
    }
    fn amount(&self) -> String {
        super::money(&self.currency, self.amount_minor)
    }
    fn created(&self) -> String {
        super::when(&self.created_at)
    }
}

#[derive(Template)]
#[template(path = "panel/payments.html")]
struct Page {
    chrome: Chrome,
    providers: Vec<Choice>,
    statuses: Vec<Choice>,
    from: String,
    to: String,
    charges: Vec<Charge>,
    refunds: Vec<Refund>,
    pending: i64,
    held: i64,
    older: Option<String>,
    first: Option<String>,
}

/// Provider, status, start and end (each optional).
type Filters<'a> = (Option<&'a str>, Option<&'a str>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A page of charges (one more than shown) older than `before`.
async fn newest(
    conn: &mut sqlx::PgConnection,
    (provider, status, start, end): Filters<'_>,
    before: Option<(DateTime<Utc>, i64)>,
) -> sqlx::Result<Vec<Charge>> {
    sqlx::query_as(
        "SELECT id, provider, payment_id, user_id, currency, amount_minor, credits, status, created_at
         FROM payments
         WHERE ($1::TEXT IS NULL OR provider = $1) AND ($2::TEXT IS NULL OR status = $2)
           AND ($3::TIMESTAMPTZ IS NULL OR created_at >= $3) AND ($4::TIMESTAMPTZ IS NULL OR created_at < $4)
           AND ($5::TIMESTAMPTZ IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC LIMIT $7",
    )
    .bind(provider)
    .bind(status)
    .bind(start)
    .bind(end)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(PAGE + 1)
    .fetch_all(conn)
    .await
}

/// The refunds of the provider and days: held ones first, then the newest.
async fn refunds(
    conn: &mut sqlx::PgConnection,
    (provider, _, start, end): Filters<'_>,
) -> sqlx::Result<Vec<Refund>> {
    sqlx::query_as(
        "SELECT r.id, r.payment_id AS charge, r.user_id, r.credits, p.currency, r.amount_minor, r.status,
                r.reason, r.created_at
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE ($1::TEXT IS NULL OR p.provider = $1)
           AND ($2::TIMESTAMPTZ IS NULL OR r.created_at >= $2) AND ($3::TIMESTAMPTZ IS NULL OR r.created_at < $3)
         ORDER BY (r.status = 'held') DESC, r.created_at DESC LIMIT 50",
    )
    .bind(provider)
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

async fn page(
    State(state): State<PanelState>,
    admin: Admin,
    Query(filter): Query<Filter>,
) -> Result<Response, PanelError> {
    let names = |list: &[(&'static str, &str)]| list.iter().map(|p| p.0).collect::<Vec<_>>();
    let provider = forms::one_of("provider", &filter.provider, &names(PROVIDERS))?;
    let status = forms::one_of("status", &filter.status, &names(STATUSES))?;
    let (start, end) = forms::days(&filter.from, &filter.to)?;
    let cursor = forms::parse_cursor::<i64>(&filter.before)?;
    let mut conn = state.pool().acquire().await?;
    let filters = (provider.as_deref(), status.as_deref(), start, end);
    let mut charges = newest(&mut conn, filters, cursor).await?;
    let more = charges.len() > PAGE as usize;
    charges.truncate(PAGE as usize);
    let refunds = refunds(&mut conn, filters).await?;
    let (pending, held): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM payments WHERE status IN ('pending', 'waiting_for_capture')),
                (SELECT COUNT(*) FROM refunds WHERE status = 'held')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let link = |before: &str| {
        let q = forms::query(&[
            ("provider", &filter.provider),
            ("status", &filter.status),
            ("from", &filter.from),
            ("to", &filter.to),
            ("before", before),
        ]);
        format!("/panel/payments?{q}")
    };
    let older = charges.last().filter(|_| more).map(|last| link(&forms::cursor(&last.created_at, last.id)));
    let first = cursor.is_some().then(|| link(""));
    super::render(Page {
        chrome: Chrome::new(&admin, "payments"),
        providers: forms::choices("any provider", PROVIDERS, &filter.provider),
        statuses: forms::choices("any status", STATUSES, &filter.status),
        from: filter.from.trim().to_owned(),
        to: filter.to.trim().to_owned(),
        charges,
        refunds,
        pending,
        held,
        older,
        first,
    })
}
