//! Crediting a provider charge: once per charge, however often it is asked.

use sqlx::PgConnection;

use super::movement::{apply, Kind, Refs};
use super::{LedgerError, Outcome};

/// Credits the user for charge `payment_id` (our `payments.id`) with the charge's credits.
/// Only a charge the provider reported `succeeded` is credited; a second call, concurrent or
/// not, is `AlreadyDone`. Marks the charge processed and its order paid in the same transaction.
pub async fn credit_charge(conn: &mut PgConnection, payment_id: i64) -> Result<Outcome, LedgerError> {
    let row: Option<(i64, i64, String)> =
        sqlx::query_as("SELECT user_id, credits, status FROM payments WHERE id = $1")
            .bind(payment_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (user_id, credits, status) = row.ok_or(LedgerError::UnknownPayment(payment_id))?;
    if status != "succeeded" {
        return Err(LedgerError::NotSucceeded(payment_id));
    }
    let refs = Refs { payment_id: Some(payment_id), ..Refs::default() };
    let Some(entry) = apply(conn, user_id, Kind::Topup, credits, &refs).await? else {
        return Ok(Outcome::AlreadyDone);
    };
    crate::db::payments::mark_credited(conn, payment_id).await?;
    Ok(Outcome::Applied(entry))
}
