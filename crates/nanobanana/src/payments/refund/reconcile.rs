//! The reconciler of our held YooKassa refunds whose answer is still unknown: a lost create
//! answer is repeated with the same key while YooKassa remembers it (24 h), and after that looked
//! up by payment and amount instead, never created again (`Refunder::refund`); a known refund is
//! read again and finished.

use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;

use super::{RefundRequest, Refunder, YooKassa};
use crate::ledger;

/// Our held refunds whose provider answer is still unknown, read again (the reconciler).
pub async fn reconcile_held(yk: &YooKassa) -> Result<usize, crate::payments::PaymentError> {
    let held: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT r.id, r.provider_refund_id FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.status = 'held' AND p.provider = 'yookassa' AND r.updated_at <= now() - interval '1 minute'
         ORDER BY r.updated_at LIMIT 100",
    )
    .fetch_all(&yk.pool)
    .await?;
    for (refund_id, provider_id) in &held {
        let result: Result<(), crate::payments::PaymentError> = async {
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
                refunder
                    .refund(&request)
                    .await
                    .map_err(|e| crate::payments::PaymentError::Refund(e.to_string()))?;
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
