//! Growth settings (DESIGN §10): starter credits, referral rewards, the bot's name for links,
//! and the share of Telegram's sending budget a broadcast plans with.

use super::env::Env;
use crate::domain::{Catalog, ImageSize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowthConfig {
    /// `STARTER_CREDITS`: bonus credits at the first `/start` of an account, ever (0: none).
    /// Default: one picture of the default model at its first size.
    pub starter_credits: i64,
    /// `REFERRAL_BONUS`: bonus credits to the referrer when a friend's first payment is credited.
    pub referral_bonus: i64,
    /// `REFERRAL_PERCENT`: percent of each later paid credit of the friend, as bonus (rounded down).
    pub referral_percent: i64,
    /// `BOT_USERNAME`: the bot's Telegram username, for `t.me/<bot>?start=…` links.
    pub bot_username: Option<String>,
    /// `BROADCAST_SHARE_PERCENT`: the share of Telegram's 30 messages/s a broadcast's ETA assumes.
    pub broadcast_share_percent: u32,
}

impl GrowthConfig {
    /// A deep link to the bot with `payload`, or the `/start` command to type without a username.
    pub fn start_link(&self, payload: &str) -> String {
        match &self.bot_username {
            Some(bot) => format!("https://t.me/{bot}?start={payload}"),
            None => format!("/start {payload}"),
        }
    }
}

pub(super) fn growth(env: &mut Env, catalog: &Catalog) -> GrowthConfig {
    let model = catalog.default_model();
    let one_picture = model.price(model.fit_size(ImageSize::K1)).get();
    GrowthConfig {
        starter_credits: env
            .number("STARTER_CREDITS", u32::try_from(one_picture).unwrap_or(0), 0..=100_000)
            .into(),
        referral_bonus: env.number("REFERRAL_BONUS", 10, 0..=100_000).into(),
        referral_percent: env.number("REFERRAL_PERCENT", 10, 0..=100).into(),
        bot_username: env.optional("BOT_USERNAME", |raw: &str| {
            let name = raw.trim().trim_start_matches('@');
            if (5..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(name.to_owned())
            } else {
                Err("a Telegram bot username: 5–32 of A-Za-z0-9_")
            }
        }),
        broadcast_share_percent: env.number("BROADCAST_SHARE_PERCENT", 50, 1..=100),
    }
}
