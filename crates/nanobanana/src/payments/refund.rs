//! Refunds in two phases (DESIGN §4 "Refunds"): hold the credits (only unspent ones; part of a
//! charge is allowed), call the provider with the refund id as idempotence key, then commit or
//! release the hold. An outcome the provider left unknown keeps the hold: the same refund id
//! repeats the call later, and a `refund.succeeded` or the reconciler finishes it. A refund
//! made in YooKassa's dashboard takes back what is available and leaves the rest as debt.
//! Never calls a provider inside a database transaction.

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::{record_event, YooKassa};
use crate::ledger::debt;
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
    #[error("{needed} credits to refund but only {available} unspent on the balance")]
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
struct ChargeRow {
    id: i64,
    provider: String,
    payment_id: String,
    user_id: i64,
    currency: String,
    amount_minor: i64,
    credits: i64,
    refunded: i64,
}

const CHARGES: &str =
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
        let (charge, credits, amount_minor) = match existing {
            Some((payment_id, credits, amount_minor, status)) => {
                let charge: ChargeRow = sqlx::query_as(&format!("{CHARGES} p.id = $1 GROUP BY p.id"))
                    .bind(payment_id)
                    .fetch_one(self.pool)
                    .await?;
                if status != "held" {
                    return Ok(finished(request.refund_id, &charge, credits, amount_minor, &status));
                }
                (charge, credits, amount_minor)
            }
            None => self.hold(request).await?,
        };
        let outcome = match charge.provider.as_str() {
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

enum Call {
    Done(Option<String>),
    Refused(String),
    Unknown(String, Option<String>),
}

fn finished(refund_id: Uuid, charge: &ChargeRow, credits: i64, amount_minor: i64, status: &str) -> Refunded {
    if status == "succeeded" {
        Refunded::Refunded { refund_id, credits, amount_minor, currency: charge.currency.clone() }
    } else {
        Refunded::Released { refund_id, credits, reason: "refused earlier".into() }
    }
}

/// `amount × part / whole`, rounded down, at least 1 for a non-empty part.
fn proportion(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 || part >= whole {
        return amount;
    }
    let value = i128::from(amount) * i128::from(part) / i128::from(whole);
    i64::try_from(value).unwrap_or(amount).max(1)
}

/// Credits worth `refunded` of a charge of `amount` for `credits`, rounded up.
fn credits_worth(credits: i64, refunded: i64, amount: i64) -> i64 {
    if amount <= 0 || refunded >= amount {
        return credits;
    }
    let value = (i128::from(credits) * i128::from(refunded) + i128::from(amount) - 1) / i128::from(amount);
    i64::try_from(value).unwrap_or(credits)
}

async fn language(conn: &mut PgConnection, user: i64) -> sqlx::Result<Lang> {
    Ok(crate::db::users::language(conn, user).await?.unwrap_or(Lang::Ru))
}

fn money(currency: &str, amount_minor: i64) -> String {
    crate::domain::format_amount(currency, amount_minor)
}

async fn tell_refunded(
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

/// What a `refund.succeeded` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundSettled {
    /// One of ours, committed now (or before).
    Ours,
    /// Made outside the bot: credits taken back and debt recorded by this call.
    External {
        deducted: i64,
        debt: i64,
    },
    AlreadySettled,
    Ignored(&'static str),
}

impl YooKassa {
    /// Reads refund `id` with `GET /refunds/{id}` and settles it on that answer: our own held
    /// refund is committed; a refund made in the dashboard takes back what the balance holds
    /// and records the rest as debt, once per refund.
    pub async fn check_refund(&self, id: &str) -> Result<RefundSettled, super::PaymentError> {
        let raw = match self.client.get_raw("refunds", id).await {
            Ok(raw) => raw,
            Err(e) if e.is_not_found() => {
                return Ok(RefundSettled::Ignored("YooKassa does not know this refund"))
            }
            Err(e) => return Err(e.into()),
        };
        record_event(&self.pool, "api", Some("refund"), Some(id), None, &raw).await?;
        let Ok(refund) = serde_json::from_value::<crate::yookassa::Refund>(raw.clone()) else {
            return Ok(RefundSettled::Ignored("unreadable refund"));
        };
        if refund.status != "succeeded" {
            return Ok(RefundSettled::Ignored("refund not succeeded"));
        }
        let Ok(amount) = refund.amount.minor() else {
            return Ok(RefundSettled::Ignored("unreadable amount"));
        };
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let charge: Option<ChargeRow> =
            sqlx::query_as(&format!("{CHARGES} p.provider = 'yookassa' AND p.payment_id = $1 GROUP BY p.id"))
                .bind(&refund.payment_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(charge) = charge else {
            tracing::warn!(refund_id = %id, payment_id = %refund.payment_id, "refund of a payment that is not ours");
            return Ok(RefundSettled::Ignored("unknown payment"));
        };
        // Ours: known by the provider's id, or held and still waiting for the create answer.
        let ours: Option<(Uuid, i64, i64)> = sqlx::query_as(
            "SELECT id, credits, amount_minor FROM refunds
             WHERE payment_id = $1 AND (provider_refund_id = $2 OR (provider_refund_id IS NULL AND status = 'held' AND amount_minor = $3))
             ORDER BY provider_refund_id IS NULL, created_at LIMIT 1 FOR UPDATE",
        )
        .bind(charge.id)
        .bind(id)
        .bind(amount)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((refund_id, credits, amount_minor)) = ours {
            if ledger::refund_commit(&mut tx, refund_id, Some(id)).await.map_err(super::PaymentError::from)? {
                tell_refunded(&mut tx, charge.user_id, &charge.currency, credits, amount_minor).await?;
            }
            tx.commit().await?;
            return Ok(RefundSettled::Ours);
        }
        let worth = credits_worth(charge.credits, amount, charge.amount_minor)
            .min(charge.credits - charge.refunded)
            .max(0);
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO external_refunds (provider_refund_id, payment_id, user_id, amount_minor, credits, deducted, debt)
             VALUES ($1, $2, $3, $4, $5, 0, $5) ON CONFLICT DO NOTHING RETURNING provider_refund_id",
        )
        .bind(id)
        .bind(charge.id)
        .bind(charge.user_id)
        .bind(amount)
        .bind(worth)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            return Ok(RefundSettled::AlreadySettled);
        }
        let available: i64 =
            sqlx::query_scalar("SELECT credits_available FROM balances WHERE user_id = $1 FOR UPDATE")
                .bind(charge.user_id)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0);
        let deducted = worth.min(available);
        let debt = worth - deducted;
        if let Ok(credits) = Credits::new(deducted) {
            let refund_id = Uuid::new_v4();
            let hold = RefundHold {
                refund_id,
                payment_id: charge.id,
                credits,
                amount_minor: proportion(amount, deducted, worth),
                reason: Some("refund made in the YooKassa dashboard"),
            };
            ledger::refund_hold(&mut tx, &hold).await.map_err(super::PaymentError::from)?;
            ledger::refund_commit(&mut tx, refund_id, Some(id)).await.map_err(super::PaymentError::from)?;
            sqlx::query("UPDATE external_refunds SET deducted = $2, debt = $3, refund_id = $4 WHERE provider_refund_id = $1")
                .bind(id)
                .bind(deducted)
                .bind(debt)
                .bind(refund_id)
                .execute(&mut *tx)
                .await?;
        }
        debt::add(&mut tx, charge.user_id, debt).await?;
        let lang = language(&mut tx, charge.user_id).await?;
        let args = [
            ("amount", money(&charge.currency, amount)),
            ("deducted", deducted.to_string()),
            ("debt", debt.to_string()),
        ];
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let key = if debt > 0 { "refund_external_debt" } else { "refund_external" };
        outbox::send_text(&mut tx, charge.user_id, &render(lang, key, &args), None).await?;
        tx.commit().await?;
        tracing::warn!(refund_id = %id, user_id = charge.user_id, worth, deducted, debt, "dashboard refund settled");
        if let Some(wake) = &self.outbox_wake {
            wake.notify_one();
        }
        Ok(RefundSettled::External { deducted, debt })
    }
}

