//! `nanobanana sandbox`: the whole bot on one machine with no tokens. One process runs the
//! service (`run`: serve + worker) against the three fakes started in-process (Telegram with
//! simulated users, Gemini, YooKassa), and a web chat on one URL that drives the simulated
//! users and shows what the bot did, plus the fakes' switches. The first simulated user is an
//! admin of the bot: `/panel` from them (the side panel's "Operator panel") brings a login link
//! to the operator's web panel on the service's own address.
//!
//! Only `DATABASE_URL` (its server: the sandbox uses a database of its own) and `REDIS_URL`
//! (under its own key prefix) come from outside; everything else is wired here. This module
//! never touches the real services and never runs against a database not meant for it.

mod api;
mod view;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use fakes::{FakeGemini, FakeTelegram, FakeYooKassa};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Role};
use crate::db;

/// What a sandbox needs from outside; everything else it makes up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The web chat's address (port 0 allowed).
    pub listen: SocketAddr,
    /// The sandbox's own database (created if missing).
    pub database_url: url::Url,
    pub redis_url: url::Url,
    /// Every Redis key the sandbox's service writes starts with it.
    pub redis_prefix: String,
    /// Where generated images are stored.
    pub storage_dir: PathBuf,
    /// Added to every fake Gemini call, so status messages visibly change.
    pub gemini_latency: Duration,
    /// 64 px images instead of Gemini's sizes (faster; for tests).
    pub small_images: bool,
}

/// A simulated Telegram user of the web chat.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimUser {
    pub id: i64,
    pub first_name: String,
    pub language_code: String,
}

/// The first simulated users; the first one is an admin of the bot.
fn default_users() -> Vec<SimUser> {
    [(1001, "Alice", "en"), (1002, "Борис", "ru"), (1003, "Chen", "en")]
        .into_iter()
        .map(|(id, name, lang)| SimUser { id, first_name: name.into(), language_code: lang.into() })
        .collect()
}

/// The simulated user who is an admin of the bot (`ADMIN_IDS`): the first one.
pub(crate) fn admin_id() -> i64 {
    default_users().first().map_or(0, |u| u.id)
}

/// What the web chat's handlers share: the fakes, a small pool for balances, the users.
pub(crate) struct World {
    pub tg: FakeTelegram,
    pub gemini: FakeGemini,
    pub yk: FakeYooKassa,
    pub pool: PgPool,
    pub users: Mutex<Vec<SimUser>>,
    /// Forwards the checkout page of the fake YooKassa (redirects are passed on, not followed).
    pub http: reqwest::Client,
}

impl World {
    pub fn users(&self) -> Vec<SimUser> {
        self.users.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn user(&self, id: i64) -> Option<SimUser> {
        self.users().into_iter().find(|u| u.id == id)
    }
}

/// A running sandbox. `stop` ends the service first, then the web chat and the fakes.
pub struct Sandbox {
    url: String,
    world: Arc<World>,
    stop: watch::Sender<bool>,
    service: JoinHandle<anyhow::Result<()>>,
    web: JoinHandle<anyhow::Result<()>>,
}

impl Sandbox {
    /// Starts the fakes, the service and the web chat; returns once the chat answers.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let web_listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let web_addr = web_listener.local_addr()?;
        let host =
            if web_addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { web_addr.ip().to_string() };
        let url = format!("http://{host}:{}", web_addr.port());
        let service_listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the service")?;
        let service_url = format!("http://{}", service_listener.local_addr()?);

        let tg = FakeTelegram::start(fakes::TelegramConfig::default()).await?;
        let gemini =
            FakeGemini::start(fakes::GeminiConfig { small: options.small_images, ..Default::default() })
                .await?;
        // Set at run time rather than in the config, so the panel shows and changes it.
        gemini.set_latency(options.gemini_latency);
        let yk = FakeYooKassa::start(fakes::YooKassaConfig {
            notification_url: Some(format!("{service_url}/yookassa/webhook")),
            public_url: Some(url.clone()),
            ..Default::default()
        })
        .await?;
        let config = config(&options, &tg, &gemini, &yk, &service_url, &url)?;
        // Migrated before the service starts, so the chat can read balances at once.
        let small = crate::config::DatabaseConfig { max_connections: 2, ..config.database.clone() };
        let pool = db::connect_creating(&small).await?;
        db::migrate(&pool).await?;

        let (stop, stopped) = watch::channel(false);
        let service = {
            let stopped = stopped.clone();
            tokio::spawn(async move { crate::service::run_both(&config, service_listener, stopped).await })
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        let world = Arc::new(World { tg, gemini, yk, pool, users: Mutex::new(default_users()), http });
        let web = tokio::spawn(web::serve(world.clone(), web_listener, stopped));
        Ok(Self { url, world, stop, service, web })
    }

    /// The web chat.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn telegram(&self) -> &FakeTelegram {
        &self.world.tg
    }

    pub fn gemini(&self) -> &FakeGemini {
        &self.world.gemini
    }

    pub fn yookassa(&self) -> &FakeYooKassa {
        &self.world.yk
    }

    /// Stops the service (it hands back in-flight work) and the web chat; the fakes go last.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let served = self.service.await.context("service task")?;
        let webbed = self.web.await.context("web chat task")?;
        served.context("service")?;
        webbed.context("web chat")?;
        self.world.pool.close().await;
        Ok(())
    }

    /// Runs until `shutdown` turns true, or until the service ends by itself (an error).
    pub async fn run_until(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let requested = async {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            _ = requested => self.stop().await,
            ended = &mut self.service => {
                let _ = self.stop.send(true);
                let _ = self.web.await;
                ended.context("service task")?.context("service")?;
                anyhow::bail!("the service stopped by itself")
            }
        }
    }
}

