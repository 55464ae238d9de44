//! The panel's home: the overview of today, 7 or 30 days (`?range=today|7d|30d`) — users,
//! generations by model and status, money in ₽ and ⭐, provider cost and margin, conversion,
//! processing time, failures by reason — and its charts per day, drawn here as SVG. The
//! figures come from `reports` (a daily rollup plus today live).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::chart::{chart, Kind, Series};
use super::{Admin, Chrome, PanelError, PanelState};
use crate::reports::figures::{percent, rubles, seconds, thousands};
use crate::reports::{self, Overview, Range};

#[derive(Debug, Deserialize)]
pub struct Params {
    range: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RefreshForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    range: String,
}

/// "Recompute": stores every closed day the overview shows again, from the tables (what the
/// background refresher does for the last two days every few minutes). Idempotent.
pub async fn refresh(
    admin: Admin,
    State(state): State<PanelState>,
    Form(form): Form<RefreshForm>,
) -> Result<Response, PanelError> {
    admin.check_csrf(&form.csrf)?;
    let range = Range::parse(&form.range).unwrap_or(Range::Week);
    let days =
        reports::days::rebuild(state.pool(), &state.config().operator.timezone, reports::KEPT_DAYS).await?;
    tracing::info!(admin = admin.id, days, "overview recomputed");
    Ok(super::see_other(&format!("/panel?range={}", range.encode())))
}

/// One figure of the grid: its element id, label and text.
pub struct Figure {
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
    /// A second line (e.g. the ⭐ count beside their ruble value).
    pub note: String,
}

pub struct ModelRow {
    pub name: String,
    pub queued: String,
    pub processing: String,
    pub succeeded: String,
    pub failed: String,
    pub total: String,
}

pub struct FailureRow {
    pub reason: String,
    pub count: String,
    pub share: String,
}

#[derive(Template)]
#[template(path = "panel/overview.html")]
struct Page {
    chrome: Chrome,
    range: &'static str,
    ranges: Vec<(&'static str, &'static str, bool)>,
    period: String,
    figures: Vec<Figure>,
    models: Vec<ModelRow>,
    failures: Vec<FailureRow>,
    /// (element id, heading, SVG).
    charts: Vec<(&'static str, &'static str, String)>,
}

pub async fn page(
    admin: Admin,
    State(state): State<PanelState>,
    Query(params): Query<Params>,
) -> Result<Response, PanelError> {
    let range = match params.range.as_deref() {
        None | Some("") => Range::Week,
        Some(text) => Range::parse(text).ok_or_else(|| PanelError::bad_request("Unknown range."))?,
    };
    let config = state.config();
    let overview =
        reports::overview(state.pool(), &config.operator.timezone, reports::rates(config), range).await?;
    // A model's name (all sizes together); a key the catalog no longer has, as stored.
    let name =
        |key: &str| config.catalog.find(key).map_or_else(|| key.to_owned(), |m| m.name(true).to_owned());
    super::render(Page {
        chrome: Chrome::new(&admin, ""),
        range: range.encode(),
        ranges: Range::ALL.iter().map(|r| (r.encode(), range_label(*r), *r == range)).collect(),
        period: period(&overview, &config.operator.timezone),
        figures: figures(&overview),
        models: overview
            .summary
            .by_model
            .iter()
            .map(|m| ModelRow {
                name: name(&m.model),
                queued: count(m.queued),
                processing: count(m.processing),
                succeeded: count(m.succeeded),
                failed: count(m.failed),
                total: count(m.total()),
            })
            .collect(),
        failures: overview
            .summary
            .failures
            .iter()
            .map(|(reason, n)| FailureRow {
                reason: failure_label(reason),
                count: count(*n),
                share: percent(*n, overview.summary.finished()),
            })
            .collect(),
        charts: charts(&overview, &name),
    })
}

fn range_label(range: Range) -> &'static str {
    match range {
        Range::Today => "Today",
        Range::Week => "7 days",
        Range::Month => "30 days",
    }
}

fn count(n: i64) -> String {
    thousands(n.max(0) as u64)
}

fn period(o: &Overview, tz: &str) -> String {
    if o.from == o.today {
        format!("{} ({tz})", o.today)
    } else {
        format!("{} – {} ({tz})", o.from, o.today)
    }
}

