//! The system under test as real processes: `serve` (behind the balancer), `worker` and `run`
//! started from the `nanobanana` binary against one database, one Redis prefix, the three
//! fakes (in this process) and a storage directory. Processes can be killed with SIGKILL,
//! stopped with SIGTERM and started again with the same configuration.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fakes::common::wait::{until_deadline, Recheck};
use fakes::{FakeGemini, FakeTelegram, FakeYooKassa};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::proxy;

pub const WEBHOOK_SECRET: &str = "scenario-webhook-secret-0123456789abcdef";
/// The operator's Telegram id (`ADMIN_IDS`): sends `/refund` in the bot.
pub const ADMIN: i64 = 6_999_999;
/// `TERMS_VERSION`: every user accepts it before a first payment.
pub const TERMS: &str = "scenario-1";

/// What to start.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `nanobanana` binary.
    pub binary: PathBuf,
    /// A migrated database of this run's own.
    pub database_url: url::Url,
    pub redis_url: String,
    pub serves: usize,
    pub workers: usize,
    /// `SHUTDOWN_GRACE_SECS` of every process.
    pub grace_secs: u64,
    /// Gemini's answer time.
    pub gemini_latency: Duration,
    /// Logs, images: removed at the end unless the run failed.
    pub workdir: PathBuf,
}

/// A role the binary runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Serve,
    Worker,
    Run,
}

impl Role {
    fn command(self) -> &'static str {
        match self {
            Role::Serve => "serve",
            Role::Worker => "worker",
            Role::Run => "run",
        }
    }
}

/// One process slot: restarted into the same slot (same port, same log file appended to).
pub struct Proc {
    pub role: Role,
    pub port: Option<u16>,
    child: Option<Child>,
    log: PathBuf,
    pub starts: u32,
    pub kills: u32,
}