/// The service's configuration: every external API is one of the fakes.
fn config(
    options: &Options,
    tg: &FakeTelegram,
    gemini: &FakeGemini,
    yk: &FakeYooKassa,
    service_url: &str,
    web_url: &str,
) -> anyhow::Result<Config> {
    let secret = uuid::Uuid::new_v4().simple().to_string();
    // The operator's panel, on the service's listener; its login links point there.
    let panel_secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let admins = admin_id().to_string();
    let vars: HashMap<&str, String> = [
        ("DATABASE_URL", options.database_url.to_string()),
        // Per pool: serve and the worker each have one.
        ("DATABASE_MAX_CONNECTIONS", "4".to_owned()),
        ("AUTO_MIGRATE", "true".to_owned()),
        ("REDIS_URL", options.redis_url.to_string()),
        ("REDIS_PREFIX", options.redis_prefix.clone()),
        ("STORAGE_URL", format!("file://{}", options.storage_dir.display())),
        ("TELEGRAM_BOT_TOKEN", tg.token().to_owned()),
        ("TELEGRAM_WEBHOOK_SECRET", secret),
        ("TELEGRAM_API_URL", tg.base_url()),
        ("PUBLIC_BASE_URL", format!("{service_url}/")),
        ("GEMINI_API_KEY", gemini.api_key().to_owned()),
        ("GEMINI_API_URL", gemini.base_url()),
        ("GEMINI_RPM", "600".to_owned()),
        // The model switches take effect within seconds.
        ("MODEL_PROBE_SECS", "10".to_owned()),
        ("YOOKASSA_SHOP_ID", yk.shop_id().to_owned()),
        ("YOOKASSA_SECRET_KEY", yk.secret_key().to_owned()),
        ("YOOKASSA_API_URL", yk.api_url()),
        ("YOOKASSA_RETURN_URL", format!("{web_url}/")),
        ("YOOKASSA_TRUSTED_NETWORKS", "127.0.0.1/32".to_owned()),
        ("ADMIN_IDS", admins),
        ("PANEL_SECRET", panel_secret),
        ("PANEL_URL", service_url.to_owned()),
        ("SUPPORT_CONTACT", "@sandbox_support".to_owned()),
        ("TERMS_URL", format!("{web_url}/terms")),
        ("PRIVACY_URL", format!("{web_url}/privacy")),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(Role::Run, &|k| vars.get(k).cloned()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The only variables the sandbox takes from its environment: where Postgres and Redis are,
/// and how to log.
pub fn outside_env(var: &str) -> Option<String> {
    const TAKEN: [&str; 4] = ["DATABASE_URL", "REDIS_URL", "LOG_FORMAT", "LOG_DIR"];
    TAKEN.contains(&var).then(|| std::env::var(var).ok()).flatten()
}

/// `nanobanana sandbox`: a fresh sandbox database and Redis prefix, then everything until
/// Ctrl-C. `database_url` and `redis_url` are the operator's; only their servers are used.
pub async fn run_cli(
    listen: SocketAddr,
    database: &str,
    server: &url::Url,
    redis_url: &url::Url,
    gemini_latency: Duration,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        database.contains("sandbox") && database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "the sandbox database is reset on every start, so its name must contain \"sandbox\" \
         (letters, digits and _ only): {database:?}"
    );
    let mut database_url = server.clone();
    database_url.set_path(&format!("/{database}"));
    let prefix = format!("nb:{database}:");
    let storage_dir = std::env::temp_dir().join("nanobanana-sandbox").join(database);
    reset(&database_url, redis_url, &prefix, &storage_dir).await?;
    let options = Options {
        listen,
        database_url,
        redis_url: redis_url.clone(),
        redis_prefix: prefix,
        storage_dir,
        gemini_latency,
        small_images: false,
    };
    let sandbox = Sandbox::start(options).await?;
    println!("sandbox: open {}", sandbox.url());
    sandbox.run_until(shutdown).await
}

/// The fakes keep everything in memory, so each start begins with an empty database, Redis
/// prefix and image directory to match them.
async fn reset(
    database_url: &url::Url,
    redis_url: &url::Url,
    prefix: &str,
    storage: &Path,
) -> anyhow::Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let options = db::options(database_url)?;
    let name = options.get_database().unwrap_or_default().to_owned();
    // Dropping a database takes seconds; that is expected here, not a slow query to warn about.
    let admin_options = options
        .clone()
        .database("postgres")
        .log_slow_statements(tracing::log::LevelFilter::Off, Duration::ZERO);
    let mut admin = sqlx::PgConnection::connect_with(&admin_options)
        .await
        .context("cannot connect to Postgres (DATABASE_URL)")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .with_context(|| format!("dropping the old sandbox database {name}"))?;
    admin.close().await.ok();
    let redis = crate::config::RedisConfig {
        url: crate::secret::Secret::new(redis_url.clone()),
        prefix: prefix.to_owned(),
    };
    let mut conn = crate::redis::connect(&redis).await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await?;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
    }
    match tokio::fs::remove_dir_all(storage).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("clearing {}", storage.display())),
    }
}
