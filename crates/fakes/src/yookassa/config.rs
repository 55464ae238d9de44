//! Settings of a fake YooKassa: credentials, where notifications go and from which address,
//! their retry schedule, idempotence memory and the payment confirmation deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct YooKassaConfig {
    pub listen: SocketAddr,
    pub shop_id: String,
    pub secret_key: String,
    /// Where notifications are POSTed; `None` sends none (they are still recorded).
    pub notification_url: Option<String>,
    /// Local address notifications leave from, e.g. 127.0.0.2 to look like another host.
    pub source_address: Option<IpAddr>,
    /// Base of `confirmation_url`; defaults to the listening address.
    pub public_url: Option<String>,
    /// Waits between notification attempts; the last one repeats.
    pub retry_delays: Vec<Duration>,
    /// A notification is given up after this many attempts (YooKassa: 24 h of retries).
    pub max_notification_attempts: u32,
    /// How long a notification POST may take.
    pub notification_timeout: Duration,
    /// How long Idempotence-Key answers are remembered (YooKassa: 24 h).
    pub idempotence_ttl: Duration,
    /// A pending payment not paid within this becomes canceled `expired_on_confirmation`.
    pub confirmation_expiry: Duration,
    /// How long a "timeout" fault keeps the request hanging before answering 500.
    pub hang: Duration,
}

impl Default for YooKassaConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            shop_id: "123456".into(),
            secret_key: "test_fake_secret".into(),
            notification_url: None,
            source_address: None,
            public_url: None,
            retry_delays: [50, 100, 200, 500, 1000, 2000].map(Duration::from_millis).to_vec(),
            max_notification_attempts: 1000,
            notification_timeout: Duration::from_secs(10),
            idempotence_ttl: Duration::from_secs(24 * 3600),
            confirmation_expiry: Duration::from_secs(3600),
            hang: Duration::from_secs(120),
        }
    }
}