impl Proc {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct System {
    pub tg: FakeTelegram,
    pub gemini: FakeGemini,
    pub yk: FakeYooKassa,
    pub pool: PgPool,
    pub setup: Setup,
    pub prefix: String,
    pub storage: PathBuf,
    /// The balancer's base URL (what Telegram and YooKassa call).
    pub public_url: String,
    pub procs: Mutex<Vec<Proc>>,
    env: Vec<(String, String)>,
    balancer: tokio::task::JoinHandle<()>,
}

/// The configuration every process gets, as environment variables: the database, the Redis
/// prefix, the fakes' URLs and keys, the balancer's public URL and the storage directory.
fn environment(
    setup: &Setup,
    (tg, gemini, yk): (&FakeTelegram, &FakeGemini, &FakeYooKassa),
    prefix: &str,
    storage: &Path,
    public_url: &str,
) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", setup.database_url.to_string()),
        // Small on purpose: a handler that needs a second connection while holding one
        // stalls a small pool (it did: the payment step after the update's commit).
        ("DATABASE_MAX_CONNECTIONS", "6".to_owned()),
        ("AUTO_MIGRATE", "false".to_owned()),
        ("REDIS_URL", setup.redis_url.clone()),
        ("REDIS_PREFIX", prefix.to_owned()),
        ("TELEGRAM_BOT_TOKEN", tg.token().to_owned()),
        ("TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("TELEGRAM_API_URL", tg.base_url()),
        ("PUBLIC_BASE_URL", format!("{public_url}/")),
        ("GEMINI_API_KEY", gemini.api_key().to_owned()),
        ("GEMINI_API_URL", gemini.base_url()),
        ("GEMINI_RPM", "100000".to_owned()),
        ("GEMINI_MAX_CONCURRENCY", "8".to_owned()),
        ("GEMINI_TIMEOUT_SECS", "10".to_owned()),
        ("YOOKASSA_SHOP_ID", yk.shop_id().to_owned()),
        ("YOOKASSA_SECRET_KEY", yk.secret_key().to_owned()),
        ("YOOKASSA_API_URL", yk.api_url()),
        ("YOOKASSA_RETURN_URL", "https://t.me/nanobanana_test_bot".to_owned()),
        ("YOOKASSA_TRUSTED_NETWORKS", "127.0.0.1/32".to_owned()),
        // Receipts on: a first ruble payment asks for the e-mail (or phone) first.
        ("RECEIPTS_ENABLED", "true".to_owned()),
        ("TERMS_VERSION", TERMS.to_owned()),
        ("ADMIN_IDS", ADMIN.to_string()),
        ("STORAGE_URL", format!("file://{}", storage.display())),
        ("MAX_IN_FLIGHT", "3".to_owned()),
        ("GENERATION_DEADLINE_SECS", "600".to_owned()),
        ("SHUTDOWN_GRACE_SECS", setup.grace_secs.to_string()),
        ("LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl System {
    /// Starts the fakes, the balancer and the processes; returns once every `serve` is ready.
    pub async fn start(setup: Setup) -> anyhow::Result<Arc<Self>> {
        let slots: Vec<(Role, Option<u16>)> = (0..setup.serves)
            .map(|_| free_port().map(|p| (Role::Serve, Some(p))))
            .chain((0..setup.workers).map(|_| Ok((Role::Worker, None))))
            .collect::<anyhow::Result<_>>()?;
        Self::start_with(setup, slots).await
    }

    /// As `start`, with the process slots given (e.g. one `run`).
    pub async fn start_with(setup: Setup, slots: Vec<(Role, Option<u16>)>) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&setup.workdir)?;
        let ports: Vec<u16> = slots.iter().filter_map(|(_, port)| *port).collect();
        let (public_url, balancer) = proxy::start(ports).await?;
        let tg = FakeTelegram::start(fakes::TelegramConfig {
            webhook_retry_delay: Duration::from_millis(200),
            webhook_timeout: Duration::from_secs(20),
            ..Default::default()
        })
        .await?;
        let gemini = FakeGemini::start(fakes::GeminiConfig {
            small: true,
            latency: setup.gemini_latency,
            hang: Duration::from_secs(15),
            ..Default::default()
        })
        .await?;
        let yk = FakeYooKassa::start(fakes::YooKassaConfig {
            notification_url: Some(format!("{public_url}/yookassa/webhook")),
            ..Default::default()
        })
        .await?;
        let prefix = format!("nbscenario:{}:", uuid::Uuid::new_v4().simple());
        let storage = setup.workdir.join("images");
        let env = environment(&setup, (&tg, &gemini, &yk), &prefix, &storage, &public_url);
        let pool = PgPoolOptions::new().max_connections(8).connect(setup.database_url.as_str()).await?;
        let procs = slots
            .into_iter()
            .enumerate()
            .map(|(i, (role, port))| Proc {
                role,
                port,
                child: None,
                log: setup.workdir.join(format!("{}-{i}.log", role.command())),
                starts: 0,
                kills: 0,
            })
            .collect();
        let system = Arc::new(Self {
            tg,
            gemini,
            yk,
            pool,
            setup,
            prefix,
            storage,
            public_url,
            procs: Mutex::new(procs),
            env,
            balancer,
        });
        {
            let mut procs = system.procs.lock().await;
            for proc in procs.iter_mut() {
                system.spawn(proc)?;
            }
        }
        system.wait_ready().await?;
        Ok(system)
    }

