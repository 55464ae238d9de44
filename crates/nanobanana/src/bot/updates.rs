//! The update's row (`telegram_updates`, owned here): the claim that records an update once,
//! where it stands after its transaction, and the pruning of old rows.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::BotError;

/// Records where the update stands after its transaction: handled, or waiting for its
/// external `step` (`buy::After`, as JSON).
pub(super) async fn record_step(
    conn: &mut PgConnection,
    update_id: i64,
    step: Option<&Value>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE telegram_updates SET state = CASE WHEN $2::JSONB IS NULL THEN 'handled' ELSE 'received' END,
                handled_at = CASE WHEN $2::JSONB IS NULL THEN now() END, step = $2::JSONB::TEXT
         WHERE update_id = $1",
    )
    .bind(update_id)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) enum Claim {
    /// To handle now; `inserted`: by this delivery, and already marked handled (the mark
    /// commits with the effects or not at all).
    New {
        inserted: bool,
    },
    /// Handled up to an external step (`payments::bot::After`, as JSON) still to run.
    Resume(String),
    Handled,
}

/// Records the update and says how far it got. Holding the row lock, concurrent deliveries of
/// the same update wait here for the first to finish. An `update_id` already known with another
/// body is a new update (DESIGN §10: Telegram restarts its ids at random after a quiet week, and
/// a second bot on the database has ids of its own): the old, handled row gives way to it.
pub(super) async fn claim(
    conn: &mut PgConnection,
    update_id: i64,
    kind: &str,
    raw: &Value,
) -> Result<Claim, BotError> {
    // A first delivery (the common case) inserts the row and holds its lock in one round trip.
    // It is written as handled: it commits together with the update's effects or not at all,
    // and concurrent deliveries wait on it until then.
    let inserted: bool = sqlx::query_scalar("SELECT intake_claim($1, $2, $3)")
        .bind(update_id)
        .bind(kind)
        .bind(raw)
        .fetch_one(&mut *conn)
        .await?;
    if inserted {
        return Ok(Claim::New { inserted: true });
    }
    let (state, step, same): (String, Option<String>, bool) = sqlx::query_as(
        "SELECT state, step, body_md5 = md5($2::JSONB::TEXT) FROM telegram_updates WHERE update_id = $1 FOR UPDATE",
    )
    .bind(update_id)
    .bind(raw)
    .fetch_one(&mut *conn)
    .await?;
    if !same {
        if state != "handled" {
            // The earlier update of this id still has a step to finish (the resumer does):
            // this one is taken when Telegram delivers it again.
            return Err(BotError::Retry(format!("update id {update_id} reused before its step finished")));
        }
        tracing::info!(update_id, kind, "known update id with another body: a new update");
        sqlx::query(
            "UPDATE telegram_updates SET kind = $3, body_md5 = md5($2::JSONB::TEXT), state = 'handled',
                    step = NULL, step_tried_at = NULL, error = NULL, received_at = now(), handled_at = now()
             WHERE update_id = $1",
        )
        .bind(update_id)
        .bind(raw)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
        return Ok(Claim::New { inserted: true });
    }
    Ok(match (state.as_str(), step) {
        ("handled", _) => Claim::Handled,
        (_, Some(step)) => Claim::Resume(step),
        _ => Claim::New { inserted: false },
    })
}

/// Forgets handled updates received more than `age` ago (Telegram repeats an update for at
/// most 24 h), at most `limit` a pass; how many.
pub async fn prune(pool: &PgPool, age: std::time::Duration, limit: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM telegram_updates WHERE update_id IN (
             SELECT update_id FROM telegram_updates
             WHERE state = 'handled' AND received_at < now() - make_interval(secs => $1) LIMIT $2)",
    )
    .bind(age.as_secs_f64())
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
