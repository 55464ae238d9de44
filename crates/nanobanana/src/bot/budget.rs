//! The per-user reply budget (DESIGN §10 "Chatter must not starve paid deliveries"): at most
//! `REPLY_BUDGET_PER_MINUTE` of a user's messages a minute are answered; the rest are recorded
//! and left unanswered, so one user's flood cannot fill Telegram's 30 messages a second. The
//! counters live in Redis (shared by every `serve`, rebuilt from nothing); if Redis does not
//! answer, every message is answered.

use redis::aio::ConnectionManager;

pub struct ReplyBudget {
    conn: ConnectionManager,
    prefix: String,
    per_minute: u32,
}

impl ReplyBudget {
    /// `per_minute` 0: no limit.
    pub fn new(conn: ConnectionManager, prefix: &str, per_minute: u32) -> Self {
        Self { conn, prefix: prefix.to_owned(), per_minute }
    }

    /// Gives back a reply `spend` took for a delivery that turned out to be a repeat (best
    /// effort: a lost give-back costs the user one reply this minute).
    pub async fn give_back(&self, user: i64) {
        if self.per_minute == 0 {
            return;
        }
        let key = format!("{}replies:{user}:{}", self.prefix, minute());
        let mut conn = self.conn.clone();
        let back: Result<i64, _> = redis::cmd("DECR").arg(&key).query_async(&mut conn).await;
        if let Err(e) = back {
            tracing::warn!(error = %e, "reply budget: could not give a reply back");
        }
    }

    /// Spends one reply of `user`'s budget for this minute; whether there was one left.
    pub async fn spend(&self, user: i64) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let key = format!("{}replies:{user}:{}", self.prefix, minute());
        let mut conn = self.conn.clone();
        let counted: Result<(i64,), _> =
            redis::pipe().atomic().incr(&key, 1).expire(&key, 120).ignore().query_async(&mut conn).await;
        match counted {
            Ok((n,)) => n <= i64::from(self.per_minute),
            Err(e) => {
                tracing::warn!(error = %e, "reply budget unavailable; answering");
                true
            }
        }
    }
}

/// The current minute since the epoch: the budget's window.
fn minute() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}
