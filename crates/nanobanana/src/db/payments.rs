//! Orders (`topups`) and provider charges (`payments`). A charge's status is only ever what
//! the provider last reported; crediting it is `ledger::credit_charge`.

use sqlx::PgConnection;
use uuid::Uuid;

pub use crate::domain::{ChargeStatus, Provider};
use crate::domain::{Credits, TelegramId};

#[derive(Debug, Clone)]
pub struct NewTopup<'a> {
    pub user_id: TelegramId,
    pub provider: Provider,
    pub pack: &'a str,
    pub amount_minor: i64,
    pub credits: Credits,
    pub source_key: Option<&'a str>,
}

impl<'a> NewTopup<'a> {
    /// The order for `pack` from `provider`, keyed to `source_key` (the update or action that
    /// chose it), so a repeat of that source finds the same order.
    pub fn for_pack(
        user_id: TelegramId,
        provider: Provider,
        pack: &'a crate::config::Pack,
        source_key: &'a str,
    ) -> Self {
        NewTopup {
            user_id,
            provider,
            pack: &pack.id,
            amount_minor: pack.price,
            credits: pack.credits,
            source_key: Some(source_key),
        }
    }
}

/// Creates the order, or returns the one the same source already created.
pub async fn create_topup(conn: &mut PgConnection, topup: &NewTopup<'_>) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "WITH ins AS (
             INSERT INTO topups (user_id, provider, pack, currency, amount_minor, credits, source_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (user_id, source_key) DO NOTHING
             RETURNING id)
         SELECT id FROM ins
         UNION ALL
         SELECT id FROM topups WHERE user_id = $1 AND source_key = $7
         LIMIT 1",
    )
    .bind(topup.user_id)
    .bind(topup.provider.as_str())
    .bind(topup.pack)
    .bind(topup.provider.currency())
    .bind(topup.amount_minor)
    .bind(topup.credits.get())
    .bind(topup.source_key)
    .fetch_one(conn)
    .await
}

/// An order as it was created: the figures a payment for it is made of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Order {
    pub id: Uuid,
    pub user_id: TelegramId,
    pub provider: String,
    pub currency: String,
    pub amount_minor: i64,
    pub credits: i64,
    pub status: String,
}

/// The order `topup_id`, if there is one.
pub async fn order<'c>(conn: impl sqlx::PgExecutor<'c>, topup_id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(
        "SELECT id, user_id, provider, currency, amount_minor, credits, status FROM topups WHERE id = $1",
    )
    .bind(topup_id)
    .fetch_optional(conn)
    .await
}

/// The provider canceled the order's payment: `true` if this closed a still open order.
pub async fn cancel_order(conn: &mut PgConnection, topup_id: Uuid) -> sqlx::Result<bool> {
    let closed: Option<Uuid> = sqlx::query_scalar(
        "UPDATE topups SET status = 'canceled'
         WHERE id = $1 AND status IN ('created', 'pending') RETURNING id",
    )
    .bind(topup_id)
    .fetch_optional(conn)
    .await?;
    Ok(closed.is_some())
}

/// The provider knows the order's payment and waits for the user.
pub async fn order_pending(conn: &mut PgConnection, topup_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE topups SET status = 'pending' WHERE id = $1 AND status = 'created'")
        .bind(topup_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The charge was credited: marked processed, and its order paid. In the crediting
/// transaction (`ledger::credit_charge` calls it).
pub async fn mark_credited(conn: &mut PgConnection, payment_id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "WITH p AS (UPDATE payments SET processed_at = now(), updated_at = now()
                    WHERE id = $1 RETURNING topup_id)
         UPDATE topups SET status = 'paid', paid_at = COALESCE(paid_at, now())
         FROM p WHERE topups.id = p.topup_id",
    )
    .bind(payment_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A provider charge of a topup, as the provider reported it.
#[derive(Debug, Clone)]
pub struct Charge<'a> {
    pub provider: Provider,
    pub payment_id: &'a str,
    pub topup_id: Uuid,
    pub amount_minor: i64,
    pub status: ChargeStatus,
    pub raw_payload: Option<&'a serde_json::Value>,
}

/// Records a charge (once per provider id) or updates its status; returns our row id.
/// The charge is worth the topup's credits and belongs to the topup's user.
/// A final status (`succeeded`, `canceled`) is never overwritten by an older report.
pub async fn record_charge(conn: &mut PgConnection, charge: &Charge<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO payments (provider, payment_id, topup_id, user_id, currency, amount_minor,
                               credits, status, raw_payload)
         SELECT $1, $2, t.id, t.user_id, t.currency, $4, t.credits, $5, $6
         FROM topups t WHERE t.id = $3
         ON CONFLICT (provider, payment_id) DO UPDATE
             SET status = CASE WHEN payments.status IN ('succeeded', 'canceled')
                               THEN payments.status ELSE EXCLUDED.status END,
                 raw_payload = COALESCE(EXCLUDED.raw_payload, payments.raw_payload),
                 updated_at = now()
         RETURNING id",
    )
    .bind(charge.provider.as_str())
    .bind(charge.payment_id)
    .bind(charge.topup_id)
    .bind(charge.amount_minor)
    .bind(charge.status.as_str())
    .bind(charge.raw_payload)
    .fetch_one(conn)
    .await
}
