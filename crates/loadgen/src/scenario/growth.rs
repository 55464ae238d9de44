//! Growth in the scenario (DESIGN §10): users who join by a friend's referral link, redeem promo
//! codes (an open one, one with three uses, an expired one, made-up ones; some twice), ask for
//! their invite link, and an admin who runs a broadcast in the middle of the chaos. The end
//! checks hold the bonus rules against what happened: each code used at most its limit and
//! exactly as often as it gave credits, at most once per user; each referral reward for a
//! succeeded charge of a friend bound to that referrer, at most once per charge; starter
//! credits once per account; nobody sent a broadcast twice.

use std::sync::Arc;

use fakes::telegram::users;

use super::system::{System, ADMIN};
use super::users::Crowd;

/// The codes the operator creates before the users act (`nanobanana admin promo create`).
pub const CODES: [(&str, &str); 3] = [("scen-open", "100000"), ("scen-few", "3"), ("scen-old", "100000")];
/// What users type: the codes above, in any case, and a guess.
const TYPED: [&str; 5] = ["scen-open", "SCEN-FEW", "scen-old", "Scen-Open", "nosuchcode"];

/// Creates the promo codes through the CLI; `scen-old` is then expired.
pub async fn setup(system: &System) -> anyhow::Result<()> {
    for (code, uses) in CODES {
        let out = system
            .operator(&["admin", "promo", "create", "--code", code, "--credits", "5", "--uses", uses])
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "promo create {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    sqlx::query("UPDATE promo_codes SET expires_at = now() - interval '1 minute' WHERE code = 'scen-old'")
        .execute(&system.pool)
        .await?;
    Ok(())
}

/// The admin's broadcast to everyone, composed and confirmed in the bot.
pub fn broadcast(crowd: &mut Crowd, system: &System) {
    let profile = users::UserProfile { language_code: Some("en".into()), ..Default::default() };
    let state = system.tg.state();
    let text = "new <b>Scenario news</b>: a broadcast in the middle of the chaos";
    crowd.record(users::command(state, ADMIN, &profile, "broadcast", Some(text)));
    crowd.record(users::command(state, ADMIN, &profile, "broadcast", Some("confirm")));
    crowd.flow("broadcast_started");
}

impl Crowd {
    /// A first `/start`, now and then with a referral link of a user who asked for theirs.
    pub(super) async fn start_maybe_referred(
        &mut self,
        system: &Arc<System>,
        index: usize,
    ) -> anyhow::Result<()> {
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        let code: Option<String> = if !self.users[index].started && self.rng.percent(40) {
            sqlx::query_scalar(
                "SELECT code FROM referral_codes WHERE user_id <> $1 ORDER BY random() LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&system.pool)
            .await?
        } else {
            None
        };
        let link = code.map(|c| format!("ref_{c}"));
        if link.is_some() {
            self.flow("referral_link_used");
        }
        self.record(users::command(system.tg.state(), id, &profile, "start", link.as_deref()));
        self.users[index].started = true;
        Ok(())
    }

    /// `/invite` or `/promo CODE` (a code typed twice now and then).
    pub(super) fn growth_action(&mut self, system: &System, index: usize, invite: bool) {
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        let state = system.tg.state();
        if invite {
            self.record(users::command(state, id, &profile, "invite", None));
            return;
        }
        let code = *self.rng.pick(&TYPED);
        self.record(users::command(state, id, &profile, "promo", Some(code)));
        if self.rng.percent(20) {
            self.record(users::command(state, id, &profile, "promo", Some(code)));
            self.flow("promo_twice");
        }
    }
}

/// The bonus rules at the end of a run.
pub async fn check(system: &System, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let checks = [
        (
            "promo codes used beyond their limit or not as often as they gave credits",
            "SELECT COUNT(*) FROM promo_codes c
             WHERE c.used > c.max_uses
                OR c.used <> (SELECT COUNT(*) FROM promo_redemptions r WHERE r.code_id = c.id)
                OR c.used <> (SELECT COUNT(*) FROM transactions t
                              WHERE t.type = 'bonus' AND t.actor = 'promo' AND t.idempotency_key LIKE 'promo:' || c.id || ':%')",
        ),
        (
            "promo credits from an expired code",
            "SELECT COUNT(*) FROM promo_redemptions r JOIN promo_codes c ON c.id = r.code_id
             WHERE c.expires_at IS NOT NULL AND r.redeemed_at >= c.expires_at",
        ),
        (
            "referral rewards not for a succeeded charge of a friend bound to the referrer",
            "SELECT COUNT(*) FROM transactions t
             LEFT JOIN payments p ON t.idempotency_key = 'referral:' || p.id
             LEFT JOIN referrals r ON r.friend_id = p.user_id AND r.referrer_id = t.user_id
             WHERE t.type = 'bonus' AND t.actor = 'referral' AND (r.friend_id IS NULL OR p.status <> 'succeeded')",
        ),
        (
            "users with more than one starter grant",
            "SELECT COUNT(*) FROM (SELECT user_id FROM transactions WHERE type = 'bonus' AND actor = 'starter'
                                   GROUP BY user_id HAVING COUNT(*) > 1) s",
        ),
        (
            "recipients queued a broadcast twice",
            "SELECT COUNT(*) FROM (SELECT o.chat_id FROM broadcast_recipients r JOIN outbox o ON o.id = r.outbox_id
                                   GROUP BY r.broadcast_id, o.chat_id HAVING COUNT(*) > 1) d",
        ),
    ];
    for (what, sql) in checks {
        let n = system.count(sql).await?;
        if n > 0 {
            problems.push(format!("{what}: {n}"));
        }
    }
    // Nobody has the broadcast twice in their chat.
    let twice = system
        .tg
        .state()
        .lock()
        .chats
        .iter()
        .filter(|(_, chat)| {
            chat.messages.values().filter(|m| m.text().is_some_and(|t| t.contains("Scenario news"))).count()
                > 1
        })
        .count();
    if twice > 0 {
        problems.push(format!("{twice} chats got the broadcast twice"));
    }
    Ok(())
}
