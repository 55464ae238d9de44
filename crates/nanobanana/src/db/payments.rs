//! Orders (`topups`) and provider charges (`payments`). A charge's status is only ever what
//! the provider last reported; crediting it is `ledger::credit_charge`.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Credits, TelegramId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    YooKassa,
    Stars,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::YooKassa => "yookassa",
            Self::Stars => "stars",
        }
    }

    pub fn currency(self) -> &'static str {
        match self {
            Self::YooKassa => "RUB",
            Self::Stars => "XTR",
        }
    }
}

/// The status of a charge as the provider reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Pending,
    WaitingForCapture,
    Succeeded,
    Canceled,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::WaitingForCapture => "waiting_for_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

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
