//! Payments (DESIGN §4 "YooKassa payment", "Telegram Stars", "Refunds"; L4): starting a
//! YooKassa payment for an order and settling a charge on the provider's word only (the webhook
//! and the reconciler both read it with `GET` and hand the answer to `settle`), the Stars
//! pre-checkout and credit (`stars`), two-phase refunds and dashboard refunds (`refund`), and
//! the receipt contact (`contact`). Owns `payment_events` and `external_refunds`. Credits move
//! only through the ledger, in the same transaction as the charge row and the user's message;
//! a user is reached only through `outbox` and `texts`. Never calls a provider inside a
//! database transaction, and never imports `bot` or `worker`.

pub mod contact;
pub mod network;
mod reconcile;
mod referral;
pub mod refund;
mod settle;
pub mod stars;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::{Pack, YooKassaConfig};
use crate::db::payments::{self as db, NewTopup, Provider};
use crate::domain::{Kopecks, TelegramId};
use crate::yookassa::{Client, Contact, CreatePayment, YkError};

pub use reconcile::{
    reconcile_as_leader, reconcile_loop, reconcile_once, INTERVAL, MIN_AGE, RECONCILER_LOCK,
};
pub use settle::Settled;

/// How long one YooKassa call may take before it counts as a timeout (and is retried).
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    YooKassa(#[from] YkError),
    #[error("YooKassa ruble payments need YOOKASSA_RETURN_URL")]
    NoReturnUrl,
    #[error("invalid pack price {0}")]
    BadPrice(i64),
    #[error("the created payment has no confirmation URL (status {0})")]
    NoConfirmationUrl(String),
    #[error("refund: {0}")]
    Refund(String),
}

/// Everything the YooKassa flows need; cheap to share.
#[derive(Debug)]
pub struct YooKassa {
    pub pool: PgPool,
    pub client: Client,
    pub config: YooKassaConfig,
    /// Woken after a commit that queued a message for the user.
    pub outbox_wake: Option<Arc<Notify>>,
    /// `ADMIN_IDS`: told by the reconciler what needs the operator (`with_admins`).
    pub admins: Vec<i64>,
}

impl YooKassa {
    pub fn new(
        pool: PgPool,
        config: YooKassaConfig,
        outbox_wake: Option<Arc<Notify>>,
    ) -> Result<Self, reqwest::Error> {
        Self::with_timeout(pool, config, outbox_wake, API_TIMEOUT)
    }

    /// As `new`, with `timeout` per API call instead of `API_TIMEOUT`.
    pub fn with_timeout(
        pool: PgPool,
        config: YooKassaConfig,
        outbox_wake: Option<Arc<Notify>>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = Client::new(&config, timeout)?;
        Ok(Self { pool, client, config, outbox_wake, admins: Vec::new() })
    }

    /// The admins the reconciler tells what needs the operator.
    pub fn with_admins(mut self, admins: Vec<i64>) -> Self {
        self.admins = admins;
        self
    }

    /// Whether a notification from `ip` may be believed at all.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        network::contains(&self.config.trusted_networks, ip)
    }

    /// Reads payment `id` from the API, keeps the answer in `payment_events` and settles the
    /// charge on it. A payment YooKassa does not know is `Ignored`, never an error.
    pub async fn check_payment(&self, id: &str) -> Result<Settled, PaymentError> {
        let payment = match self.client.get_payment(id).await {
            Ok(payment) => payment,
            Err(e) if e.is_not_found() => return Ok(Settled::Ignored("YooKassa does not know this payment")),
            Err(YkError::Malformed(e)) => {
                tracing::warn!(payment_id = %id, error = %e, "YooKassa answered a payment we cannot read");
                return Ok(Settled::Ignored("unreadable payment"));
            }
            Err(e) => return Err(e.into()),
        };
        record_event(&self.pool, "api", Some("payment"), Some(id), None, &payment.raw).await?;
        settle::settle(self, &payment).await
    }
}

/// Starts a ruble payment for `pack`: the topup keyed to `source_key` (the update id), the
/// create call outside any transaction with the topup id as Idempotence-Key, the charge row,
/// and the URL the user pays at. Calling it again for the same source repeats the same
/// payment, never a second one.
pub async fn start_yookassa(
    yk: &YooKassa,
    user: TelegramId,
    pack: &Pack,
    source_key: &str,
    customer: Option<Contact>,
) -> Result<String, PaymentError> {
    yk.config.return_url.as_ref().ok_or(PaymentError::NoReturnUrl)?;
    let topup = NewTopup::for_pack(user, Provider::YooKassa, pack, source_key);
    let topup_id: Uuid = db::create_topup(&mut *yk.pool.acquire().await?, &topup).await?;
    pay_topup(yk, topup_id, customer).await
}

/// Creates (or repeats) the YooKassa payment of topup `topup_id`, which must exist; the rest
/// of `start_yookassa`, for a caller that created the topup inside its own transaction.
pub async fn pay_topup(
    yk: &YooKassa,
    topup_id: Uuid,
    customer: Option<Contact>,
) -> Result<String, PaymentError> {
    let return_url = yk.config.return_url.as_ref().ok_or(PaymentError::NoReturnUrl)?.to_string();
    // A redelivered update finds the topup it created before: the body is rebuilt from that
    // row, not from today's pack list, so the retry is byte-for-byte the same request.
    let db::Order { user_id: user, amount_minor, credits, .. } =
        db::order(&yk.pool, topup_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let amount = Kopecks::from_kopecks(amount_minor).map_err(|_| PaymentError::BadPrice(amount_minor))?;
    let request = CreatePayment {
        amount,
        description: format!("Nano Banana Pro: {credits} credits"),
        user_id: user,
        return_url,
        customer,
    };
    let payment = yk.client.create_payment(topup_id, &request).await?;
    tracing::info!(%topup_id, payment_id = %payment.id, user, "YooKassa payment created");
    record_event(&yk.pool, "api", Some("payment.created"), Some(&payment.id), None, &payment.raw).await?;
    // The created payment goes through the same checks as any other answer (it may even have
    // succeeded already if the user paid before this call returned).
    settle::settle(yk, &payment).await?;
    payment
        .confirmation_url()
        .map(str::to_owned)
        .ok_or_else(|| PaymentError::NoConfirmationUrl(payment.status))
}

/// Appends one raw notification or API answer to the audit trail.
pub async fn record_event(
    pool: &PgPool,
    source: &str,
    event: Option<&str>,
    object_id: Option<&str>,
    remote_addr: Option<&str>,
    payload: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO payment_events (provider, source, event, object_id, remote_addr, payload)
         VALUES ('yookassa', $1, $2, $3, $4, $5)",
    )
    .bind(source)
    .bind(event)
    .bind(object_id)
    .bind(remote_addr)
    .bind(payload)
    .execute(pool)
    .await?;
    Ok(())
}