fn figures(o: &Overview) -> Vec<Figure> {
    let s = &o.summary;
    let m = &s.money;
    let figure = |id, label, value: String, note: String| Figure { id, label, value, note };
    vec![
        figure("active-users", "Active users", count(o.active_users), String::new()),
        figure("new-users", "New users", count(s.new_users), String::new()),
        figure(
            "conversion",
            "Conversion to first payment",
            percent(o.converted, s.new_users),
            format!("{} of {} new users paid", count(o.converted), count(s.new_users)),
        ),
        figure(
            "generations",
            "Generations",
            count(s.generations()),
            format!("{} succeeded", count(s.succeeded())),
        ),
        figure("revenue", "Revenue", rubles(m.revenue_kopecks), "₽ and ⭐ at the configured rate".to_owned()),
        figure("revenue-rub", "Revenue in ₽", rubles(m.rub_kopecks), String::new()),
        figure(
            "stars",
            "Revenue in ⭐",
            format!("{} ⭐", count(m.stars)),
            format!("≈ {}", rubles(m.stars_kopecks)),
        ),
        figure("refunds", "Refunds", rubles(m.refunds_kopecks), String::new()),
        figure("cost", "Provider cost", rubles(m.cost_kopecks), String::new()),
        figure("margin", "Margin", rubles(m.margin_kopecks), "revenue − refunds − cost".to_owned()),
        figure("p50", "Processing time p50", seconds(s.p50_ms), String::new()),
        figure("p95", "Processing time p95", seconds(s.p95_ms), String::new()),
        figure(
            "failure-rate",
            "Failure rate",
            percent(s.failed(), s.finished()),
            format!("{} of {} finished", count(s.failed()), count(s.finished())),
        ),
    ]
}

/// A failure's text key as the operator reads it.
fn failure_label(key: &str) -> String {
    let known = match key {
        "failed_blocked" => "blocked by the safety filter",
        "failed_refused" => "refused by the model",
        "failed_no_image" => "no image in the answer",
        "failed_invalid" => "invalid request",
        "failed_retries" => "retries exhausted",
        "failed_deadline" => "deadline passed",
        "failed_model_unavailable" => "model unavailable",
        "failed_not_a_picture" => "not a picture",
        "failed_cancelled" => "cancelled by the user",
        _ => "",
    };
    if known.is_empty() {
        key.to_owned()
    } else {
        format!("{known} ({key})")
    }
}

fn charts(o: &Overview, name: &dyn Fn(&str) -> String) -> Vec<(&'static str, &'static str, String)> {
    let labels: Vec<String> = o.days.iter().map(|d| d.day.format("%d.%m").to_string()).collect();
    let money: Vec<reports::Money> = o.days.iter().map(|d| reports::Money::of([d], o.rates)).collect();
    let revenue =
        Series { name: "Revenue".into(), values: money.iter().map(|m| m.revenue_kopecks).collect() };
    let cost =
        Series { name: "Provider cost".into(), values: money.iter().map(|m| m.cost_kopecks).collect() };
    let by_model: Vec<Series> = o
        .summary
        .by_model
        .iter()
        .map(|m| Series {
            name: name(&m.model),
            values: o
                .days
                .iter()
                .map(|d| d.generations.iter().filter(|g| g.model == m.model).map(|g| g.generations).sum())
                .collect(),
        })
        .collect();
    let new = Series { name: "New users".into(), values: o.days.iter().map(|d| d.new_users).collect() };
    let paying = Series { name: "Paying users".into(), values: o.days.iter().map(|d| d.payers).collect() };
    let whole_rubles = |k: i64| format!("{} ₽", thousands((k / 100).max(0) as u64));
    let (money_title, models_title, users_title) =
        ("Revenue and provider cost per day", "Generations per day by model", "New and paying users per day");
    vec![
        (
            "chart-money",
            money_title,
            chart(money_title, Kind::Lines, &labels, &[revenue, cost], whole_rubles),
        ),
        ("chart-models", models_title, chart(models_title, Kind::StackedBars, &labels, &by_model, count)),
        ("chart-users", users_title, chart(users_title, Kind::Lines, &labels, &[new, paying], count)),
    ]
}
