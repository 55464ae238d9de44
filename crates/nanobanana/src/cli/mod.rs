//! The command line (DESIGN §2, L6): `nanobanana <command>`. Each command loads the
//! configuration its role needs, sets up logging and calls into the library; every operator
//! command lives here (`admin`, `refund`, `health`). Exit codes: 0 success, 1 the command found
//! a problem (audit violations, refused action), 2 bad configuration or arguments.

pub mod admin;
pub mod health;
pub mod promo;
pub mod refund;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sqlx::PgPool;

use crate::config::{Config, Role};
use crate::db;
use crate::domain::{Credits, TelegramId};
use crate::ledger::{Direction, Reason};
use crate::shutdown;

#[derive(Debug, Parser)]
#[command(name = "nanobanana", version, about = "Nano Banana Pro: image generation for credits, on Telegram")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The bot service: Telegram webhook, update handling, outbox sender (LISTEN_ADDR).
    Serve,
    /// The generation worker: claims queued generations, calls Gemini, stores and settles.
    Worker,
    /// `serve` and `worker` in one process: the default for a single machine.
    Run,
    /// Apply pending database migrations (creating the database if needed).
    Migrate,
    /// Check the ledger guarantees over the whole database; exit 1 on any violation.
    Audit {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Operator actions.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print a fresh random TELEGRAM_WEBHOOK_SECRET (64 characters; also fit for METRICS_TOKEN).
    WebhookSecret,
    /// Healthcheck for containers: exit 0 when `serve`'s /readyz on this machine answers 200,
    /// or with `--deps` (for `worker`) when PostgreSQL and Redis answer; 1 otherwise.
    Health {
        /// Check PostgreSQL and Redis instead of the HTTP readiness.
        #[arg(long)]
        deps: bool,
        /// The readiness URL (default: http://127.0.0.1:<LISTEN_ADDR's port>/readyz).
        #[arg(long)]
        url: Option<String>,
    },
    /// Everything on one machine with no tokens: the service, fake Telegram, Gemini and
    /// YooKassa, and a web chat to use the bot (needs only Postgres and Redis).
    #[cfg(feature = "sandbox")]
    Sandbox(SandboxArgs),
}

#[cfg(feature = "sandbox")]
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Where the web chat listens.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: std::net::SocketAddr,
    /// The sandbox's own database on DATABASE_URL's server, emptied at every start.
    #[arg(long, default_value = "nanobanana_sandbox")]
    pub database: String,
    /// Added to every fake Gemini call, so status messages visibly change.
    #[arg(long, default_value_t = 1500)]
    pub gemini_latency_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add credits to a user's available balance.
    Grant(AdjustArgs),
    /// Take credits from a user's available balance (never below zero).
    Deduct(AdjustArgs),
    /// Show a user's balance and recent movements.
    Show {
        #[arg(long, value_name = "TELEGRAM_ID")]
        user: TelegramId,
        /// How many recent movements to list.
        #[arg(long, default_value_t = 10)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Refund a topup in two phases: hold its unspent credits, ask the provider, commit or release.
    Refund(refund::RefundArgs),
    /// Promo codes: create, list, disable.
    #[command(subcommand)]
    Promo(promo::PromoCommand),
}

#[derive(Debug, Args)]
pub struct AdjustArgs {
    #[arg(long, value_name = "TELEGRAM_ID")]
    pub user: TelegramId,
    /// A positive whole number.
    #[arg(long, value_parser = parse_credits, allow_negative_numbers = true)]
    pub credits: Credits,
    /// Why, for the journal.
    #[arg(long, value_parser = parse_reason)]
    pub reason: Reason,
    /// Repeating a command with the same key does nothing the second time (default: a new key).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn parse_credits(text: &str) -> Result<Credits, String> {
    Credits::parse(text).map_err(|e| e.to_string())
}

fn parse_reason(text: &str) -> Result<Reason, String> {
    Reason::parse(text).map_err(|e| e.to_string())
}

