//! Settings of a fake Telegram: token, bot identity, webhook timing and pacing.

use std::net::SocketAddr;
use std::time::Duration;

/// How a [`super::FakeTelegram`] behaves. `Default` listens on 127.0.0.1 port 0.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub listen: SocketAddr,
    /// The only token the fake accepts, `<bot id>:<secret>`.
    pub token: String,
    pub bot_username: String,
    pub bot_first_name: String,
    /// Answer 429 when the bot exceeds ~1 message/s per chat (bursts of 3) or 30/s overall.
    pub strict_pace: bool,
    /// How long a webhook POST may take before it counts as failed (Telegram: about 60 s).
    pub webhook_timeout: Duration,
    /// Wait before sending a failed update again.
    pub webhook_retry_delay: Duration,
    /// Time the bot has to answer a pre_checkout_query (Telegram: 10 s).
    pub pre_checkout_timeout: Duration,
    /// How long an undelivered update is kept (Telegram: 24 h).
    pub update_ttl: Duration,
    /// Updates kept at most; beyond that new updates are dropped.
    pub max_pending_updates: usize,
    /// Bytes of files kept in memory at most.
    pub max_file_bytes: usize,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "123456789:TEST-fake-token_abcdefghijklmnopqrstu".into(),
            bot_username: "nanobanana_test_bot".into(),
            bot_first_name: "Nano Banana".into(),
            strict_pace: false,
            webhook_timeout: Duration::from_secs(60),
            webhook_retry_delay: Duration::from_millis(500),
            pre_checkout_timeout: Duration::from_secs(10),
            update_ttl: Duration::from_secs(24 * 3600),
            max_pending_updates: 100_000,
            max_file_bytes: 1 << 30,
        }
    }
}
