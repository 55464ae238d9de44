//! The `fakes` command line, the top of the crate: parses options into each fake's config and
//! runs that fake until Ctrl-C. Nothing in the crate imports this module.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::gemini::{FakeGemini, GeminiConfig};
use crate::telegram::{FakeTelegram, TelegramConfig};
use crate::yookassa::{FakeYooKassa, YooKassaConfig};

#[derive(Debug, Parser)]
#[command(name = "fakes", about = "Fake Telegram Bot API, Gemini and YooKassa servers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Telegram Bot API at /bot{token}/{method}, control API at /_fake/.
    Telegram(TelegramArgs),
    /// The Gemini API at /v1beta/models, control API at /_fake/.
    Gemini(GeminiArgs),
    /// The YooKassa API at /v3/, checkout pages at /checkout/, control API at /_fake/.
    Yookassa(YooKassaArgs),
}

#[derive(Debug, Args)]
pub struct TelegramArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    #[arg(
        long,
        env = "FAKE_TELEGRAM_TOKEN",
        default_value = "123456789:TEST-fake-token_abcdefghijklmnopqrstu"
    )]
    pub token: String,
    #[arg(long, default_value = "nanobanana_test_bot")]
    pub username: String,
    /// Answer 429 beyond ~1 message/s per chat or 30/s overall.
    #[arg(long)]
    pub strict_pace: bool,
    /// Seconds a webhook POST may take before it is retried.
    #[arg(long, default_value_t = 60)]
    pub webhook_timeout_secs: u64,
    /// Milliseconds between deliveries of a failed update.
    #[arg(long, default_value_t = 500)]
    pub webhook_retry_ms: u64,
}

#[derive(Debug, Args)]
pub struct GeminiArgs {
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    #[arg(long, env = "FAKE_GEMINI_API_KEY", default_value = "fake-gemini-key")]
    pub api_key: String,
    /// Small images (about 64 px) for benchmarks.
    #[arg(long)]
    pub small: bool,
    /// png, jpeg or mixed (Gemini's mime type varies; mixed picks per request).
    #[arg(long, value_enum, default_value = "mixed")]
    pub image_format: crate::gemini::ImageFormat,
    /// Extra latency added to every generation, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Speak only HTTP/1.1 (by default the port speaks HTTP/1.1 and h2c with prior knowledge).
    #[arg(long)]
    pub http1_only: bool,
    /// HTTP/2 calls one connection may carry at once (Google's servers: 100).
    #[arg(long, default_value_t = crate::gemini::GOOGLE_MAX_STREAMS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
}

#[derive(Debug, Args)]
pub struct YooKassaArgs {
    #[arg(long, default_value = "127.0.0.1:8083")]
    pub listen: SocketAddr,
    #[arg(long, env = "FAKE_YOOKASSA_SHOP_ID", default_value = "123456")]
    pub shop_id: String,
    #[arg(long, env = "FAKE_YOOKASSA_SECRET_KEY", default_value = "test_fake_secret")]
    pub secret_key: String,
    /// Where notifications are POSTed; none when absent.
    #[arg(long)]
    pub notification_url: Option<String>,
    /// Local address notifications are sent from (e.g. 127.0.0.2).
    #[arg(long)]
    pub source_address: Option<std::net::IpAddr>,
    /// The base URL printed in confirmation_url (defaults to http://LISTEN).
    #[arg(long)]
    pub public_url: Option<String>,
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Runs the chosen fake until Ctrl-C or SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Telegram(args) => {
            let fake = FakeTelegram::start(args.into()).await?;
            println!("fake telegram: {}", fake.base_url());
            wait_for_ctrl_c().await
        }
        Command::Gemini(args) => {
            let fake = FakeGemini::start(args.into()).await?;
            println!("fake gemini: {}", fake.base_url());
            wait_for_ctrl_c().await
        }
        Command::Yookassa(args) => {
            let fake = FakeYooKassa::start(args.into()).await?;
            println!("fake yookassa: {}", fake.base_url());
            wait_for_ctrl_c().await
        }
    }
}

impl From<TelegramArgs> for TelegramConfig {
    fn from(args: TelegramArgs) -> Self {
        Self {
            listen: args.listen,
            token: args.token,
            bot_username: args.username,
            strict_pace: args.strict_pace,
            webhook_timeout: Duration::from_secs(args.webhook_timeout_secs),
            webhook_retry_delay: Duration::from_millis(args.webhook_retry_ms),
            ..Self::default()
        }
    }
}

impl From<GeminiArgs> for GeminiConfig {
    fn from(args: GeminiArgs) -> Self {
        Self {
            listen: args.listen,
            api_key: args.api_key,
            small: args.small,
            image_format: args.image_format,
            latency: Duration::from_millis(args.latency_ms),
            http1_only: args.http1_only,
            max_streams: args.max_streams,
            ..Self::default()
        }
    }
}

impl From<YooKassaArgs> for YooKassaConfig {
    fn from(args: YooKassaArgs) -> Self {
        Self {
            listen: args.listen,
            shop_id: args.shop_id,
            secret_key: args.secret_key,
            notification_url: args.notification_url,
            source_address: args.source_address,
            public_url: args.public_url,
            ..Self::default()
        }
    }
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
pub async fn wait_for_ctrl_c() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping");
    Ok(())
}
