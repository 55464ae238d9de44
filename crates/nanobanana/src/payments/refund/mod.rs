//! Refunds in two phases (DESIGN §4 "Refunds"): hold the credits (only unspent ones; part of a
//! charge is allowed), call the provider with the refund id as idempotence key, then commit or
//! release the hold. An outcome the provider left unknown keeps the hold: the same refund id
//! repeats the call later, and a `refund.succeeded` or a reconciler finishes it (`reconcile`
//! for YooKassa, `stars` against Telegram's `getStarTransactions`). A refund
//! made in YooKassa's dashboard takes back what is available and leaves the rest as debt.
//! Never calls a provider inside a database transaction.

use serde::Serialize;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

mod external;
mod reconcile;
mod stars;

pub use external::RefundSettled;
pub use reconcile::{reconcile_held, reconcile_held_in_pages, STUCK_AFTER};
pub use stars::reconcile_stars;

use super::{record_event, YooKassa};
use crate::domain::refund::proportion;
use crate::domain::{Credits, Kopecks};
use crate::ledger::{self, LedgerError, RefundHold};
use crate::outbox;
use crate::telegram::client::{ApiError, BotApi};
use crate::texts::{render, Lang};
use crate::yookassa::YkError;

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no topup {0}")]
    UnknownTopup(Uuid),
    #[error("topup {0} has no succeeded charge with credits left to refund")]
    NothingToRefund(Uuid),
    #[error("{needed} credits to refund but only {available} unspent paid credits on the balance (bonus credits are never refunded)")]
    Spent { available: i64, needed: i64 },
    #[error("{requested} credits exceed the {refundable} still refundable from this charge")]
    TooMany { requested: i64, refundable: i64 },
    #[error("Telegram Stars refunds return a whole charge ({credits} credits), never a part")]
    PartialStars { credits: i64 },
    #[error("{0} is not configured here")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Ledger(LedgerError),
}

impl From<LedgerError> for RefundError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Insufficient { available, needed } => RefundError::Spent { available, needed },
            LedgerError::ExceedsCharge { requested, refundable, .. } => {
                RefundError::TooMany { requested, refundable }
            }
            LedgerError::Db(e) => RefundError::Db(e),
            other => RefundError::Ledger(other),
        }
    }
}

/// How a refund ended (so far).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Refunded {
    /// Money returned; the credits are gone for good.
    Refunded { refund_id: Uuid, credits: i64, amount_minor: i64, currency: String },
    /// The provider refused; the held credits are back on the balance.
    Released { refund_id: Uuid, credits: i64, reason: String },
    /// The provider's answer is not known yet; the credits stay held.
    Held { refund_id: Uuid, credits: i64, reason: String },
}

/// What a refund needs: the database and whichever providers are configured.
pub struct Refunder<'a> {
    pub pool: &'a PgPool,
    pub yookassa: Option<&'a YooKassa>,
    pub telegram: Option<&'a BotApi>,
}

/// The operator's request.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// Chosen before anything happens and reused on a repeat: the provider's idempotence key.
    pub refund_id: Uuid,
    pub topup_id: Uuid,
    /// All the unspent credits of the charge when `None`.
    pub credits: Option<Credits>,
    pub actor: String,
}

#[derive(sqlx::FromRow, Debug)]
pub(super) struct ChargeRow {
    pub(super) id: i64,
    pub(super) provider: String,
    pub(super) payment_id: String,
    pub(super) user_id: i64,
    pub(super) currency: String,
    pub(super) amount_minor: i64,
    pub(super) credits: i64,
    pub(super) refunded: i64,
}

pub(super) const CHARGES: &str =
    "SELECT p.id, p.provider, p.payment_id, p.user_id, p.currency, p.amount_minor, p.credits,
        COALESCE(SUM(r.credits) FILTER (WHERE r.status <> 'failed'), 0)::BIGINT AS refunded
 FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id
 WHERE p.status = 'succeeded' AND ";

