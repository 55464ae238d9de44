//! Operator actions from a shell (`nanobanana admin …`): grant or deduct credits with a
//! reason, and show a user's balance and recent movements. Credits move only via `ledger`.

use anyhow::{bail, Context};
use sqlx::PgConnection;

use crate::db::users;
use crate::domain::TelegramId;
use crate::ledger::{self, Adjusted, Adjustment, LedgerError};

/// `admin grant|deduct`: the adjustment in its own transaction; a deduct beyond the available
/// balance is refused with the figures.
pub async fn adjust(conn: &mut PgConnection, adjustment: &Adjustment<'_>) -> anyhow::Result<Adjusted> {
    match ledger::adjust_alone(conn, adjustment).await {
        Ok(adjusted) => Ok(adjusted),
        Err(LedgerError::Insufficient { available, needed }) => {
            bail!("user {} has {available} credits available, cannot deduct {needed}", adjustment.user_id)
        }
        Err(e) => Err(e).context("committing the adjustment"),
    }
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct JournalRow {
    pub id: i64,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: i64,
    pub delta_available: i64,
    pub delta_reserved: i64,
    pub balance_after: i64,
    pub reserved_after: i64,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UserReport {
    pub user: users::UserRow,
    pub balance: ledger::Balance,
    pub recent: Vec<JournalRow>,
}

pub async fn show(conn: &mut PgConnection, user_id: TelegramId, limit: u32) -> anyhow::Result<UserReport> {
    let user =
        users::find(conn, user_id).await?.with_context(|| format!("no user with telegram id {user_id}"))?;
    let balance =
        ledger::balance(conn, user_id).await?.with_context(|| format!("user {user_id} has no balance row"))?;
    let recent = sqlx::query_as(
        "SELECT id, type, amount, delta_available, delta_reserved, balance_after, reserved_after,
                COALESCE('generation ' || generation_id, 'payment ' || payment_id,
                         'refund ' || refund_id, 'key ' || idempotency_key) AS reference,
                reason, created_at
         FROM transactions WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(UserReport { user, balance, recent })
}

impl std::fmt::Display for UserReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = &self.user;
        let name = u.username.as_deref().map(|n| format!(" @{n}")).unwrap_or_default();
        writeln!(f, "user {}{name} registered {}", u.telegram_id, u.registered_at.format("%Y-%m-%d %H:%M"))?;
        if u.is_banned || !u.is_active {
            writeln!(f, "banned: {}, active: {}", u.is_banned, u.is_active)?;
        }
        writeln!(
            f,
            "available {} credits, reserved {}",
            self.balance.credits_available, self.balance.credits_reserved
        )?;
        if self.recent.is_empty() {
            return write!(f, "no movements yet");
        }
        writeln!(
            f,
            "{:>8}  {:<16}  {:<14}  {:>8}  {:>9}  {:>8}  reference",
            "id", "when", "type", "Δavail", "available", "reserved"
        )?;
        for r in &self.recent {
            writeln!(
                f,
                "{:>8}  {:<16}  {:<14}  {:>+8}  {:>9}  {:>8}  {}{}",
                r.id,
                r.created_at.format("%Y-%m-%d %H:%M"),
                r.kind,
                r.delta_available,
                r.balance_after,
                r.reserved_after,
                r.reference.as_deref().unwrap_or("-"),
                r.reason.as_deref().map(|x| format!(" ({x})")).unwrap_or_default(),
            )?;
        }
        Ok(())
    }
}
