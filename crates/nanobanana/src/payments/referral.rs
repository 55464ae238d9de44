//! The referrer's reward for a friend's charge (DESIGN §10): `REFERRAL_BONUS` for the friend's
//! first credited charge, the configured percent of every later one (the terms the friend was
//! bound under), as bonus credits through the ledger, keyed to the charge — so it is given
//! exactly once per charge, in the transaction that credits it — and told to the referrer in
//! their language. The refund of a charge takes the reward back where unspent (the ledger's
//! `refund_commit`).

use sqlx::PgConnection;

use crate::db::growth;
use crate::domain::growth::referral_reward;
use crate::domain::Credits;
use crate::ledger::{self, BonusSource, Entry};
use crate::outbox;
use crate::texts::{render, Lang};

/// Rewards the referrer of the payer of charge `payment_id`, which `credited` (the charge's
/// `topup` row) has just credited in this transaction. Nothing without a referrer.
pub async fn reward(conn: &mut PgConnection, payment_id: i64, credited: &Entry) -> sqlx::Result<()> {
    let friend = credited.user_id;
    let Some((referrer, terms)) = growth::lock_referrer(conn, friend).await? else {
        return Ok(());
    };
    let earlier: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM payments p
                        WHERE p.user_id = $1 AND p.id <> $2 AND p.processed_at IS NOT NULL)",
    )
    .bind(friend)
    .bind(payment_id)
    .fetch_one(&mut *conn)
    .await?;
    let credits = referral_reward(!earlier, credited.amount, terms.bonus, terms.percent);
    let Ok(credits) = Credits::new(credits) else {
        return Ok(());
    };
    let key = format!("referral:{payment_id}");
    let reason = format!("friend {friend}, payment {payment_id}");
    let granted =
        match ledger::grant_bonus(conn, referrer, credits, BonusSource::Referral, &key, &reason).await {
            Ok(granted) => granted,
            Err(ledger::LedgerError::Db(e)) => return Err(e),
            Err(other) => {
                tracing::error!(referrer, payment_id, error = %other, "referral reward refused");
                return Ok(());
            }
        };
    if granted.applied().is_none() {
        return Ok(());
    }
    tracing::info!(referrer, friend, payment_id, credits = credits.get(), "referral reward");
    let lang = crate::db::users::language(&mut *conn, referrer).await?.unwrap_or(Lang::Ru);
    let key = if earlier { "referral_reward_percent" } else { "referral_reward_first" };
    let text = render(lang, key, &[("credits", &credits.to_string())]);
    outbox::send_text(conn, referrer, &text, None).await?;
    Ok(())
}