impl Refunder<'_> {
    /// Runs (or resumes, for the same `refund_id`) the refund.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refunded, RefundError> {
        let existing: Option<(i64, i64, i64, String)> =
            sqlx::query_as("SELECT payment_id, credits, amount_minor, status FROM refunds WHERE id = $1")
                .bind(request.refund_id)
                .fetch_optional(self.pool)
                .await?;
        let mut key_forgotten = false;
        let (charge, credits, amount_minor) = match existing {
            Some((payment_id, credits, amount_minor, status)) => {
                let charge: ChargeRow = sqlx::query_as(&format!("{CHARGES} p.id = $1 GROUP BY p.id"))
                    .bind(payment_id)
                    .fetch_one(self.pool)
                    .await?;
                if status != "held" {
                    return Ok(finished(request.refund_id, &charge, credits, amount_minor, &status));
                }
                key_forgotten = held_past_key_memory(self.pool, request.refund_id).await?;
                (charge, credits, amount_minor)
            }
            None => self.hold(request).await?,
        };
        let outcome = match charge.provider.as_str() {
            // YooKassa forgot our key: a create could pay out a second time.
            "yookassa" if key_forgotten => {
                self.look_up_yookassa(request.refund_id, &charge, amount_minor).await?
            }
            "yookassa" => self.call_yookassa(request.refund_id, &charge, amount_minor).await?,
            _ => self.call_stars(&charge).await?,
        };
        self.finish(request.refund_id, &charge, credits, amount_minor, outcome).await
    }

    /// Phase one: chooses the charge, holds the credits, commits.
    async fn hold(&self, request: &RefundRequest) -> Result<(ChargeRow, i64, i64), RefundError> {
        let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM topups WHERE id = $1)")
            .bind(request.topup_id)
            .fetch_one(self.pool)
            .await?;
        if !known {
            return Err(RefundError::UnknownTopup(request.topup_id));
        }
        let charges: Vec<ChargeRow> =
            sqlx::query_as(&format!("{CHARGES} p.topup_id = $1 GROUP BY p.id ORDER BY p.id"))
                .bind(request.topup_id)
                .fetch_all(self.pool)
                .await?;
        let charge = charges
            .into_iter()
            .find(|c| c.credits > c.refunded)
            .ok_or(RefundError::NothingToRefund(request.topup_id))?;
        let refundable = charge.credits - charge.refunded;
        let credits = request.credits.map_or(refundable, Credits::get);
        if credits > refundable {
            return Err(RefundError::TooMany { requested: credits, refundable });
        }
        if charge.provider == "stars" && credits != charge.credits {
            return Err(RefundError::PartialStars { credits: charge.credits });
        }
        let amount_minor = proportion(charge.amount_minor, credits, charge.credits);
        let credits_typed =
            Credits::new(credits).map_err(|_| RefundError::NothingToRefund(request.topup_id))?;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let hold = RefundHold {
            refund_id: request.refund_id,
            payment_id: charge.id,
            credits: credits_typed,
            amount_minor,
            reason: Some(&request.actor),
        };
        ledger::refund_hold(&mut tx, &hold).await?;
        tx.commit().await?;
        tracing::info!(refund_id = %request.refund_id, topup_id = %request.topup_id, charge = charge.id,
            user_id = charge.user_id, credits, amount_minor, actor = %request.actor, "refund: credits held");
        Ok((charge, credits, amount_minor))
    }

    async fn call_yookassa(
        &self,
        refund_id: Uuid,
        charge: &ChargeRow,
        amount_minor: i64,
    ) -> Result<Call, RefundError> {
        let yk = self.yookassa.ok_or(RefundError::NotConfigured("YooKassa"))?;
        let amount = Kopecks::from_kopecks(amount_minor).map_err(|_| RefundError::NotConfigured("amount"))?;
        match yk.client.create_refund(refund_id, &charge.payment_id, amount).await {
            Ok((refund, raw)) => {
                record_event(self.pool, "api", Some("refund.created"), Some(&refund.id), None, &raw).await?;
                Ok(match refund.status.as_str() {
                    "succeeded" => Call::Done(Some(refund.id)),
                    "canceled" => Call::Refused("YooKassa canceled the refund".into()),
                    _ => Call::Unknown(
                        format!("YooKassa refund {} is {}", refund.id, refund.status),
                        Some(refund.id),
                    ),
                })
            }
            Err(YkError::Rejected { status, code, description }) => {
                Ok(Call::Refused(format!("YooKassa {status} {code}: {description}")))
            }
            Err(e) => Ok(Call::Unknown(e.to_string(), None)),
        }
    }

    /// A hold older than YooKassa's memory of idempotence keys is never created again: the
    /// payment's refunds are listed and one of this amount that none of our refunds claims yet
    /// is taken as ours. None: it is left held for the operator (logged as an error).
    async fn look_up_yookassa(
        &self,
        refund_id: Uuid,
        charge: &ChargeRow,
        amount_minor: i64,
    ) -> Result<Call, RefundError> {
        let yk = self.yookassa.ok_or(RefundError::NotConfigured("YooKassa"))?;
        let refunds = match yk.client.refunds_of(&charge.payment_id).await {
            Ok(refunds) => refunds,
            Err(e) => return Ok(Call::Unknown(format!("listing the payment's refunds: {e}"), None)),
        };
        let claimed: Vec<String> = sqlx::query_scalar(
            "SELECT provider_refund_id FROM refunds WHERE payment_id = $1 AND provider_refund_id IS NOT NULL",
        )
        .bind(charge.id)
        .fetch_all(self.pool)
        .await?;
        let found = refunds.into_iter().find(|r| {
            r.amount.minor().ok() == Some(amount_minor) && r.status != "canceled" && !claimed.contains(&r.id)
        });
        let Some(refund) = found else {
            tracing::error!(%refund_id, payment_id = %charge.payment_id, amount_minor,
                "refund held past YooKassa's 24 h key memory and not found at YooKassa: the operator must decide");
            return Ok(Call::Unknown(FOR_OPERATOR.into(), None));
        };
        tracing::info!(%refund_id, provider_refund_id = %refund.id, status = %refund.status, "old held refund found at YooKassa");
        Ok(match refund.status.as_str() {
            "succeeded" => Call::Done(Some(refund.id)),
            _ => {
                Call::Unknown(format!("YooKassa refund {} is {}", refund.id, refund.status), Some(refund.id))
            }
        })
    }

    async fn call_stars(&self, charge: &ChargeRow) -> Result<Call, RefundError> {
        let api = self.telegram.ok_or(RefundError::NotConfigured("Telegram"))?;
        let params = json!({"user_id": charge.user_id, "telegram_payment_charge_id": charge.payment_id});
        Ok(match api.call("refundStarPayment", &params).await {
            Ok(_) => Call::Done(None),
            // A repeat after a crash: the first call did it.
            Err(ApiError::Refused { description, .. }) if description.contains("CHARGE_ALREADY_REFUNDED") => {
                Call::Done(None)
            }
            Err(ApiError::Refused { code, description, .. }) if (400..500).contains(&code) && code != 429 => {
                Call::Refused(format!("Telegram {code}: {description}"))
            }
            Err(e) => Call::Unknown(e.to_string(), None),
        })
    }

    /// Phase two: commit or release in one transaction with the user's message.
    async fn finish(
        &self,
        refund_id: Uuid,
        charge: &ChargeRow,
        credits: i64,
        amount_minor: i64,
        call: Call,
    ) -> Result<Refunded, RefundError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let outcome = match call {
            Call::Done(provider_id) => {
                if ledger::refund_commit(&mut tx, refund_id, provider_id.as_deref()).await? {
                    tell_refunded(&mut tx, charge.user_id, &charge.currency, credits, amount_minor).await?;
                }
                Refunded::Refunded { refund_id, credits, amount_minor, currency: charge.currency.clone() }
            }
            Call::Refused(reason) => {
                ledger::refund_release(&mut tx, refund_id).await?;
                tracing::warn!(%refund_id, %reason, "refund: the provider refused; hold released");
                Refunded::Released { refund_id, credits, reason }
            }
            Call::Unknown(reason, provider_id) => {
                ledger::refund_provider_id(&mut tx, refund_id, provider_id.as_deref()).await?;
                tracing::warn!(%refund_id, %reason, "refund: outcome unknown; credits stay held");
                Refunded::Held { refund_id, credits, reason }
            }
        };
        tx.commit().await?;
        tracing::info!(%refund_id, user_id = charge.user_id, outcome = ?outcome, "refund finished");
        Ok(outcome)
    }
}

