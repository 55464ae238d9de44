//! A fresh database of the benchmark's own on the server named by `DATABASE_URL`.

use anyhow::Context;
use sqlx::{Connection, PgConnection};

/// The server's URL (the default developer database when `DATABASE_URL` is unset).
pub fn server_url() -> anyhow::Result<url::Url> {
    let raw =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| nanobanana::config::DEFAULT_DATABASE_URL.to_owned());
    url::Url::parse(&raw).context("DATABASE_URL is not a URL")
}

/// Drops and recreates database `name`; returns its URL.
pub async fn fresh_database(name: &str) -> anyhow::Result<url::Url> {
    let mut admin_url = server_url()?;
    admin_url.set_path("/postgres");
    let mut admin =
        PgConnection::connect(admin_url.as_str()).await.context("connecting to the postgres database")?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
    admin.close().await?;
    let mut url = server_url()?;
    url.set_path(&format!("/{name}"));
    Ok(url)
}

/// Starts the next measurement from a fresh checkpoint, so that neither it nor the reference
/// inherits the other's pending writes. Needs superuser rights; skipped without them.
pub async fn checkpoint(url: &url::Url) {
    if let Ok(mut conn) = PgConnection::connect(url.as_str()).await {
        let _ = sqlx::raw_sql("CHECKPOINT").execute(&mut conn).await;
        let _ = conn.close().await;
    }
}
