//! Users: search by Telegram id, @username or name; a user's page with their balance (paid and
//! bonus), journal, generations with thumbnails and failure reasons, payments and refunds,
//! referrals, and the admins' actions on them. The actions are in `user_actions`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{money, user_actions, when, Admin, Chrome, PanelError, PanelState};
use crate::domain::TelegramId;

pub fn routes() -> Router<PanelState> {
    Router::new()
        .route("/users", get(search))
        .route("/users/{id}", get(page))
        .route("/users/{id}/adjust", post(user_actions::adjust))
        .route("/users/{id}/ban", post(user_actions::ban))
        .route("/users/{id}/refund", post(user_actions::refund))
        .route("/users/{id}/resend", post(user_actions::resend))
        .route("/thumbs/{generation}", get(thumbnail))
}

#[derive(Debug, sqlx::FromRow)]
pub struct Found {
    pub telegram_id: TelegramId,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub is_banned: bool,
    pub deleted: bool,
    pub paid: i64,
    pub bonus: i64,
}

impl Found {
    pub fn name(&self) -> String {
        match (&self.username, &self.first_name) {
            (Some(username), Some(first)) => format!("@{username} ({first})"),
            (Some(username), None) => format!("@{username}"),
            (None, Some(first)) => first.clone(),
            (None, None) => String::new(),
        }
    }

    pub fn registered(&self) -> String {
        when(&self.registered_at)
    }

    pub fn seen(&self) -> String {
        self.last_seen_at.as_ref().map_or_else(|| "never".to_owned(), when)
    }

    pub fn status(&self) -> &'static str {
        if self.deleted {
            "deleted"
        } else if self.is_banned {
            "banned"
        } else {
            "active"
        }
    }
}

const FOUND: &str =
    "SELECT u.telegram_id, u.username, u.first_name, u.registered_at, u.last_seen_at, u.is_banned,
        u.deleted_at IS NOT NULL AS deleted,
        COALESCE(b.credits_available - b.bonus_available, 0) AS paid, COALESCE(b.bonus_available, 0) AS bonus
 FROM users u LEFT JOIN balances b ON b.user_id = u.telegram_id";

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "panel/users.html")]
struct Search {
    chrome: Chrome,
    q: String,
    found: Vec<Found>,
}

