//! Promo codes: the list, a form that creates one (code, credits, use limit, days valid) and a
//! button that disables one — through `db::growth::create_promo` and `disable_promo`, the calls
//! behind the bot's `/promo` and `nanobanana admin promo`. Each action is recorded with its
//! form's key in its own transaction, so a double submit does it once.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::forms;
use super::{Admin, Chrome, PanelError, PanelState};
use crate::db::growth::{self, NewPromo, PromoCode};
use crate::domain::growth::PromoName;
use crate::domain::Credits;

const NOTES: &[(&str, &str, bool)] = &[
    ("created", "Promo code created.", false),
    ("exists", "A promo code with that name exists already: nothing was created.", true),
    ("disabled", "Promo code disabled: later redemptions are refused.", false),
    ("unknown", "There is no such promo code.", true),
    ("again", "That form was already submitted: done once, not twice.", false),
];

pub fn routes() -> Router<PanelState> {
    Router::new().route("/promo", get(page).post(create)).route("/promo/disable", post(disable))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Shown {
    note: Option<String>,
}

struct Row {
    code: PromoCode,
    key: uuid::Uuid,
}

impl Row {
    fn expires(&self) -> String {
        self.code.expires_at.map_or("never".to_owned(), |t| super::when(&t))
    }
    fn active(&self) -> bool {
        !self.code.disabled
            && self.code.used < self.code.max_uses
            && self.code.expires_at.is_none_or(|t| t > chrono::Utc::now())
    }
}

#[derive(Template)]
#[template(path = "panel/promo.html")]
struct Page {
    chrome: Chrome,
    note: Option<(String, bool)>,
    key: uuid::Uuid,
    codes: Vec<Row>,
}

async fn page(
    State(state): State<PanelState>,
    admin: Admin,
    Query(shown): Query<Shown>,
) -> Result<Response, PanelError> {
    let mut conn = state.pool().acquire().await?;
    let codes = growth::list_promos(&mut conn).await?;
    super::render(Page {
        chrome: Chrome::new(&admin, "promo"),
        note: forms::note(shown.note.as_deref(), NOTES),
        key: super::form_key(),
        codes: codes.into_iter().map(|code| Row { code, key: super::form_key() }).collect(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NewForm {
    csrf: String,
    key: String,
    code: String,
    credits: String,
    uses: String,
    days: String,
}

/// The form's fields, parsed as the CLI parses its arguments.
fn parse_new(form: &NewForm) -> Result<(PromoName, Credits, u32, Option<u32>), PanelError> {
    let name = PromoName::parse(&form.code)
        .ok_or_else(|| PanelError::bad_request("A promo code is 3–32 of a-z 0-9 _ -."))?;
    let credits =
        Credits::parse(form.credits.trim()).map_err(|e| PanelError::bad_request(format!("Credits: {e}.")))?;
    let uses = form
        .uses
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|u| (1..=1_000_000).contains(u))
        .ok_or_else(|| PanelError::bad_request("Uses: a whole number from 1 to 1000000."))?;
    let days = match form.days.trim() {
        "" => None,
        text => Some(
            text.parse::<u32>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| PanelError::bad_request("Days: empty (no expiry) or 1 to 3650."))?,
        ),
    };
    Ok((name, credits, uses, days))
}

async fn create(
    State(state): State<PanelState>,
    admin: Admin,
    Form(form): Form<NewForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let (name, credits, uses, days) = parse_new(&form)?;
    let actor = format!("panel:{}", admin.id);
    let detail = format!(
        "{} credits, {uses} uses, {} days",
        credits.get(),
        days.map_or("∞".into(), |d| d.to_string())
    );
    let Some(mut tx) =
        forms::begin(&state, key, &admin, "promo_create", name.as_str(), Some(&detail)).await?
    else {
        return Ok(super::see_other("/panel/promo?note=again"));
    };
    let new = NewPromo {
        code: name.as_str(),
        credits: credits.get(),
        max_uses: i64::from(uses),
        days,
        created_by: &actor,
    };
    if growth::create_promo(&mut tx, &new).await?.is_none() {
        tx.rollback().await?;
        return Ok(super::see_other("/panel/promo?note=exists"));
    }
    tx.commit().await?;
    tracing::info!(
        admin = admin.id,
        code = name.as_str(),
        credits = credits.get(),
        uses,
        "panel: promo code created"
    );
    Ok(super::see_other("/panel/promo?note=created"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DisableForm {
    csrf: String,
    key: String,
    code: String,
}

async fn disable(
    State(state): State<PanelState>,
    admin: Admin,
    Form(form): Form<DisableForm>,
) -> Result<Response, PanelError> {
    let key = forms::checked(&admin, &form.csrf, &form.key)?;
    let name = PromoName::parse(&form.code).ok_or_else(|| PanelError::bad_request("No such promo code."))?;
    let Some(mut tx) = forms::begin(&state, key, &admin, "promo_disable", name.as_str(), None).await? else {
        return Ok(super::see_other("/panel/promo?note=again"));
    };
    if !growth::disable_promo(&mut tx, name.as_str()).await? {
        tx.rollback().await?;
        return Ok(super::see_other("/panel/promo?note=unknown"));
    }
    tx.commit().await?;
    tracing::info!(admin = admin.id, code = name.as_str(), "panel: promo code disabled");
    Ok(super::see_other("/panel/promo?note=disabled"))
}
