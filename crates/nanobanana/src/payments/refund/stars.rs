//! The reconciler of held Telegram Stars refunds whose outcome is unknown (DESIGN §10): Telegram
//! lists the bot's Stars transactions (`getStarTransactions`), where a refund is an outgoing
//! transaction whose id is the refunded charge's. Found there: the refund happened, the hold is
//! committed. Not found: `refundStarPayment` is called again for the same refund (a repeat of a
//! call that did go through answers `CHARGE_ALREADY_REFUNDED`, which counts as done).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;

use super::reconcile::{cutoff, held_page, standing, tell_operator, Held, Standing, BATCH};
use super::{Call, ChargeRow, RefundError, RefundRequest, Refunded, Refunder, CHARGES};
use crate::telegram::client::BotApi;

/// Pages of `getStarTransactions` read per pass, 100 transactions each.
const MAX_PAGES: i64 = 100;

/// One pass over Stars refunds held for longer than `min_age`, every one of them in pages (as
/// `reconcile_held`); how many were looked at. One still held after `STUCK_AFTER` is told to
/// the admins (`admins`), once.
pub async fn reconcile_stars(
    pool: &PgPool,
    api: &BotApi,
    min_age: Duration,
    admins: &[i64],
) -> Result<usize, RefundError> {
    let cutoff = cutoff(pool, min_age).await?;
    let mut after = None;
    let mut refunded: Option<HashSet<String>> = None;
    let mut seen = 0;
    loop {
        let page = held_page(pool, "stars", cutoff, after, BATCH).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.id));
        if refunded.is_none() {
            match outgoing(api).await {
                Ok(ids) => refunded = Some(ids),
                Err(e) => {
                    tracing::warn!(error = %e, "getStarTransactions failed; held Stars refunds wait for the next pass");
                    return Ok(seen);
                }
            }
        }
        for held in &page {
            let charge_refunded = refunded.as_ref().is_some_and(|ids| ids.contains(&held.payment_id));
            let standing = match reconcile_one(pool, api, held, charge_refunded).await {
                Ok(refunded) => standing(refunded),
                Err(RefundError::Db(e)) => return Err(RefundError::Db(e)),
                Err(e) => {
                    tracing::warn!(refund_id = %held.id, error = %e, "reconciling a held Stars refund failed; next pass retries");
                    Standing::Held(e.to_string())
                }
            };
            tell_operator(pool, admins, held, &standing).await?;
        }
        seen += page.len();
        if page.len() < BATCH as usize {
            break;
        }
    }
    Ok(seen)
}

/// One held Stars refund: committed when Telegram lists it (`refunded`), else asked again.
async fn reconcile_one(
    pool: &PgPool,
    api: &BotApi,
    held: &Held,
    refunded: bool,
) -> Result<Refunded, RefundError> {
    let refunder = Refunder { pool, yookassa: None, telegram: Some(api) };
    let outcome = if refunded {
        let charge: ChargeRow = sqlx::query_as(&format!("{CHARGES} p.id = $1 GROUP BY p.id"))
            .bind(held.charge_id)
            .fetch_one(pool)
            .await?;
        tracing::info!(refund_id = %held.id, charge = %charge.payment_id, "Stars refund found among Telegram's transactions");
        refunder.finish(held.id, &charge, held.credits, held.amount_minor, Call::Done(None)).await?
    } else {
        let request = RefundRequest {
            refund_id: held.id,
            topup_id: held.topup_id,
            credits: None,
            actor: "reconciler".into(),
        };
        refunder.refund(&request).await?
    };
    tracing::info!(refund_id = %held.id, ?outcome, "held Stars refund reconciled");
    Ok(outcome)
}

/// The ids of the bot's outgoing Stars transactions (refunds), every page.
async fn outgoing(api: &BotApi) -> Result<HashSet<String>, crate::telegram::client::ApiError> {
    let mut ids = HashSet::new();
    for page in 0..MAX_PAGES {
        let params = json!({ "offset": page * 100, "limit": 100 });
        let answer = api.call("getStarTransactions", &params).await?;
        let transactions = answer.get("transactions").and_then(Value::as_array).cloned().unwrap_or_default();
        for transaction in &transactions {
            if transaction.get("receiver").is_some() {
                if let Some(id) = transaction.get("id").and_then(Value::as_str) {
                    ids.insert(id.to_owned());
                }
            }
        }
        if transactions.len() < 100 {
            break;
        }
    }
    Ok(ids)
}
