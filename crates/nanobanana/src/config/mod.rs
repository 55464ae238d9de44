//! Configuration from the environment (DESIGN §6): one typed struct, validated whole at
//! start-up. Every problem names its variable; secrets are `Secret` and never print.
//! `.env.example` at the repository root documents every variable read here.

mod catalog;
mod env;
mod growth;
mod panel;
mod sections;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use env::{ConfigError, ConfigErrors};
pub use growth::GrowthConfig;
pub use panel::PanelConfig;
pub use sections::*;

use crate::domain::{below_cost, BelowCost, Catalog};
use crate::secret::Secret;
use env::{url_with_scheme, Env};

/// The default database on a developer machine: the local Postgres, trust auth.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/nanobanana";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// What the process is going to do, which decides the variables it cannot run without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `migrate`, `audit`, `admin`: the database is enough.
    Tool,
    /// `serve`: talks to Telegram.
    Serve,
    /// `worker`: talks to Gemini.
    Worker,
    /// `run`: both.
    Run,
}

impl Role {
    fn needs_telegram(self) -> bool {
        matches!(self, Role::Serve | Role::Run)
    }

    fn needs_gemini(self) -> bool {
        matches!(self, Role::Worker | Role::Run)
    }

    fn name(self) -> &'static str {
        match self {
            Role::Tool => "tool",
            Role::Serve => "serve",
            Role::Worker => "worker",
            Role::Run => "run",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub listen_addr: SocketAddr,
    pub log: LogConfig,
    pub storage: StorageLocation,
    /// Present when the role needs it or its token is set.
    pub telegram: Option<TelegramConfig>,
    pub gemini: Option<GeminiConfig>,
    /// Absent: ruble payments are off (Stars still work).
    pub yookassa: Option<YooKassaConfig>,
    pub packs: Packs,
    /// The models we sell, their sizes, ratios, prices and costs (`MODEL_CATALOG`).
    pub catalog: Catalog,
    pub pricing: Pricing,
    pub limits: Limits,
    pub operator: OperatorConfig,
    /// Starter credits, referral rewards, links, broadcasts' pace.
    pub growth: GrowthConfig,
    /// After SIGTERM, how long a process may take to finish its in-flight work before it
    /// exits anyway (`SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace: std::time::Duration,
    /// What start-up logs as warnings: deprecated variables and how they were mapped.
    pub warnings: Vec<String>,
    /// Where `GET /metrics` is served and who may read it.
    pub metrics: MetricsConfig,
    /// The operator's web panel; off without `PANEL_SECRET`.
    pub panel: Option<PanelConfig>,
}

/// `/metrics` shows revenue, so it is never public: on its own listener (`METRICS_ADDR`,
/// meant for a private interface) and/or behind `Authorization: Bearer METRICS_TOKEN` on the
/// main one. With neither, the main listener does not serve it.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    pub addr: Option<SocketAddr>,
    pub token: Option<Secret<String>>,
}

fn log(env: &mut Env) -> LogConfig {
    LogConfig {
        format: env.or("LOG_FORMAT", LogFormat::Pretty, |raw| match raw {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is neither pretty nor json")),
        }),
        dir: env.raw("LOG_DIR").map(PathBuf::from),
    }
}