/// A fresh secret of 64 characters from the operating system's random source (two v4 UUIDs'
/// 122 random bits each, hex): well past `MIN_WEBHOOK_SECRET` and in Telegram's alphabet.
pub fn fresh_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Runs a parsed command line to its exit code.
pub async fn run(cli: Cli) -> ExitCode {
    if let Command::WebhookSecret = cli.command {
        // Needs no configuration at all: it is what one runs before writing one.
        println!("{}", fresh_secret());
        return ExitCode::SUCCESS;
    }
    let role = match cli.command {
        Command::Serve => Role::Serve,
        Command::Worker => Role::Worker,
        Command::Run => Role::Run,
        _ => Role::Tool,
    };
    let loaded = match &cli.command {
        // Only where Postgres and Redis are: a real token in the environment is never used.
        #[cfg(feature = "sandbox")]
        Command::Sandbox(_) => Config::from_lookup(role, &crate::sandbox::outside_env),
        _ => Config::from_env(role),
    };
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::telemetry::init(&config.log) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match execute(cli.command, &config).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) async fn pool(config: &Config) -> anyhow::Result<PgPool> {
    let pool = db::connect(&config.database).await?;
    if config.database.auto_migrate {
        db::migrate(&pool).await?;
    }
    Ok(pool)
}

async fn execute(command: Command, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            let listener = listen(config).await?;
            let stop = shutdown::signal();
            let serve = crate::service::serve(config.clone(), listener, stop.clone());
            shutdown::within_grace(serve, stop, config.shutdown_grace).await?;
        }
        Command::Worker => {
            let stop = shutdown::signal();
            let work = crate::service::work(config, stop.clone());
            shutdown::within_grace(work, stop, config.shutdown_grace).await?;
        }
        Command::Run => {
            let listener = listen(config).await?;
            let stop = shutdown::signal();
            let both = crate::service::run_both(config, listener, stop.clone());
            shutdown::within_grace(both, stop, config.shutdown_grace).await?;
        }
        Command::Migrate => {
            let pool = db::connect_creating(&config.database).await?;
            db::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Audit { json } => return audit(config, json).await,
        Command::Health { deps, url } => {
            let (healthy, line) = health::check(config, deps, url).await;
            println!("{line}");
            if !healthy {
                return Ok(ExitCode::FAILURE);
            }
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => {
            let latency = std::time::Duration::from_millis(args.gemini_latency_ms);
            let (database, redis) = (config.database.url.expose(), config.redis.url.expose());
            let stop = shutdown::signal();
            crate::sandbox::run_cli(args.listen, &args.database, database, redis, latency, stop).await?;
        }
        Command::Admin(command) => return admin(config, command).await,
        Command::WebhookSecret => println!("{}", fresh_secret()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn listen(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {} (LISTEN_ADDR)", config.listen_addr))
}

/// `nanobanana audit`: exit 1 on any violation.
async fn audit(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let pool = pool(config).await?;
    let mut conn = pool.acquire().await?;
    let report = crate::db::runs::run_audit(&mut conn, "cli").await.context("running the audit")?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `nanobanana admin …`.
async fn admin(config: &Config, command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Grant(args) => adjust(config, Direction::Grant, args).await?,
        AdminCommand::Deduct(args) => adjust(config, Direction::Deduct, args).await?,
        AdminCommand::Refund(args) => return refund::run(config, &pool(config).await?, args).await,
        AdminCommand::Promo(command) => return promo::run(config, command).await,
        AdminCommand::Show { user, limit, json } => {
            let pool = pool(config).await?;
            let report = admin::show(&mut *pool.acquire().await?, user, limit).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn adjust(config: &Config, direction: Direction, args: AdjustArgs) -> anyhow::Result<()> {
    let pool = pool(config).await?;
    let login = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let actor = format!("cli:{login}");
    let key = args.idempotency_key.unwrap_or_else(|| format!("cli:{}", uuid::Uuid::new_v4()));
    let request = crate::ledger::Adjustment {
        user_id: args.user,
        direction,
        credits: args.credits,
        reason: &args.reason,
        actor: &actor,
        idempotency_key: &key,
    };
    let result = admin::adjust(&mut *pool.acquire().await?, &request).await?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else if let Some(entry) = &result.entry {
        println!(
            "{} {} credits for user {}: available {}, reserved {} (journal #{})",
            if direction == Direction::Grant { "granted" } else { "deducted" },
            entry.amount,
            entry.user_id,
            entry.available_after,
            entry.reserved_after,
            entry.id
        );
    } else {
        println!("already applied under idempotency key {key:?}; nothing changed");
    }
    Ok(())
}
