//! Login without passwords: `/panel` in the bot sends an admin a signed link valid 5 minutes
//! and once (`db::panel`). Opening it shows a button (a link preview fetching the URL uses
//! nothing); pressing it uses the link and sets the session cookie: HttpOnly, SameSite=Strict,
//! Secure unless the panel is plain HTTP on loopback, with an expiry. Every page then needs a
//! live session of an admin still in `ADMIN_IDS` (`Admin`); a session of a removed admin ends
//! at its next request. Logout ends the session server-side.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{PanelError, PanelState};
use crate::db::panel::{self as store, LinkError, UseError};
use crate::domain::TelegramId;

/// The session cookie's name.
pub const COOKIE: &str = "nb_panel";

pub fn routes() -> Router<PanelState> {
    Router::new().route("/login", get(login_page).post(login)).route("/logout", post(logout))
}

/// A logged-in admin, for every page but the login's.
#[derive(Debug, Clone)]
pub struct Admin {
    pub id: TelegramId,
    pub csrf: String,
}

impl Admin {
    /// Refuses a state-changing request whose form lacks this session's CSRF token.
    pub fn check_csrf(&self, form_csrf: &str) -> Result<(), PanelError> {
        if crate::http::constant_time_eq(form_csrf.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PanelError::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from the panel: reload the page and try again.",
            ))
        }
    }
}

impl FromRequestParts<PanelState> for Admin {
    type Rejection = PanelError;

    async fn from_request_parts(parts: &mut Parts, state: &PanelState) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers) else {
            return Err(refused("Not logged in: send /panel to the bot for a login link."));
        };
        let mut conn = state.pool().acquire().await?;
        let Some(session) = store::session(&mut conn, &token).await? else {
            return Err(refused("This session is not valid (expired, logged out or forged): send /panel to the bot for a new login link."));
        };
        if !state.config().operator.admin_ids.contains(&session.admin_id) {
            store::end_session(&mut conn, &token).await?;
            return Err(PanelError::new(StatusCode::FORBIDDEN, "You are no longer an admin of this bot."));
        }
        Ok(Admin { id: session.admin_id, csrf: session.csrf })
    }
}

fn refused(reason: &str) -> PanelError {
    PanelError::new(StatusCode::UNAUTHORIZED, reason)
}

/// The session token from the `Cookie` header, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "panel/login.html")]
struct LoginPage<'a> {
    token: &'a str,
}

/// The link's landing page: checks the link without using it and offers the button.
async fn login_page(
    State(state): State<PanelState>,
    Query(form): Query<TokenForm>,
) -> Result<Response, PanelError> {
    check_link(&state, &form.token)?;
    super::render(LoginPage { token: &form.token })
}

/// A link's claims once its signature, expiry and admin are right.
fn check_link(state: &PanelState, token: &str) -> Result<store::Link, PanelError> {
    let link = store::verify_link(&state.panel.secret, token, chrono::Utc::now()).map_err(link_refused)?;
    if !state.config().operator.admin_ids.contains(&link.admin) {
        return Err(PanelError::new(StatusCode::FORBIDDEN, "This link is not for an admin of this bot."));
    }
    Ok(link)
}

fn link_refused(error: LinkError) -> PanelError {
    let status = match error {
        LinkError::Malformed => StatusCode::BAD_REQUEST,
        LinkError::BadSignature => StatusCode::FORBIDDEN,
        LinkError::Expired | LinkError::Used => StatusCode::GONE,
    };
    PanelError::new(status, error.to_string())
}

/// Uses the link and opens the session.
async fn login(State(state): State<PanelState>, Form(form): Form<TokenForm>) -> Result<Response, PanelError> {
    let link = check_link(&state, &form.token)?;
    let mut conn = state.pool().acquire().await?;
    let session = match store::use_link(&mut conn, &link, state.panel.session_hours).await {
        Ok(session) => session,
        Err(UseError::Link(e)) => return Err(link_refused(e)),
        Err(UseError::Db(e)) => return Err(e.into()),
    };
    tracing::info!(admin = link.admin, "panel: logged in");
    let max_age = (session.expires_at - chrono::Utc::now()).num_seconds().max(0);
    let secure = if state.panel.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; Path=/panel; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        session.token
    );
    let mut response = super::see_other("/panel");
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<PanelState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PanelError> {
    admin.check_csrf(&form.csrf)?;
    if let Some(token) = cookie(&headers) {
        let mut conn = state.pool().acquire().await?;
        store::end_session(&mut conn, &token).await?;
    }
    tracing::info!(admin = admin.id, "panel: logged out");
    let mut response =
        PanelError::new(StatusCode::OK, "You are logged out. Send /panel to the bot to log in again.")
            .into_response();
    let gone = format!("{COOKIE}=; Path=/panel; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = gone.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
