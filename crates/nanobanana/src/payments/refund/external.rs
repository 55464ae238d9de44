//! Refunds read from YooKassa (`refund.succeeded`, DESIGN §4 "Refunds"): our own held refund
//! is committed; a refund made in YooKassa's dashboard takes back the credits the balance still
//! holds and records the rest as debt, once per refund (`external_refunds`, owned here).

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{language, money, record_event, tell_refunded, ChargeRow, YooKassa, CHARGES};
use crate::domain::refund::{credits_worth, proportion};
use crate::domain::Credits;
use crate::ledger::{self, debt, RefundHold};
use crate::outbox;
use crate::payments::PaymentError;
use crate::texts::render;
use crate::yookassa::Refund;

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
    pub async fn check_refund(&self, id: &str) -> Result<RefundSettled, PaymentError> {
        let (refund, amount) = match self.read_succeeded(id).await? {
            Ok(read) => read,
            Err(why) => return Ok(RefundSettled::Ignored(why)),
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
        if let Some((refund_id, credits, amount_minor)) = ours(&mut tx, &charge, id, amount).await? {
            if ledger::refund_commit(&mut tx, refund_id, Some(id)).await? {
                tell_refunded(&mut tx, charge.user_id, &charge.currency, credits, amount_minor).await?;
            }
            tx.commit().await?;
            return Ok(RefundSettled::Ours);
        }
        let Some(taken) = take_back(&mut tx, &charge, id, amount).await? else {
            return Ok(RefundSettled::AlreadySettled);
        };
        tx.commit().await?;
        if let Some(wake) = &self.outbox_wake {
            wake.notify_one();
        }
        Ok(taken)
    }

    /// The refund `id` as YooKassa reports it, kept in the audit trail: its amount when it
    /// succeeded, or why it is ignored.
    async fn read_succeeded(&self, id: &str) -> Result<Result<(Refund, i64), &'static str>, PaymentError> {
        let raw = match self.client.get_raw("refunds", id).await {
            Ok(raw) => raw,
            Err(e) if e.is_not_found() => return Ok(Err("YooKassa does not know this refund")),
            Err(e) => return Err(e.into()),
        };
        record_event(&self.pool, "api", Some("refund"), Some(id), None, &raw).await?;
        let Ok(refund) = serde_json::from_value::<Refund>(raw) else {
            return Ok(Err("unreadable refund"));
        };
        if refund.status != "succeeded" {
            return Ok(Err("refund not succeeded"));
        }
        let Ok(amount) = refund.amount.minor() else {
            return Ok(Err("unreadable amount"));
        };
        Ok(Ok((refund, amount)))
    }
}

/// Our refund of `charge` that YooKassa reports as `id`: known by the provider's id, or held and
/// still waiting for the create answer (same amount). Its id, credits and amount, locked.
async fn ours(
    conn: &mut PgConnection,
    charge: &ChargeRow,
    id: &str,
    amount: i64,
) -> sqlx::Result<Option<(Uuid, i64, i64)>> {
    sqlx::query_as(
        "SELECT id, credits, amount_minor FROM refunds
         WHERE payment_id = $1 AND (provider_refund_id = $2 OR (provider_refund_id IS NULL AND status = 'held' AND amount_minor = $3))
         ORDER BY provider_refund_id IS NULL, created_at LIMIT 1 FOR UPDATE",
    )
    .bind(charge.id)
    .bind(id)
    .bind(amount)
    .fetch_optional(conn)
    .await
}

/// A refund made in the dashboard: claims it once (`None` when it was claimed before), takes
/// back what the balance holds as a refund through the ledger, records the rest as debt and
/// tells the user. Inside the caller's transaction.
async fn take_back(
    conn: &mut PgConnection,
    charge: &ChargeRow,
    id: &str,
    amount: i64,
) -> Result<Option<RefundSettled>, PaymentError> {
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
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_none() {
        return Ok(None);
    }
    // What the balance holds of paid credits (a refund never takes bonus credits).
    ledger::lock_balance(conn, charge.user_id).await?;
    let available =
        ledger::balance(conn, charge.user_id).await?.map_or(0, |b| b.credits_available - b.bonus_available);
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
        ledger::refund_hold(conn, &hold).await?;
        ledger::refund_commit(conn, refund_id, Some(id)).await?;
        sqlx::query("UPDATE external_refunds SET deducted = $2, debt = $3, refund_id = $4 WHERE provider_refund_id = $1")
            .bind(id)
            .bind(deducted)
            .bind(debt)
            .bind(refund_id)
            .execute(&mut *conn)
            .await?;
    }
    debt::add(conn, charge.user_id, debt).await?;
    let lang = language(conn, charge.user_id).await?;
    let args = [
        ("amount", money(&charge.currency, amount)),
        ("deducted", deducted.to_string()),
        ("debt", debt.to_string()),
    ];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let key = if debt > 0 { "refund_external_debt" } else { "refund_external" };
    outbox::send_text(conn, charge.user_id, &render(lang, key, &args), None).await?;
    tracing::warn!(refund_id = %id, user_id = charge.user_id, worth, deducted, debt, "dashboard refund settled");
    Ok(Some(RefundSettled::External { deducted, debt }))
}