/// Why a refund held past YooKassa's key memory and not found there stays held: the operator
/// decides (the reconciler tells the admins).
pub(super) const FOR_OPERATOR: &str = "held past 24 h, not found at YooKassa: for the operator";

enum Call {
    Done(Option<String>),
    Refused(String),
    Unknown(String, Option<String>),
}

/// YooKassa remembers an idempotence key for 24 h; past 23 h (a margin for clocks and calls in
/// flight) a held refund's key is treated as forgotten.
pub const KEY_MEMORY: std::time::Duration = std::time::Duration::from_secs(23 * 3600);

/// Whether refund `id` was held longer ago than YooKassa remembers its key.
async fn held_past_key_memory(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT created_at <= now() - make_interval(secs => $2) FROM refunds WHERE id = $1")
        .bind(id)
        .bind(KEY_MEMORY.as_secs_f64())
        .fetch_one(pool)
        .await
}

fn finished(refund_id: Uuid, charge: &ChargeRow, credits: i64, amount_minor: i64, status: &str) -> Refunded {
    if status == "succeeded" {
        Refunded::Refunded { refund_id, credits, amount_minor, currency: charge.currency.clone() }
    } else {
        Refunded::Released { refund_id, credits, reason: "refused earlier".into() }
    }
}

pub(super) async fn language(conn: &mut PgConnection, user: i64) -> sqlx::Result<Lang> {
    Ok(crate::db::users::language(conn, user).await?.unwrap_or(Lang::Ru))
}

pub(crate) fn money(currency: &str, amount_minor: i64) -> String {
    crate::domain::format_amount(currency, amount_minor)
}

pub(super) async fn tell_refunded(
    conn: &mut PgConnection,
    user: i64,
    currency: &str,
    credits: i64,
    amount_minor: i64,
) -> sqlx::Result<()> {
    let lang = language(conn, user).await?;
    let text = render(
        lang,
        "refund_done",
        &[("credits", &credits.to_string()), ("amount", &money(currency, amount_minor))],
    );
    outbox::send_text(conn, user, &text, None).await?;
    Ok(())
}
