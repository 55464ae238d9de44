//! `TestApp`: the whole service for one end-to-end test. A fresh database, the fakes on port 0
//! (Telegram and Gemini always, YooKassa when asked), one environment map read into one
//! `Config`, `serve` in this process (or as a process of its own), workers on demand. The
//! helpers act as a user would, through the fake Telegram; `finish` checks the end every
//! end-to-end test must reach.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fakes::telegram::users::{self, UserProfile};
use fakes::telegram::{BotMessage, ChatRecord, TelegramConfig};
use fakes::{FakeGemini, FakeTelegram, FakeYooKassa};
use nanobanana::config::{Config, Role};
use nanobanana::worker::{self, Worker, WorkerSettings};
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::db::TestDb;
use super::end::{self, Leave};
use super::process::{self, Process};
use super::wait::{self, WAIT};

pub const SECRET: &str = "test-webhook-secret_1-0123456789abcdef";

/// A worker fast enough for a test: short leases, polls and retry delays.
pub fn fast() -> WorkerSettings {
    WorkerSettings {
        concurrency: 4,
        lease: Duration::from_secs(10),
        heartbeat_every: Some(Duration::from_millis(500)),
        poll_every: Duration::from_millis(200),
        sweep_every: Duration::from_millis(500),
        deadline_grace: Duration::from_secs(5),
        max_attempts: 3,
        retry_delay_cap: Some(Duration::from_millis(100)),
        probe_every: Duration::from_millis(300),
        model_probe_every: Duration::from_millis(300),
        // The fake answers with 64 px pictures here: the tests of honest sizes turn it on with
        // `TestAppBuilder::full_size_images`.
        measure_sizes: false,
    }
}

/// A Telegram user speaking `lang`.
pub fn profile(lang: &str) -> UserProfile {
    UserProfile { first_name: Some("Test".into()), username: None, language_code: Some(lang.into()) }
}

/// The texts and captions of a chat's messages, in order.
pub fn texts(chat: &ChatRecord) -> Vec<String> {
    chat.messages.iter().filter_map(|m| m.text().or(m.caption()).map(str::to_owned)).collect()
}

pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    worker: Option<WorkerSettings>,
    yookassa: Option<fakes::YooKassaConfig>,
    telegram: TelegramConfig,
    gemini_url: Option<String>,
    heavy: Option<u32>,
    serve: bool,
    full_size: bool,
}

/// A worker in this process, with its own small pool, until `TestApp::stop_worker`.
pub struct RunningWorker {
    pub id: String,
    pub worker: Arc<Worker>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

struct Serving {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct TestApp {
    pub db: TestDb,
    pub tg: FakeTelegram,
    pub gemini: FakeGemini,
    yookassa: Option<FakeYooKassa>,
    /// The environment every part of the service is started with.
    pub vars: BTreeMap<String, String>,
    pub config: Config,
    /// Where `serve` listens (in this process or as a process).
    pub url: String,
    /// The file storage (`STORAGE_URL`).
    pub storage: PathBuf,
    pub http: reqwest::Client,
    serving: Option<Serving>,
    workers: Mutex<Vec<RunningWorker>>,
    _dir: TempDir,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: Vec::new(),
            worker: None,
            yookassa: None,
            telegram: TelegramConfig::default(),
            gemini_url: None,
            heavy: None,
            serve: true,
            full_size: false,
        }
    }
}

impl TestAppBuilder {
    /// Sets (or overrides) one variable of the service's environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A worker in this process from the start, stopped by `finish`.
    pub fn worker(mut self, settings: WorkerSettings) -> Self {
        self.worker = Some(settings);
        self
    }

    /// The fake YooKassa as the shop, notifying `serve`'s webhook.
    pub fn yookassa(self) -> Self {
        self.yookassa_with(fakes::YooKassaConfig::default())
    }

    /// As `yookassa`, the fake configured so (its notification URL is `serve`'s webhook).
    pub fn yookassa_with(mut self, config: fakes::YooKassaConfig) -> Self {
        self.yookassa = Some(config);
        self
    }

    pub fn telegram(mut self, config: TelegramConfig) -> Self {
        self.telegram = config;
        self
    }

    /// The workers call this server instead of the fake Gemini.
    pub fn gemini_url(mut self, url: String) -> Self {
        self.gemini_url = Some(url);
        self
    }

    /// For tests that open many connections: they take turns (`TestDb::heavy`).
    pub fn heavy(mut self, connections: u32) -> Self {
        self.heavy = Some(connections);
        self
    }

    /// The fake Gemini renders pictures at the sizes Gemini does (1K = 1024², …) instead of
    /// 64 px ones.
    pub fn full_size_images(mut self) -> Self {
        self.full_size = true;
        self
    }

