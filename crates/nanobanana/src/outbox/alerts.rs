//! What a reconciler tells the operator: a message to every admin (`ADMIN_IDS`), each in their
//! language, queued in the caller's transaction, once per thing (`operator_alerts`): the next
//! pass that finds the same refund or picture tells nobody again.

use sqlx::PgConnection;

use crate::texts::render;
use crate::texts::Lang;

/// What needs the operator, and the text (`key` in the resources) that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    /// A YooKassa refund held past YooKassa's 24 h memory of its key and not found there: never
    /// created again, left held for the operator to decide.
    RefundForOperator,
    /// A held refund (Stars or YooKassa) still unresolved long after it was asked for.
    RefundStuck,
    /// A paid picture had no delivery in sight and was queued again.
    Redelivered,
    /// Yesterday's figures (`reports::daily`), once per day (the subject is the date).
    DailyReport,
}

impl Alert {
    fn kind(self) -> &'static str {
        match self {
            Alert::RefundForOperator => "refund_for_operator",
            Alert::RefundStuck => "refund_stuck",
            Alert::Redelivered => "redelivered",
            Alert::DailyReport => "daily_report",
        }
    }

    fn text_key(self) -> &'static str {
        match self {
            Alert::RefundForOperator => "admin_refund_for_operator",
            Alert::RefundStuck => "admin_refund_stuck",
            Alert::Redelivered => "admin_redelivered",
            Alert::DailyReport => "admin_daily_report",
        }
    }
}

/// Tells every admin about `subject` (a refund's or a generation's id) unless they were told
/// already; `args` fill the text. Whether this call told them. Call inside the transaction
/// of the change (or the finding), so the record and the messages commit together.
pub async fn tell_admins_once(
    conn: &mut PgConnection,
    admins: &[i64],
    alert: Alert,
    subject: &str,
    args: &[(&str, &str)],
) -> sqlx::Result<bool> {
    if admins.is_empty() {
        return Ok(false);
    }
    let new: Option<String> = sqlx::query_scalar(
        "INSERT INTO operator_alerts (kind, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING kind",
    )
    .bind(alert.kind())
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    if new.is_none() {
        return Ok(false);
    }
    let known = crate::db::users::languages(conn, admins).await?;
    for admin in admins {
        let lang = known.iter().find(|(id, _)| id == admin).map_or(Lang::Ru, |(_, lang)| *lang);
        super::send_text(conn, *admin, &render(lang, alert.text_key(), args), None).await?;
    }
    tracing::warn!(kind = alert.kind(), subject, admins = admins.len(), "admins told");
    Ok(true)
}