/// Our held refunds whose provider answer is still unknown, read again (the reconciler).
pub async fn reconcile_held(yk: &YooKassa) -> Result<usize, super::PaymentError> {
    let held: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT r.id, r.provider_refund_id FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.status = 'held' AND p.provider = 'yookassa' AND r.updated_at <= now() - interval '1 minute'
         ORDER BY r.updated_at LIMIT 100",
    )
    .fetch_all(&yk.pool)
    .await?;
    for (refund_id, provider_id) in &held {
        let result: Result<(), super::PaymentError> = async {
            let Some(provider_id) = provider_id else {
                // The create answer was lost: repeat it with the same key.
                let refunder = Refunder { pool: &yk.pool, yookassa: Some(yk), telegram: None };
                let topup: Uuid = sqlx::query_scalar(
                    "SELECT p.topup_id FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1",
                )
                .bind(refund_id)
                .fetch_one(&yk.pool)
                .await?;
                let request = RefundRequest {
                    refund_id: *refund_id,
                    topup_id: topup,
                    credits: None,
                    actor: "reconciler".into(),
                };
                refunder.refund(&request).await.map_err(|e| super::PaymentError::Refund(e.to_string()))?;
                return Ok(());
            };
            let raw: Value = yk.client.get_raw("refunds", provider_id).await?;
            let status = raw.get("status").and_then(Value::as_str).unwrap_or("");
            let mut conn = yk.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            match status {
                "succeeded" => {
                    tx.commit().await?;
                    yk.check_refund(provider_id).await?;
                    return Ok(());
                }
                "canceled" => {
                    ledger::refund_release(&mut tx, *refund_id).await?;
                    tracing::warn!(%refund_id, "refund canceled by YooKassa; hold released");
                }
                _ => {}
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%refund_id, error = %e, "reconciling a held refund failed; next pass retries");
        }
    }
    Ok(held.len())
}