    fn spawn(&self, proc: &mut Proc) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&proc.log)?;
        let mut command = Command::new(&self.setup.binary);
        command.arg(proc.role.command()).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(port) = proc.port {
            command.env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
        }
        let child = command
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} {}", self.setup.binary.display(), proc.role.command()))?;
        proc.child = Some(child);
        proc.starts += 1;
        Ok(())
    }

    /// Waits until every HTTP-serving process answers `/readyz` with 200.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let ports: Vec<u16> = self.procs.lock().await.iter().filter_map(|p| p.port).collect();
        let http = reqwest::Client::new();
        // One minute for them all.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for port in ports {
            let url = format!("http://127.0.0.1:{port}/readyz");
            let (http, url) = (&http, &url);
            let ready =
                until_deadline(deadline, Recheck::Every(Duration::from_millis(50)), move || async move {
                    http.get(url).send().await.is_ok_and(|r| r.status().is_success()).then_some(())
                });
            if ready.await.is_none() {
                anyhow::bail!("port {port} never became ready; logs:\n{}", self.logs());
            }
        }
        Ok(())
    }

    /// SIGKILL of slot `index`; returns the pid it had.
    pub async fn kill9(&self, index: usize) -> Option<u32> {
        let mut procs = self.procs.lock().await;
        let proc = procs.get_mut(index)?;
        let mut child = proc.child.take()?;
        let pid = child.id();
        let _ = child.start_kill();
        let _ = child.wait().await;
        proc.kills += 1;
        pid
    }

    /// Starts slot `index` again if it is not running.
    pub async fn restart(&self, index: usize) -> anyhow::Result<()> {
        let mut procs = self.procs.lock().await;
        if let Some(proc) = procs.get_mut(index) {
            if proc.child.is_none() {
                self.spawn(proc)?;
            }
        }
        Ok(())
    }

    /// Starts every slot that is not running.
    pub async fn restart_all(&self) -> anyhow::Result<()> {
        let mut procs = self.procs.lock().await;
        for proc in procs.iter_mut().filter(|p| p.child.is_none()) {
            self.spawn(proc)?;
        }
        Ok(())
    }

    /// SIGTERM to every running process at once; each one's exit status and how long it took.
    pub async fn terminate_all(&self, limit: Duration) -> Vec<(Role, Option<ExitStatus>, Duration)> {
        let mut procs = self.procs.lock().await;
        let started = tokio::time::Instant::now();
        for proc in procs.iter() {
            if let Some(pid) = proc.pid() {
                let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
        }
        let mut exits = Vec::new();
        for proc in procs.iter_mut() {
            let Some(mut child) = proc.child.take() else { continue };
            let status =
                match tokio::time::timeout(limit.saturating_sub(started.elapsed()), child.wait()).await {
                    Ok(Ok(status)) => Some(status),
                    _ => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        None
                    }
                };
            exits.push((proc.role, status, started.elapsed()));
        }
        exits
    }

    /// Slot indexes of `role`.
    pub async fn slots(&self, role: Role) -> Vec<usize> {
        let procs = self.procs.lock().await;
        procs.iter().enumerate().filter(|(_, p)| p.role == role).map(|(i, _)| i).collect()
    }

    /// (starts, kills) over every slot.
    pub async fn restarts(&self) -> (u32, u32) {
        let procs = self.procs.lock().await;
        procs.iter().fold((0, 0), |(s, k), p| (s + p.starts, k + p.kills))
    }

    /// What the processes wrote to stderr, the last 4 KB of each.
    pub fn logs(&self) -> String {
        let Ok(entries) = std::fs::read_dir(&self.setup.workdir) else { return String::new() };
        let mut out = String::new();
        for entry in entries.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".log")) {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: String = text.chars().rev().take(4096).collect::<Vec<_>>().into_iter().rev().collect();
            out.push_str(&format!("--- {}\n{tail}\n", entry.file_name().to_string_lossy()));
        }
        out
    }

    /// The leases a dead worker held run out, as its 60 s lease would make them: another
    /// worker may claim its jobs now.
    pub async fn expire_leases_of(&self, pid: u32) -> anyhow::Result<u64> {
        let pattern = format!("%-{pid}-%");
        let done = sqlx::query(
            "UPDATE generations SET locked_until = now() WHERE status = 'processing' AND worker_id LIKE $1",
        )
        .bind(pattern)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Every Redis key of this run gone: `FLUSHALL` for this deployment only.
    pub async fn flush_redis(&self) -> anyhow::Result<usize> {
        let client = redis::Client::open(self.setup.redis_url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query_async(&mut conn).await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        Ok(keys.len())
    }

    /// `nanobanana <args>` as the operator runs it, with the deployment's configuration.
    pub async fn operator(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.setup.binary)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("nanobanana {}", args.join(" ")))
    }

    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.with_context(|| sql.to_owned())
    }

    pub fn workdir(&self) -> &Path {
        &self.setup.workdir
    }

    /// Stops the balancer; the processes die with their handles (kill on drop).
    pub fn close(&self) {
        self.balancer.abort();
    }
}
