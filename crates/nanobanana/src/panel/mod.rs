//! The operator's panel (DESIGN §10, L6): `/panel` on the service's listener, server-rendered
//! HTML (askama templates in `templates/panel/`, compiled into the binary) with its CSS, script
//! and charts shipped in the binary, no CDN. Admins log in with a one-time link the bot sends
//! (`auth`); every page needs a live session of an admin still in `ADMIN_IDS`, and every
//! state-changing form carries the session's CSRF token and a fresh key, recorded with the
//! action (`db::panel::record_action`) so that a double submit does it once. Actions call the
//! same code as the CLI and the bot.

pub mod auth;
mod broadcasts;
pub mod chart;
mod forms;
mod generations;
mod overview;
mod payments;
mod promo;
mod system;
mod user_actions;
mod users;

use std::sync::Arc;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::bot::inbox::Bot;
use crate::config::PanelConfig;
use crate::domain::TelegramId;

pub use auth::Admin;

/// What every page handler reaches.
#[derive(Clone)]
pub struct PanelState {
    /// The bot's clients and pool (the same code paths as the chat).
    pub bot: Arc<Bot>,
    pub panel: Arc<PanelConfig>,
    /// Where result previews are read for thumbnails.
    pub storage: crate::storage::Storage,
}

impl PanelState {
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.bot.pool
    }

    pub fn config(&self) -> &crate::config::Config {
        &self.bot.config
    }
}

/// The panel's routes, to be nested at `/panel`; without `PANEL_SECRET` every path answers that
/// the panel is off.
pub fn router(state: Option<PanelState>) -> Router {
    let Some(state) = state else {
        return Router::new().fallback(|| async {
            PanelError::new(StatusCode::NOT_FOUND, "The operator panel is off: set PANEL_SECRET.")
                .into_response()
        });
    };
    Router::new()
        .route("/", get(overview::page))
        .route("/overview/refresh", axum::routing::post(overview::refresh))
        .route("/assets/panel.css", get(|| async { asset("text/css", include_str!("assets/panel.css")) }))
        .route(
            "/assets/panel.js",
            get(|| async { asset("text/javascript", include_str!("assets/panel.js")) }),
        )
        .merge(auth::routes())
        .merge(users::routes())
        .merge(generations::routes())
        .merge(payments::routes())
        .merge(promo::routes())
        .merge(broadcasts::routes())
        .merge(system::routes())
        .fallback(|| async { PanelError::new(StatusCode::NOT_FOUND, "No such page.").into_response() })
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
}

/// What the layout shows around every page: who is logged in, the CSRF token for its forms,
/// which section is open.
pub struct Chrome {
    pub admin: TelegramId,
    pub csrf: String,
    pub section: &'static str,
}

impl Chrome {
    pub fn new(admin: &Admin, section: &'static str) -> Self {
        Self { admin: admin.id, csrf: admin.csrf.clone(), section }
    }
}

/// The sections in the navigation: path under `/panel`, label.
pub const SECTIONS: &[(&str, &str)] = &[
    ("", "Overview"),
    ("users", "Users"),
    ("generations", "Generations"),
    ("payments", "Payments"),
    ("promo", "Promo codes"),
    ("broadcasts", "Broadcasts"),
    ("system", "System"),
];

/// A fresh key for one form: the action it submits is done once, however often it is sent.
pub fn form_key() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

/// A refusal or failure, shown as a page with its status and reason.
#[derive(Debug)]
pub struct PanelError {
    pub status: StatusCode,
    pub reason: String,
}

impl PanelError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }
}

#[derive(Template)]
#[template(path = "panel/refusal.html")]
struct Refusal<'a> {
    status: u16,
    title: &'a str,
    reason: &'a str,
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let page = Refusal {
            status: self.status.as_u16(),
            title: self.status.canonical_reason().unwrap_or("Refused"),
            reason: &self.reason,
        };
        let body = page.render().unwrap_or_else(|_| self.reason.clone());
        (self.status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
    }
}

impl From<sqlx::Error> for PanelError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(error = %error, "panel: database");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error (logged).")
    }
}

impl From<askama::Error> for PanelError {
    fn from(error: askama::Error) -> Self {
        tracing::error!(error = %error, "panel: template");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error (logged).")
    }
}

impl From<crate::bot::BotError> for PanelError {
    fn from(error: crate::bot::BotError) -> Self {
        tracing::error!(error = %error, "panel: action");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error (logged).")
    }
}

/// A page, never cached (it shows money and a CSRF token).
pub fn render(page: impl Template) -> Result<Response, PanelError> {
    let body = page.render()?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response())
}

/// After a form: back to `to` (303, so a reload does not resubmit).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// An amount in its currency's smallest unit, for people: kopecks as rubles to the kopeck
/// (`reports::figures::rubles`), Stars as `domain::format_amount` writes them.
pub fn money(currency: &str, minor: i64) -> String {
    match currency {
        "RUB" => crate::reports::figures::rubles(minor),
        _ => crate::domain::format_amount(currency, minor),
    }
}

/// A time for people, UTC.
pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_its_currency() {
        assert_eq!(money("RUB", 0), "0.00 ₽");
        assert_eq!(money("RUB", 12345), "123.45 ₽");
        assert_eq!(money("RUB", -5), "-0.05 ₽");
        assert_eq!(money("XTR", 50), "50 ⭐");
    }
}
