//! `nanobanana health`: a container healthcheck that needs no curl in the image. By default it
//! asks this machine's `serve` (or `run`) for `/readyz`, which answers 503 while the process
//! shuts down; with `--deps` (for `worker`, which serves no HTTP) it checks that PostgreSQL and
//! Redis answer. Exit 0 healthy, 1 not; one line on stdout says why.

use std::time::Duration;

use anyhow::Context;
use sqlx::Connection;

use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the deployment looks healthy from here, and a line saying what was seen.
pub async fn check(config: &Config, deps: bool, url: Option<String>) -> (bool, String) {
    let result = if deps { dependencies(config).await } else { ready(config, url).await };
    match result {
        Ok(line) => (true, line),
        Err(e) => (false, format!("{e:#}")),
    }
}

async fn ready(config: &Config, url: Option<String>) -> anyhow::Result<String> {
    let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{}/readyz", config.listen_addr.port()));
    let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let answer = client.get(&url).send().await.with_context(|| format!("{url} does not answer"))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "{url}: {status} {body}");
    Ok(format!("{url}: {body}"))
}

async fn dependencies(config: &Config) -> anyhow::Result<String> {
    let options = crate::db::options(config.database.url.expose())?;
    let mut conn = tokio::time::timeout(TIMEOUT, sqlx::PgConnection::connect_with(&options))
        .await
        .context("PostgreSQL (DATABASE_URL) did not answer in time")?
        .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
    sqlx::query("SELECT 1").execute(&mut conn).await.context("PostgreSQL (DATABASE_URL)")?;
    let _ = conn.close().await;
    let mut redis = tokio::time::timeout(TIMEOUT, crate::redis::connect(&config.redis))
        .await
        .context("Redis (REDIS_URL) did not answer in time")??;
    let _: String = redis::cmd("PING").query_async(&mut redis).await.context("Redis (REDIS_URL)")?;
    Ok("postgres ok, redis ok".to_owned())
}