    /// `serve` is not started here: the test runs it as a process (`TestApp::spawn_serve`).
    pub fn serve_as_process(mut self) -> Self {
        self.serve = false;
        self
    }

    pub async fn start(self) -> TestApp {
        let db = match self.heavy {
            Some(connections) => TestDb::heavy(connections).await,
            None => TestDb::new().await,
        };
        let tg = FakeTelegram::start(self.telegram).await.expect("fake Telegram");
        let gemini = FakeGemini::start(fakes::GeminiConfig { small: !self.full_size, ..Default::default() })
            .await
            .expect("fake Gemini");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let url = format!("http://{address}");
        let yookassa = match self.yookassa {
            Some(config) => {
                let config = fakes::YooKassaConfig {
                    notification_url: Some(format!("{url}/yookassa/webhook")),
                    ..config
                };
                Some(FakeYooKassa::start(config).await.expect("fake YooKassa"))
            }
            None => None,
        };
        let storage = std::env::temp_dir().join(format!("nbtest-{}", Uuid::new_v4().simple()));
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned());
        // The one list of the variables the service runs with in the tests.
        let mut vars: BTreeMap<String, String> = [
            ("DATABASE_URL", db.url.to_string()),
            ("AUTO_MIGRATE", "false".to_owned()),
            ("REDIS_URL", redis_url),
            ("REDIS_PREFIX", format!("nbtest:{}:", Uuid::new_v4().simple())),
            ("LISTEN_ADDR", address.to_string()),
            ("PUBLIC_BASE_URL", format!("{url}/")),
            ("TELEGRAM_BOT_TOKEN", tg.token().to_owned()),
            ("TELEGRAM_WEBHOOK_SECRET", SECRET.to_owned()),
            ("TELEGRAM_API_URL", tg.base_url()),
            ("GEMINI_API_KEY", gemini.api_key().to_owned()),
            ("GEMINI_API_URL", self.gemini_url.unwrap_or_else(|| gemini.base_url())),
            ("GEMINI_RPM", "100000".to_owned()),
            ("GEMINI_MAX_CONCURRENCY", "16".to_owned()),
            ("STORAGE_URL", format!("file://{}", storage.display())),
            // Starter credits would change every balance a test expects; the growth tests
            // set their own.
            ("STARTER_CREDITS", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(yk) = &yookassa {
            vars.extend(
                [
                    ("YOOKASSA_SHOP_ID", yk.shop_id().to_owned()),
                    ("YOOKASSA_SECRET_KEY", yk.secret_key().to_owned()),
                    ("YOOKASSA_API_URL", yk.api_url()),
                    ("YOOKASSA_RETURN_URL", "https://t.me/nanobanana_test_bot".to_owned()),
                    ("YOOKASSA_TRUSTED_NETWORKS", "127.0.0.1/32".to_owned()),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
        }
        vars.extend(self.env);
        let config = Config::from_lookup(Role::Run, &|k| vars.get(k).cloned()).expect("config");
        let serving = if self.serve {
            let (stop, rx) = watch::channel(false);
            let task = tokio::spawn(nanobanana::service::serve(config.clone(), listener, rx));
            Some(Serving { stop, task })
        } else {
            drop(listener);
            None
        };
        let app = TestApp {
            db,
            tg,
            gemini,
            yookassa,
            vars,
            config,
            url,
            storage: storage.clone(),
            http: reqwest::Client::new(),
            serving,
            workers: Mutex::new(Vec::new()),
            _dir: TempDir(storage),
        };
        if app.serving.is_some() {
            app.wait_for_webhook().await;
        }
        if let Some(settings) = self.worker {
            app.run_worker(settings).await;
        }
        app
    }
}

impl TestApp {
    /// The fake YooKassa (the builder's `yookassa`).
    pub fn yookassa(&self) -> &FakeYooKassa {
        self.yookassa.as_ref().expect("started with .yookassa()")
    }

    /// `serve` registers its webhook at start; updates flow once it has.
    pub async fn wait_for_webhook(&self) {
        let info_url = format!("{}/bot{}/getWebhookInfo", self.tg.base_url(), self.tg.token());
        wait::until("the webhook registered", WAIT, || async {
            let info: serde_json::Value = match self.http.post(&info_url).send().await {
                Ok(response) => response.json().await.expect("JSON"),
                Err(e) => return Err(e.to_string()),
            };
            if info["result"]["url"].as_str().is_some_and(|u| u.starts_with(&self.url)) {
                Ok(())
            } else {
                Err(info.to_string())
            }
        })
        .await
    }

    // --- Workers and processes -------------------------------------------------------------

    /// A worker in this process with its own small pool, until `stop_worker`.
    pub async fn start_worker(&self, settings: WorkerSettings) -> RunningWorker {
        let pool = PgPoolOptions::new().max_connections(3).connect(self.db.url.as_str()).await.expect("pool");
        let worker = Worker::new(&self.config, pool, settings).await.expect("worker");
        let redis = nanobanana::redis::connect_blocking(&self.config.redis).await.expect("redis");
        let waiter = nanobanana::signals::Waiter::new(redis, &self.config.redis.prefix);
        let (stop, rx) = watch::channel(false);
        let id = worker.id.clone();
        let worker = Arc::new(worker);
        let task = tokio::spawn(worker::run(worker.clone(), waiter, rx));
        RunningWorker { id, worker, stop, task }
    }

    /// A worker owned by the app, stopped by `finish`: makes what the test left queued.
    pub async fn run_worker(&self, settings: WorkerSettings) {
        let worker = self.start_worker(settings).await;
        self.workers.lock().expect("workers").push(worker);
    }

    /// Stops a worker; it must end cleanly and in time.
    pub async fn stop_worker(worker: RunningWorker) {
        let _ = worker.stop.send(true);
        let stopped = tokio::time::timeout(WAIT, worker.task).await.expect("worker stops in time");
        stopped.expect("worker task").expect("worker ran cleanly");
    }

    fn process(&self, role: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(process::binary());
        command
            .arg(role)
            .envs(&self.vars)
            .env("RUST_LOG", "warn")
            .env_remove("LOG_FORMAT")
            .env_remove("LOG_DIR")
            .stdout(std::process::Stdio::null())
            .stderr(self.process_log(role));
        command
    }

    /// `nanobanana serve` as a process, on `LISTEN_ADDR` (for `serve_as_process`).
    pub fn spawn_serve(&self) -> Process {
        Process::spawn(&mut self.process("serve"))
    }

    /// `nanobanana worker` as a process, with a pool of two.
    pub fn spawn_worker(&self) -> Process {
        Process::spawn(self.process("worker").env("DATABASE_MAX_CONNECTIONS", "2"))
    }

    /// `nanobanana admin <args>` run to its end.
    pub async fn admin(&self, args: &[&str]) -> std::process::Output {
        let mut command = self.process("admin");
        command.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command.output().await.expect("run nanobanana admin")
    }

    fn process_log(&self, role: &str) -> std::fs::File {
        let dir = self.storage.join("logs");
        std::fs::create_dir_all(&dir).expect("log directory");
        std::fs::File::create(dir.join(format!("{role}-{}.log", Uuid::new_v4().simple()))).expect("log file")
    }

    /// What the processes wrote to stderr.
    pub fn process_logs(&self) -> String {
        let entries = std::fs::read_dir(self.storage.join("logs")).into_iter().flatten().flatten();
        entries
            .map(|e| {
                format!("{}:\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    // --- What a user does ------------------------------------------------------------------

    /// `/command` from a user speaking `lang`.
    pub fn command(&self, user: i64, lang: &str, command: &str) {
        users::command(self.tg.state(), user, &profile(lang), command, None).expect("command");
    }

    /// A text message (a prompt, an answer) from a user speaking `lang`.
    pub fn text(&self, user: i64, lang: &str, text: &str) {
        users::text(self.tg.state(), user, &profile(lang), text).expect("text");
    }

    /// Sends `/command args` and waits for the chat's `n`-th message; its text.
    pub async fn ask(&self, user: i64, lang: &str, command: &str, args: &str, n: usize) -> String {
        users::command(self.tg.state(), user, &profile(lang), command, Some(args)).expect("command");
        let chat = self.messages(user, n).await;
        chat.messages[n - 1].text().unwrap_or("").to_owned()
    }

    /// The user opens the chat (/start) and sees the welcome.
    pub async fn open_chat(&self, user: i64, lang: &str) {
        self.command(user, lang, "start");
        self.chat(user, |c| !c.messages.is_empty()).await;
    }

    /// A user with a chat (opened in English) and `credits`.
    pub async fn funded(&self, user: i64, credits: i64) {
        self.open_chat(user, "en").await;
        self.db.user_with(user, credits).await;
    }

    /// Sends a prompt and waits for its answer; the newest generation's id.
    pub async fn prompt(&self, user: i64, lang: &str, text: &str) -> Uuid {
        let before = self.tg.chat(user).map_or(0, |c| c.messages.len());
        self.text(user, lang, text);
        self.chat(user, |c| c.messages.len() > before).await;
        sqlx::query_scalar("SELECT id FROM generations WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(user)
            .fetch_one(&self.db.pool)
            .await
            .expect("the prompt created a generation")
    }

    /// Presses a button and waits for the answer to its callback query; the toast.
    pub async fn press(&self, user: i64, message_id: i64, data: &str) -> String {
        let answers = |c: &ChatRecord| c.events.iter().filter(|e| e.method == "answerCallbackQuery").count();
        let before = self.tg.chat(user).map_or(0, |c| answers(&c));
        self.tg.press_button(user, message_id, data).expect("press");
        let chat = self.chat(user, |c| answers(c) > before).await;
        let last = chat.events.iter().rev().find(|e| e.method == "answerCallbackQuery");
        last.and_then(|e| e.detail["text"].as_str()).unwrap_or("").to_owned()
    }

    // --- What the user sees ----------------------------------------------------------------

    /// Waits until `user`'s chat satisfies `done`.
    pub async fn chat(&self, user: i64, done: impl Fn(&ChatRecord) -> bool) -> ChatRecord {
        self.tg
            .wait_for_chat(user, WAIT, done)
            .await
            .unwrap_or_else(|e| panic!("chat {user}: {e}; have {:#?}", self.tg.chat(user)))
    }

    /// Waits for at least `count` messages in `user`'s chat.
    pub async fn messages(&self, user: i64, count: usize) -> ChatRecord {
        self.chat(user, |c| c.messages.len() >= count).await
    }

    /// Waits for a message in `user`'s chat matching `found`; the latest such.
    pub async fn wait_message(
        &self,
        user: i64,
        what: &str,
        found: impl Fn(&BotMessage) -> bool,
    ) -> BotMessage {
        let chat = self
            .tg
            .wait_for_chat(user, WAIT, |c| c.messages.iter().any(&found))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}; chat {:?}", self.tg.chat(user)));
        chat.messages.into_iter().rev().find(|m| found(m)).expect("found")
    }

    /// Waits for a text message containing `needle`.
    pub async fn wait_text(&self, user: i64, needle: &str) -> BotMessage {
        self.wait_message(user, needle, |m| m.text().is_some_and(|t| t.contains(needle))).await
    }

    /// How many text messages in `user`'s chat contain `needle` now.
    pub fn count_texts(&self, user: i64, needle: &str) -> usize {
        self.tg
            .chat(user)
            .map_or(0, |c| c.messages.iter().filter(|m| m.text().is_some_and(|t| t.contains(needle))).count())
    }

    // --- The service's side ----------------------------------------------------------------

    /// POSTs `body` to `serve`'s Telegram webhook, with `secret` as the secret token.
    pub async fn post(&self, secret: Option<&str>, body: Vec<u8>) -> reqwest::StatusCode {
        let mut request = self.http.post(format!("{}/telegram/webhook", self.url)).body(body);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send().await.expect("webhook answers").status()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.expect(sql)
    }

    /// Waits until the count `sql` returns is `want`.
    pub async fn until(&self, what: &str, sql: &str, want: i64) {
        wait::until_count(&self.db.pool, what, sql, want).await
    }

    /// Waits until the outbox has nothing pending.
    pub async fn drained(&self) {
        self.until("outbox drained", "SELECT COUNT(*) FROM outbox WHERE state = 'pending'", 0).await
    }

    /// A generation's status and attempts.
    pub async fn status(&self, id: Uuid) -> (String, i32) {
        sqlx::query_as("SELECT status, attempts FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .expect("generation")
    }

    pub async fn wait_status(&self, id: Uuid, wanted: &str) {
        wait::until(format!("{id} {wanted}"), WAIT, || async {
            let (status, _) = self.status(id).await;
            if status == wanted {
                Ok(())
            } else {
                Err(format!("it is {status}"))
            }
        })
        .await
    }

    // --- The end ---------------------------------------------------------------------------

    /// The end of every end-to-end test: waits until every update is handled, nothing is left
    /// in the outbox, no generation is queued or processing, and nothing was dropped; asserts
    /// the audit clean; then stops the workers and `serve`, which must end cleanly.
    pub async fn finish(self) {
        self.finish_leaving(Leave::default()).await
    }

    /// As `finish`, allowing what `leave` says the test leaves unfinished on purpose.
    pub async fn finish_leaving(self, leave: Leave) {
        if let Err(e) = self.tg.wait_until_no_pending_updates(WAIT).await {
            panic!("the fake Telegram still has updates to deliver ({e:?}): {:?}", self.tg.pending_updates());
        }
        end::settled(&self.db.pool, leave, WAIT).await;
        let workers = std::mem::take(&mut *self.workers.lock().expect("workers"));
        for worker in workers {
            Self::stop_worker(worker).await;
        }
        if let Some(serving) = self.serving {
            let _ = serving.stop.send(true);
            let stopped = tokio::time::timeout(WAIT, serving.task).await.expect("serve stops in time");
            stopped.expect("server task").expect("server ran cleanly");
        }
    }
}
