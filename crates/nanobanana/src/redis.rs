//! Connecting to Redis (DESIGN §5: signals and limiter state only, nothing that cannot be
//! rebuilt from Postgres). Errors name `REDIS_URL` and never carry the URL, whose password
//! stays inside `Secret`.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisConfig;

/// How long a command may take before the connection gives up on it ...
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// ... and how long a blocking read may block (`connect_blocking` allows for it).
pub const MAX_BLOCK: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The causes are Redis' messages with the URL's password (if any) blanked out.
#[derive(Debug, thiserror::Error)]
pub enum RedisConnectError {
    #[error("REDIS_URL is not a usable Redis URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to Redis (REDIS_URL): {0}")]
    Connect(String),
}

/// A self-reconnecting, multiplexed connection for ordinary commands. Cheap to clone.
pub async fn connect(config: &RedisConfig) -> Result<ConnectionManager, RedisConnectError> {
    manager(config, RESPONSE_TIMEOUT).await
}

/// A connection of its own for blocking reads (`XREADGROUP … BLOCK`): a blocked command holds
/// up everything behind it on a multiplexed connection, and needs a longer response timeout.
pub async fn connect_blocking(config: &RedisConfig) -> Result<ConnectionManager, RedisConnectError> {
    manager(config, MAX_BLOCK + Duration::from_secs(2)).await
}

async fn manager(config: &RedisConfig, response: Duration) -> Result<ConnectionManager, RedisConnectError> {
    let url = config.url.expose();
    let client =
        ::redis::Client::open(url.as_str()).map_err(|e| RedisConnectError::BadUrl(redact(url, &e)))?;
    let options = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_with_config(client, options)
        .await
        .map_err(|e| RedisConnectError::Connect(redact(url, &e)))
}

/// `error`'s text without `url`'s password or the URL itself.
fn redact(url: &url::Url, error: &::redis::RedisError) -> String {
    let mut text = error.to_string().replace(url.as_str(), "[REDIS_URL]");
    if let Some(password) = url.password().filter(|p| !p.is_empty()) {
        text = text.replace(password, "[redacted]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[tokio::test]
    async fn a_failed_connection_names_the_variable_and_hides_the_password() {
        let url = url::Url::parse("redis://user:hunter2secret@127.0.0.1:1/0").expect("a URL");
        let config = RedisConfig { url: Secret::new(url), prefix: "t:".into() };
        let error = connect(&config).await.expect_err("nothing listens on port 1");
        let text = format!("{error} {error:?}");
        assert!(text.contains("REDIS_URL"), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }
}
