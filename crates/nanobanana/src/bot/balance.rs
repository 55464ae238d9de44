//! A user's balance as the bot shows it: available and reserved, the bonus part, and the
//! latest journal rows.

use sqlx::PgConnection;

use super::BotError;
use crate::texts::{render, render_html, Lang};

/// (available, reserved); zeros for an unknown user.
pub async fn of(conn: &mut PgConnection, user: i64) -> Result<(i64, i64), BotError> {
    let b = crate::ledger::balance(conn, user).await?;
    Ok(b.map_or((0, 0), |b| (b.credits_available, b.credits_reserved)))
}

pub async fn text(conn: &mut PgConnection, lang: Lang, user: i64) -> Result<String, BotError> {
    let (available, reserved) = of(conn, user).await?;
    let mut text = render(
        lang,
        "balance",
        &[("available", &available.to_string()), ("reserved", &reserved.to_string())],
    );
    let bonus = crate::ledger::balance(conn, user).await?.map_or(0, |b| b.bonus_available);
    if bonus > 0 {
        text.push('\n');
        text.push_str(&render_html(lang, "balance_bonus", &[("bonus", &bonus.to_string())]));
    }
    text.push_str("\n\n");
    text.push_str(&recent_movements(conn, lang, user, 5).await?);
    Ok(text)
}

/// The user's last `limit` journal rows, one a line, with a title.
pub async fn recent_movements(
    conn: &mut PgConnection,
    lang: Lang,
    user: i64,
    limit: i64,
) -> Result<String, BotError> {
    let recent: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT type, delta_available, balance_after FROM transactions WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    if recent.is_empty() {
        return Ok(render(lang, "balance_history_empty", &[]));
    }
    let mut text = render(lang, "balance_history_title", &[]);
    for (kind, delta, after) in recent {
        text.push_str(&format!("\n{} {delta:+} → {after}", render(lang, &format!("kind_{kind}"), &[])));
    }
    Ok(text)
}