/// `nanobanana admin refund`.
#[derive(Debug, clap::Args)]
pub struct RefundArgs {
    #[arg(long, value_name = "TOPUP_ID")]
    pub topup: Uuid,
    /// Part of the charge's credits (default: all of them); Stars refund whole charges only.
    #[arg(long, value_parser = |s: &str| Credits::parse(s).map_err(|e| e.to_string()))]
    pub credits: Option<Credits>,
    /// Repeat a refund whose outcome was unknown, under its id (the provider's idempotence key).
    #[arg(long, value_name = "REFUND_ID")]
    pub refund_id: Option<Uuid>,
    #[arg(long)]
    pub json: bool,
}

/// Runs the refund from a shell; exit code 0 when refunded, 1 when refused or released,
/// 3 when the outcome is still unknown (repeat with `--refund-id`).
pub async fn cli(
    config: &crate::config::Config,
    pool: &PgPool,
    args: RefundArgs,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let yk = match config.yookassa.clone() {
        Some(c) => Some(YooKassa::new(pool.clone(), c, None)?),
        None => None,
    };
    let api = match &config.telegram {
        Some(t) => Some(BotApi::new(t)?),
        None => None,
    };
    let login = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let request = RefundRequest {
        refund_id: args.refund_id.unwrap_or_else(Uuid::new_v4),
        topup_id: args.topup,
        credits: args.credits,
        actor: format!("cli:{login}"),
    };
    let refunder = Refunder { pool, yookassa: yk.as_ref(), telegram: api.as_ref() };
    let outcome = match refunder.refund(&request).await {
        Ok(outcome) => outcome,
        Err(RefundError::Db(e)) => return Err(e.into()),
        Err(e) => {
            if args.json {
                println!("{}", json!({"outcome": "refused", "reason": e.to_string()}));
            } else {
                eprintln!("refund refused: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        match &outcome {
            Refunded::Refunded { refund_id, credits, amount_minor, currency } => {
                println!(
                    "refunded {credits} credits, {} (refund {refund_id})",
                    money(currency, *amount_minor)
                )
            }
            Refunded::Released { refund_id, reason, .. } => {
                println!("the provider refused ({reason}); hold released (refund {refund_id})")
            }
            Refunded::Held { refund_id, reason, .. } => {
                println!("outcome unknown ({reason}); credits held; repeat with --refund-id {refund_id}")
            }
        }
    }
    Ok(match outcome {
        Refunded::Refunded { .. } => ExitCode::SUCCESS,
        Refunded::Released { .. } => ExitCode::FAILURE,
        Refunded::Held { .. } => ExitCode::from(3),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_charge() {
        assert_eq!(proportion(10_000, 100, 100), 10_000);
        assert_eq!(proportion(10_000, 30, 100), 3_000);
        assert_eq!(proportion(100, 1, 1000), 1);
        assert_eq!(credits_worth(100, 10_000, 10_000), 100);
        assert_eq!(credits_worth(100, 3_333, 10_000), 34);
        assert_eq!(credits_worth(100, 1, 10_000), 1);
    }
}