fn metrics(env: &mut Env) -> MetricsConfig {
    MetricsConfig {
        addr: env.optional("METRICS_ADDR", str::parse::<SocketAddr>),
        token: env.optional("METRICS_TOKEN", |raw| {
            if raw.len() >= 32 {
                Ok(Secret::new(raw.to_owned()))
            } else {
                Err("at least 32 characters (`nanobanana webhook-secret` prints a fresh one)")
            }
        }),
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// May carry a password, hence secret.
    pub url: Secret<url::Url>,
    pub max_connections: u32,
    pub auto_migrate: bool,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: Secret<url::Url>,
    /// Every key this deployment writes starts with it.
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// With it, the seed's files `bot_api.log`, `worker.log`, `payments.log`, `errors.log`.
    pub dir: Option<PathBuf>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(role: Role) -> Result<Self, ConfigErrors> {
        Self::from_lookup(role, &|var| std::env::var(var).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(role: Role, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(lookup);
        let database = database(&mut env);
        let redis = RedisConfig {
            url: Secret::new(env.or("REDIS_URL", default_url(DEFAULT_REDIS_URL), |raw| {
                url_with_scheme(raw, &["redis", "rediss"])
            })),
            prefix: env.raw("REDIS_PREFIX").unwrap_or_else(|| "nb:".to_owned()),
        };
        let listen_addr = listen_addr(&mut env);
        let log = log(&mut env);
        let storage = env.or("STORAGE_URL", StorageLocation::default(), StorageLocation::parse);
        let purpose = format!("for `{}`", role.name());
        let proxies = trusted_proxies(&mut env);
        let telegram = (role.needs_telegram() || env.is_set("TELEGRAM_BOT_TOKEN"))
            .then(|| telegram(&mut env, &purpose, &proxies))
            .flatten();
        let gemini = (role.needs_gemini() || env.is_set("GEMINI_API_KEY"))
            .then(|| gemini(&mut env, &purpose))
            .flatten();
        let yookassa = yookassa(&mut env, &proxies);
        let metrics = metrics(&mut env);
        let packs = packs(&mut env);
        let mut warnings = Vec::new();
        let catalog = catalog::catalog(&mut env, &mut warnings);
        let pricing = pricing(&mut env);
        let limits = limits(&mut env);
        let operator = operator(&mut env);
        let growth = growth::growth(&mut env, &catalog);
        let panel =
            panel::panel(&mut env, telegram.as_ref().and_then(|t| t.public_base_url.as_ref()), listen_addr);
        let shutdown_grace =
            std::time::Duration::from_secs(env.number("SHUTDOWN_GRACE_SECS", 20, 1..=3600).into());
        env.finish()?;
        Ok(Self {
            database,
            redis,
            listen_addr,
            log,
            storage,
            telegram,
            gemini,
            yookassa,
            packs,
            catalog,
            pricing,
            limits,
            operator,
            growth,
            shutdown_grace,
            warnings,
            metrics,
            panel,
        })
    }

    /// The API URLs that would travel in clear text: `http://` to anything but a loopback
    /// address. Start-up logs each as a warning (the fakes and a local proxy are loopback).
    pub fn plain_http_apis(&self) -> Vec<String> {
        let mut urls = Vec::new();
        if let Some(telegram) = &self.telegram {
            urls.push(("TELEGRAM_API_URL", &telegram.api_url));
        }
        if let Some(gemini) = &self.gemini {
            urls.push(("GEMINI_API_URL", &gemini.api_url));
        }
        if let Some(yookassa) = &self.yookassa {
            urls.push(("YOOKASSA_API_URL", &yookassa.api_url));
        }
        urls.into_iter()
            .filter(|(_, url)| url.scheme() == "http" && !is_loopback(url))
            .map(|(var, url)| {
                format!(
                    "{var} is plain http:// ({}); tokens and keys would travel in clear text",
                    url.host_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Prices that do not cover the provider's cost; start-up logs each as a warning.
    pub fn prices_below_cost(&self) -> Vec<BelowCost> {
        below_cost(&self.catalog, self.pricing.usd_rate)
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn default_url(text: &str) -> url::Url {
    url::Url::parse(text).unwrap_or_else(|e| unreachable!("built-in default {text:?} is a URL: {e}"))
}

fn database(env: &mut Env) -> DatabaseConfig {
    let url = env.or("DATABASE_URL", default_url(DEFAULT_DATABASE_URL), |raw| {
        let url = url_with_scheme(raw, &["postgres", "postgresql"])?;
        let name = url.path().trim_start_matches('/');
        if name.is_empty() || name.contains('/') {
            return Err("the URL must name one database, as in postgres://host:5432/nanobanana".to_owned());
        }
        Ok(url)
    });
    DatabaseConfig {
        url: Secret::new(url),
        max_connections: env.number("DATABASE_MAX_CONNECTIONS", 10, 1..=1000),
        auto_migrate: env.value("AUTO_MIGRATE", true),
    }
}

/// `LISTEN_ADDR`, else `0.0.0.0:$PORT` (Railway sets only `PORT`), else `0.0.0.0:8080`.
fn listen_addr(env: &mut Env) -> SocketAddr {
    let fallback = SocketAddr::from(([0, 0, 0, 0], 8080));
    if env.is_set("LISTEN_ADDR") {
        return env.value("LISTEN_ADDR", fallback);
    }
    let port = env.or("PORT", fallback.port(), |raw| raw.parse::<u16>().map_err(|e| e.to_string()));
    SocketAddr::from(([0, 0, 0, 0], port))
}

#[cfg(test)]
mod tests;
