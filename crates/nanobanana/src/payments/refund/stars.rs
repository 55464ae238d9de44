//! The reconciler of held Telegram Stars refunds whose outcome is unknown (DESIGN §10): Telegram
//! lists the bot's Stars transactions (`getStarTransactions`), where a refund is an outgoing
//! transaction whose id is the refunded charge's. Found there: the refund happened, the hold is
//! committed. Not found: `refundStarPayment` is called again for the same refund (a repeat of a
//! call that did go through answers `CHARGE_ALREADY_REFUNDED`, which counts as done).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Call, ChargeRow, RefundError, RefundRequest, Refunder, CHARGES};
use crate::telegram::client::BotApi;

/// Pages of `getStarTransactions` read per pass, 100 transactions each.
const MAX_PAGES: i64 = 100;

/// One pass over Stars refunds held for longer than `min_age`; how many were looked at.
pub async fn reconcile_stars(pool: &PgPool, api: &BotApi, min_age: Duration) -> Result<usize, RefundError> {
    let held: Vec<(Uuid, i64, i64, i64, Uuid)> = sqlx::query_as(
        "SELECT r.id, r.payment_id, r.credits, r.amount_minor, p.topup_id
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.status = 'held' AND p.provider = 'stars' AND r.updated_at <= now() - make_interval(secs => $1)
         ORDER BY r.updated_at LIMIT 50",
    )
    .bind(min_age.as_secs_f64())
    .fetch_all(pool)
    .await?;
    if held.is_empty() {
        return Ok(0);
    }
    let refunded = match outgoing(api).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "getStarTransactions failed; held Stars refunds wait for the next pass");
            return Ok(0);
        }
    };
    let refunder = Refunder { pool, yookassa: None, telegram: Some(api) };
    for (refund_id, payment_id, credits, amount_minor, topup_id) in &held {
        let charge: ChargeRow = sqlx::query_as(&format!("{CHARGES} p.id = $1 GROUP BY p.id"))
            .bind(payment_id)
            .fetch_one(pool)
            .await?;
        let outcome = if refunded.contains(&charge.payment_id) {
            tracing::info!(%refund_id, charge = %charge.payment_id, "Stars refund found among Telegram's transactions");
            refunder.finish(*refund_id, &charge, *credits, *amount_minor, Call::Done(None)).await
        } else {
            let request = RefundRequest {
                refund_id: *refund_id,
                topup_id: *topup_id,
                credits: None,
                actor: "reconciler".into(),
            };
            refunder.refund(&request).await
        };
        match outcome {
            Ok(outcome) => tracing::info!(%refund_id, ?outcome, "held Stars refund reconciled"),
            Err(RefundError::Db(e)) => return Err(RefundError::Db(e)),
            Err(e) => {
                tracing::warn!(%refund_id, error = %e, "reconciling a held Stars refund failed; next pass retries")
            }
        }
    }
    Ok(held.len())
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
