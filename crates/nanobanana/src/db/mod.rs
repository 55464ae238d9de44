//! The database (DESIGN §2, L2): connecting (creating the database only for `migrate` and the
//! sandbox), migrations, and the owners of the tables that are neither money nor jobs nor the
//! conversation: `users` (`db::users`), orders and provider charges (`db::payments`), who may
//! get growth credits (`db::growth`: starter claims, referrals, promo codes). The
//! ledger owns `balances`, `transactions`, `refunds` and `credit_debts`; `jobs` owns
//! `generations` and `service_state`; `outbox` its table; `bot` the updates and albums;
//! `payments` its audit trail and dashboard refunds; the operator panel's links, sessions and
//! actions (`db::panel`); the last passes of the background processes (`db::runs`). Never
//! moves credits.

pub mod growth;
pub mod panel;
pub mod payments;
pub mod runs;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::config::DatabaseConfig;

/// The migrations in `crates/nanobanana/migrations`, embedded in the binary. Migrations
/// newer than this binary are tolerated, so an older process can keep running beside a newer
/// one during a rolling deploy.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

const DUPLICATE_DATABASE: &str = "42P04";
const UNIQUE_VIOLATION: &str = "23505";
const INVALID_CATALOG_NAME: &str = "3D000";

/// Whether `error` is Postgres reporting `code` (a SQLSTATE).
pub fn is_db_error(error: &sqlx::Error, code: &str) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|c| c == code)
}

/// Connects a pool to `config.url`. A database that does not exist is an error, never
/// created here: a mistyped `DATABASE_URL` must not start a service on an empty database.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options = options(config.url.expose())?;
    match PgConnection::connect_with(&options).await {
        Ok(conn) => conn.close().await.context("closing the probe connection")?,
        Err(e) if is_db_error(&e, INVALID_CATALOG_NAME) => anyhow::bail!(
            "database {:?} does not exist (DATABASE_URL); check the name, or create it with `nanobanana migrate`",
            options.get_database().unwrap_or("")
        ),
        Err(e) => return Err(e).context("cannot connect to the database (DATABASE_URL)"),
    }
    pool(config, options).await
}

/// As `connect`, creating the database first if it does not exist: only for `migrate` and
/// the sandbox, where creating it is what the operator asked for.
pub async fn connect_creating(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options = options(config.url.expose())?;
    ensure_database(&options).await?;
    pool(config, options).await
}

async fn pool(config: &DatabaseConfig, options: PgConnectOptions) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // No ping before each acquire: it is a round trip per transaction (a ninth of the
        // ledger's throughput). A connection that died is found by the query that uses it;
        // its error fails that one request, which is retried as any failed request is.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .context("cannot connect to the database (DATABASE_URL)")
}

pub fn options(url: &url::Url) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = url.as_str().parse().context("DATABASE_URL is not a Postgres URL")?;
    Ok(options.log_statements(tracing::log::LevelFilter::Trace))
}

/// Creates the database named in `options` unless it exists; safe to race.
pub async fn ensure_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    match PgConnection::connect_with(options).await {
        Ok(conn) => return conn.close().await.context("closing the probe connection"),
        Err(e) if is_db_error(&e, INVALID_CATALOG_NAME) => {}
        Err(e) => return Err(e).context("cannot connect to the database (DATABASE_URL)"),
    }
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("cannot connect to the `postgres` database to create ours")?;
    let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match sqlx::query(&create).execute(&mut admin).await {
        Ok(_) => tracing::info!(database = %name, "created the database"),
        Err(e) if is_db_error(&e, DUPLICATE_DATABASE) || is_db_error(&e, UNIQUE_VIOLATION) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create database {name}")),
    }
    admin.close().await.context("closing the admin connection")
}

/// Applies pending migrations (under Postgres' advisory lock, so concurrent starts are safe).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    migrator().run(pool).await.context("applying migrations")
}