/// `?q=`: a Telegram id, an @username (prefix) or part of a name; empty: the newest users.
async fn search(
    State(state): State<PanelState>,
    admin: Admin,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PanelError> {
    let q = query.q.trim().chars().take(64).collect::<String>();
    let mut conn = state.pool().acquire().await?;
    let found: Vec<Found> = if q.is_empty() {
        sqlx::query_as(&format!("{FOUND} ORDER BY u.registered_at DESC LIMIT 50"))
            .fetch_all(&mut *conn)
            .await?
    } else if let Ok(id) = q.parse::<TelegramId>() {
        sqlx::query_as(&format!("{FOUND} WHERE u.telegram_id = $1")).bind(id).fetch_all(&mut *conn).await?
    } else {
        let escaped = q.trim_start_matches('@').replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let (prefix, anywhere) = (format!("{escaped}%"), format!("%{escaped}%"));
        sqlx::query_as(&format!(
            "{FOUND} WHERE u.username ILIKE $1 OR u.first_name ILIKE $2 ORDER BY u.registered_at DESC LIMIT 50"
        ))
        .bind(prefix)
        .bind(anywhere)
        .fetch_all(&mut *conn)
        .await?
    };
    super::render(Search { chrome: Chrome::new(&admin, "users"), q, found })
}

#[derive(Debug, sqlx::FromRow)]
pub struct JournalRow {
    pub id: i64,
    pub kind: String,
    pub delta_available: i64,
    pub bonus_delta_available: i64,
    pub balance_after: i64,
    pub reserved_after: i64,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct GenerationRow {
    pub id: Uuid,
    pub prompt: String,
    pub model: String,
    pub status: String,
    pub cost: i64,
    pub failure: Option<String>,
    pub error: Option<String>,
    pub has_preview: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct PaymentRow {
    pub topup_id: Uuid,
    pub provider: String,
    pub currency: String,
    pub amount_minor: i64,
    pub credits: i64,
    pub status: String,
    pub refunded: i64,
    pub created_at: DateTime<Utc>,
}

impl PaymentRow {
    pub fn amount(&self) -> String {
        money(&self.currency, self.amount_minor)
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct RefundRow {
    pub id: Uuid,
    pub credits: i64,
    pub currency: String,
    pub amount_minor: i64,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl RefundRow {
    pub fn amount(&self) -> String {
        money(&self.currency, self.amount_minor)
    }
}

#[derive(Template)]
#[template(path = "panel/user.html")]
struct UserPage {
    chrome: Chrome,
    user: Found,
    reserved: i64,
    bonus_reserved: i64,
    journal: Vec<JournalRow>,
    generations: Vec<GenerationRow>,
    payments: Vec<PaymentRow>,
    refunds: Vec<RefundRow>,
    referrer: Option<TelegramId>,
    invited: Vec<(TelegramId, DateTime<Utc>)>,
    actions: Vec<crate::db::panel::Action>,
    flash: Option<String>,
    error: Option<String>,
    key: Uuid,
}

#[derive(Deserialize)]
pub struct Flash {
    done: Option<String>,
    error: Option<String>,
}

async fn page(
    State(state): State<PanelState>,
    admin: Admin,
    Path(id): Path<TelegramId>,
    Query(flash): Query<Flash>,
) -> Result<Response, PanelError> {
    let mut conn = state.pool().acquire().await?;
    let user: Option<Found> = sqlx::query_as(&format!("{FOUND} WHERE u.telegram_id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(user) = user else {
        return Err(PanelError::not_found(format!("No user with Telegram id {id}.")));
    };
    let balance = crate::ledger::balance(&mut conn, id).await?;
    let (reserved, bonus_reserved) = balance.map_or((0, 0), |b| (b.credits_reserved, b.bonus_reserved));
    let page = UserPage {
        chrome: Chrome::new(&admin, "users"),
        user,
        reserved,
        bonus_reserved,
        journal: journal(&mut conn, id).await?,
        generations: generations(&mut conn, id).await?,
        payments: payments(&mut conn, id).await?,
        refunds: refunds(&mut conn, id).await?,
        referrer: sqlx::query_scalar("SELECT referrer_id FROM referrals WHERE friend_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
        invited: sqlx::query_as(
            "SELECT friend_id, bound_at FROM referrals WHERE referrer_id = $1 ORDER BY bound_at DESC LIMIT 50",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?,
        actions: crate::db::panel::actions_on(&mut conn, &format!("user:{id}"), 20).await?,
        flash: flash.done.map(|done| user_actions::done_text(&done)),
        error: flash.error,
        key: super::form_key(),
    };
    super::render(page)
}

async fn journal(conn: &mut PgConnection, id: TelegramId) -> sqlx::Result<Vec<JournalRow>> {
    sqlx::query_as(
        "SELECT id, type AS kind, delta_available, bonus_delta_available, balance_after, reserved_after,
                actor, reason, created_at
         FROM transactions WHERE user_id = $1 ORDER BY id DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

async fn generations(conn: &mut PgConnection, id: TelegramId) -> sqlx::Result<Vec<GenerationRow>> {
    sqlx::query_as(
        "SELECT id, left(prompt, 120) AS prompt, model, status, cost, failure, error,
                preview_key IS NOT NULL AS has_preview, created_at
         FROM generations WHERE user_id = $1 ORDER BY created_at DESC LIMIT 30",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

async fn payments(conn: &mut PgConnection, id: TelegramId) -> sqlx::Result<Vec<PaymentRow>> {
    sqlx::query_as(
        "SELECT p.topup_id, p.provider, p.currency, p.amount_minor, p.credits, p.status,
                COALESCE((SELECT SUM(r.credits) FROM refunds r WHERE r.payment_id = p.id AND r.status <> 'failed'), 0)::BIGINT
                    AS refunded,
                p.created_at
         FROM payments p WHERE p.user_id = $1 ORDER BY p.created_at DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

async fn refunds(conn: &mut PgConnection, id: TelegramId) -> sqlx::Result<Vec<RefundRow>> {
    sqlx::query_as(
        "SELECT r.id, r.credits, p.currency, r.amount_minor, r.status, r.reason, r.created_at
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.user_id = $1 ORDER BY r.created_at DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// A result's stored preview (JPEG), for the panel's thumbnails.
async fn thumbnail(
    State(state): State<PanelState>,
    _admin: Admin,
    Path(generation): Path<Uuid>,
) -> Result<Response, PanelError> {
    let key: Option<Option<String>> = sqlx::query_scalar("SELECT preview_key FROM generations WHERE id = $1")
        .bind(generation)
        .fetch_optional(state.pool())
        .await?;
    let Some(Some(key)) = key else {
        return Err(PanelError::not_found("No preview for this generation."));
    };
    let bytes = state.storage.get(&key).await.map_err(|e| {
        tracing::warn!(error = %e, %generation, "panel: preview");
        PanelError::not_found("The preview is not in storage.")
    })?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")], bytes)
        .into_response())
}
