//! The reconciler of our held YooKassa refunds whose answer is still unknown: a lost create
//! answer is repeated with the same key while YooKassa remembers it (24 h), and after that looked
//! up by payment and amount instead, never created again (`Refunder::refund`); a known refund is
//! read again and finished. Every held refund is read once per pass, in pages ordered by
//! (`updated_at`, `id`) with a cursor: a refund YooKassa still reports pending keeps its
//! `updated_at`, so pages that always began at the oldest rows would never reach the rest.
//! What needs the operator is told to the admins once (`outbox::alerts`): a refund handed over
//! past 24 h, or one still held after `STUCK_AFTER`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;

use super::{money, RefundRequest, Refunded, Refunder, YooKassa, FOR_OPERATOR};
use crate::ledger;
use crate::outbox::alerts::{tell_admins_once, Alert};
use crate::payments::PaymentError;

/// Held refunds read per query.
pub(super) const BATCH: i64 = 100;
/// A refund still held this long after it was asked for is reported to the admins (once).
pub const STUCK_AFTER: Duration = Duration::from_secs(3600);

/// A held refund as the reconciler reads it.
#[derive(sqlx::FromRow)]
pub(super) struct Held {
    pub id: Uuid,
    pub provider_refund_id: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub user_id: i64,
    pub currency: String,
    pub amount_minor: i64,
    pub payment_id: String,
    /// The charge's row (`payments.id`) and the credits refunded.
    pub charge_id: i64,
    pub credits: i64,
    pub topup_id: Uuid,
    /// Held for longer than `STUCK_AFTER`.
    pub stuck: bool,
}

/// The page of held refunds of `provider` after `after` (by `updated_at`, `id`), all last
/// touched before `cutoff`.
pub(super) async fn held_page(
    pool: &sqlx::PgPool,
    provider: &str,
    cutoff: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Held>> {
    sqlx::query_as(
        "SELECT r.id, r.provider_refund_id, r.updated_at, p.user_id, p.currency, r.amount_minor,
                p.payment_id, p.id AS charge_id, r.credits, p.topup_id, r.created_at <= now() - make_interval(secs => $6) AS stuck
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.status = 'held' AND p.provider = $1 AND r.updated_at <= $2
           AND ($3::timestamptz IS NULL OR (r.updated_at, r.id) > ($3, $4))
         ORDER BY r.updated_at, r.id LIMIT $5",
    )
    .bind(provider)
    .bind(cutoff)
    .bind(after.map(|(at, _)| at))
    .bind(after.map_or(Uuid::nil(), |(_, id)| id))
    .bind(limit)
    .bind(STUCK_AFTER.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// `now() - age`, fixed for a pass: a refund touched during it is newer and not read twice.
pub(super) async fn cutoff(pool: &sqlx::PgPool, age: Duration) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar("SELECT now() - make_interval(secs => $1)")
        .bind(age.as_secs_f64())
        .fetch_one(pool)
        .await
}

/// Where one held refund stands after the reconciler looked at it.
pub(super) enum Standing {
    Settled,
    Held(String),
    ForOperator,
}

/// Our held refunds whose provider answer is still unknown, each read again (the reconciler);
/// how many were looked at.
pub async fn reconcile_held(yk: &YooKassa) -> Result<usize, PaymentError> {
    reconcile_held_in_pages(yk, BATCH).await
}

/// `reconcile_held` reading `page` refunds per query (tests use small pages).
pub async fn reconcile_held_in_pages(yk: &YooKassa, page: i64) -> Result<usize, PaymentError> {
    let limit = page.max(1);
    let cutoff = cutoff(&yk.pool, Duration::from_secs(60)).await?;
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = held_page(&yk.pool, "yookassa", cutoff, after, limit).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.id));
        for held in &page {
            let standing = match reconcile_one(yk, held).await {
                Ok(standing) => standing,
                Err(PaymentError::Db(e)) => return Err(PaymentError::Db(e)),
                Err(e) => {
                    tracing::warn!(refund_id = %held.id, error = %e, "reconciling a held refund failed; next pass retries");
                    Standing::Held(e.to_string())
                }
            };
            if tell_operator(&yk.pool, &yk.admins, held, &standing).await? {
                if let Some(wake) = &yk.outbox_wake {
                    wake.notify_one();
                }
            }
        }
        seen += page.len();
        if page.len() < limit as usize {
            break;
        }
    }
    Ok(seen)
}

async fn reconcile_one(yk: &YooKassa, held: &Held) -> Result<Standing, PaymentError> {
    let Some(provider_id) = &held.provider_refund_id else {
        // The create answer was lost: repeat it with the same key (or, past 24 h, look it up).
        let refunder = Refunder { pool: &yk.pool, yookassa: Some(yk), telegram: None };
        let request = RefundRequest {
            refund_id: held.id,
            topup_id: held.topup_id,
            credits: None,
            actor: "reconciler".into(),
        };
        let refunded = refunder.refund(&request).await.map_err(|e| PaymentError::Refund(e.to_string()))?;
        return Ok(standing(refunded));
    };
    let raw: Value = yk.client.get_raw("refunds", provider_id).await?;
    let status = raw.get("status").and_then(Value::as_str).unwrap_or("");
    match status {
        "succeeded" => {
            yk.check_refund(provider_id).await?;
            Ok(Standing::Settled)
        }
        "canceled" => {
            let mut conn = yk.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            ledger::refund_release(&mut tx, held.id).await?;
            tx.commit().await?;
            tracing::warn!(refund_id = %held.id, "refund canceled by YooKassa; hold released");
            Ok(Standing::Settled)
        }
        _ => Ok(Standing::Held(format!("YooKassa refund {provider_id} is {status}"))),
    }
}

pub(super) fn standing(refunded: Refunded) -> Standing {
    match refunded {
        Refunded::Held { reason, .. } if reason == FOR_OPERATOR => Standing::ForOperator,
        Refunded::Held { reason, .. } => Standing::Held(reason),
        Refunded::Refunded { .. } | Refunded::Released { .. } => Standing::Settled,
    }
}

/// Tells the admins (once per refund and kind) what of `standing` needs them; whether a
/// message was queued.
pub(super) async fn tell_operator(
    pool: &sqlx::PgPool,
    admins: &[i64],
    held: &Held,
    standing: &Standing,
) -> sqlx::Result<bool> {
    let (alert, reason) = match standing {
        Standing::ForOperator => (Alert::RefundForOperator, FOR_OPERATOR),
        Standing::Held(reason) if held.stuck => (Alert::RefundStuck, reason.as_str()),
        _ => return Ok(false),
    };
    let (refund, user) = (held.id.to_string(), held.user_id.to_string());
    let amount = money(&held.currency, held.amount_minor);
    let hours = (STUCK_AFTER.as_secs() / 3600).to_string();
    let reason: String = reason.chars().take(300).collect();
    let args = [
        ("refund", refund.as_str()),
        ("amount", amount.as_str()),
        ("user", user.as_str()),
        ("payment", held.payment_id.as_str()),
        ("hours", hours.as_str()),
        ("reason", reason.as_str()),
    ];
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let told = tell_admins_once(&mut tx, admins, alert, &refund, &args).await?;
    tx.commit().await?;
    Ok(told)
}
