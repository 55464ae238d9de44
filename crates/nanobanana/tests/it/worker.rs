//! The generation worker end to end: `serve` with the fake Telegram, one or more workers with
//! the fake Gemini, real Postgres and Redis (a unique prefix per test), files in a temporary
//! directory. Assertions are on what the user sees, the ledger and the audit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fakes::gemini::Behaviour;
use fakes::telegram::users::{self, UserProfile};
use fakes::telegram::{ChatRecord, TelegramConfig};
use fakes::{FakeGemini, FakeTelegram};
use nanobanana::config::{Config, Role};
use nanobanana::jobs::pause;
use nanobanana::worker::{self, Finished, Worker, WorkerSettings};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::TestDb;

const SECRET: &str = "test-webhook-secret_1";
const WAIT: Duration = Duration::from_secs(30);
const ADMINS: [i64; 2] = [9_001, 9_002];
const PRICE: i64 = 10;

/// This build's `nanobanana` binary, copied once per test run: a target directory shared with
/// other branches may have its `nanobanana` replaced by another build while the tests run.
pub(crate) fn worker_binary() -> &'static std::path::Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let prefix = "nanobanana-worker-test-";
        // Copies of runs that have ended go.
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix) {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let copy = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        std::fs::copy(env!("CARGO_BIN_EXE_nanobanana"), &copy).expect("copy the nanobanana binary");
        let help = std::process::Command::new(&copy).arg("--help").output().expect("nanobanana --help");
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains("worker"),
            "the nanobanana binary has no `worker` command: another build replaced it; run the tests again"
        );
        copy
    })
}

pub(crate) struct RunningWorker {
    id: String,
    worker: Arc<Worker>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

pub(crate) struct Pipeline {
    pub(crate) db: TestDb,
    pub(crate) tg: FakeTelegram,
    pub(crate) gemini: FakeGemini,
    pub(crate) config: Config,
    pub(crate) storage: PathBuf,
    stop: watch::Sender<bool>,
    server: JoinHandle<anyhow::Result<()>>,
}

pub(crate) fn fast() -> WorkerSettings {
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
    }
}

pub(crate) fn profile(lang: &str) -> UserProfile {
    UserProfile { first_name: Some("Test".into()), username: None, language_code: Some(lang.into()) }
}

impl Pipeline {
    pub(crate) async fn start() -> Self {
        Self::start_with_gemini(None).await
    }

    /// With `gemini_url`, the workers call that server instead of the fake Gemini.
    async fn start_with_gemini(gemini_url: Option<String>) -> Self {
        let db = TestDb::new().await;
        let tg = FakeTelegram::start(TelegramConfig::default()).await.expect("fake Telegram");
        let gemini = FakeGemini::start(fakes::GeminiConfig { small: true, ..Default::default() })
            .await
            .expect("fake Gemini");
        let storage = std::env::temp_dir().join(format!("nbtest-worker-{}", Uuid::new_v4().simple()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let admins = ADMINS.map(|a| a.to_string()).join(",");
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", db.url.to_string()),
            ("DATABASE_MAX_CONNECTIONS", "3".to_owned()),
            ("TELEGRAM_BOT_TOKEN", tg.token().to_owned()),
            ("TELEGRAM_WEBHOOK_SECRET", SECRET.to_owned()),
            ("TELEGRAM_API_URL", tg.base_url()),
            ("PUBLIC_BASE_URL", format!("{url}/")),
            ("GEMINI_API_KEY", gemini.api_key().to_owned()),
            ("GEMINI_API_URL", gemini_url.unwrap_or_else(|| gemini.base_url())),
            ("GEMINI_RPM", "100000".to_owned()),
            ("GEMINI_MAX_CONCURRENCY", "16".to_owned()),
            ("STORAGE_URL", format!("file://{}", storage.display())),
            ("ADMIN_IDS", admins),
            ("AUTO_MIGRATE", "false".to_owned()),
            ("REDIS_PREFIX", format!("nbtest:{}:", Uuid::new_v4().simple())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = Config::from_lookup(Role::Run, &|k| vars.get(k).cloned()).expect("config");
        let (stop, rx) = watch::channel(false);
        let server = tokio::spawn(nanobanana::service::serve(config.clone(), listener, rx));
        let pipeline = Self { db, tg, gemini, config, storage, stop, server };
        for admin in ADMINS {
            pipeline.open_chat(admin, "en").await;
        }
        pipeline
    }

    /// A worker with its own small pool, running until `stop_worker`.
    pub(crate) async fn worker(&self, settings: WorkerSettings) -> RunningWorker {
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

    pub(crate) async fn stop_worker(worker: RunningWorker) {
        let _ = worker.stop.send(true);
        let stopped = tokio::time::timeout(WAIT, worker.task).await.expect("worker stops in time");
        stopped.expect("worker task").expect("worker ran cleanly");
    }

    /// `nanobanana worker` as a process of its own, on this pipeline's database, Redis prefix,
    /// Gemini and storage.
    fn worker_process(&self) -> tokio::process::Child {
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned());
        tokio::process::Command::new(worker_binary())
            .arg("worker")
            .env("DATABASE_URL", self.db.url.as_str())
            .env("DATABASE_MAX_CONNECTIONS", "2")
            .env("REDIS_URL", redis_url)
            .env("REDIS_PREFIX", &self.config.redis.prefix)
            .env("GEMINI_API_KEY", self.gemini.api_key())
            .env("GEMINI_API_URL", self.gemini.base_url())
            .env("GEMINI_RPM", "100000")
            .env("GEMINI_MAX_CONCURRENCY", "16")
            .env("STORAGE_URL", format!("file://{}", self.storage.display()))
            .env("AUTO_MIGRATE", "false")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(self.process_log())
            .spawn()
            .expect("start `nanobanana worker`")
    }

    /// A file in the storage directory for a worker process' stderr (read by `process_logs`).
    fn process_log(&self) -> std::fs::File {
        std::fs::create_dir_all(&self.storage).expect("storage directory");
        std::fs::File::create(self.storage.join(format!("worker-{}.log", Uuid::new_v4().simple())))
            .expect("log file")
    }

    /// What the worker processes wrote to stderr.
    fn process_logs(&self) -> String {
        let entries = std::fs::read_dir(&self.storage).into_iter().flatten().flatten();
        let logs = entries.filter(|e| e.file_name().to_string_lossy().ends_with(".log"));
        logs.map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The user opens the chat (/start) and sees the welcome.
    pub(crate) async fn open_chat(&self, user: i64, lang: &str) {
        users::command(self.tg.state(), user, &profile(lang), "start", None).expect("command");
        self.chat(user, |c| !c.messages.is_empty()).await;
    }

    /// A user with a chat and `credits`.
    pub(crate) async fn funded(&self, user: i64, credits: i64) {
        self.open_chat(user, "en").await;
        self.db.user_with(user, credits).await;
    }

    /// Sends a prompt and waits for the "accepted" answer; returns the generation's id.
    pub(crate) async fn prompt(&self, user: i64, text: &str) -> Uuid {
        let before = self.tg.chat(user).map_or(0, |c| c.messages.len());
        users::text(self.tg.state(), user, &profile("en"), text).expect("text");
        self.chat(user, |c| c.messages.len() > before).await;
        sqlx::query_scalar("SELECT id FROM generations WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(user)
            .fetch_one(&self.db.pool)
            .await
            .expect("the prompt created a generation")
    }

    pub(crate) async fn chat(&self, user: i64, done: impl Fn(&ChatRecord) -> bool) -> ChatRecord {
        self.tg
            .wait_for_chat(user, WAIT, done)
            .await
            .unwrap_or_else(|e| panic!("chat {user}: {e}; have {:#?}", self.tg.chat(user)))
    }

    async fn status(&self, id: Uuid) -> (String, i32) {
        sqlx::query_as("SELECT status, attempts FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .expect("generation")
    }

    pub(crate) async fn wait_status(&self, id: Uuid, wanted: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, _) = self.status(id).await;
            if status == wanted {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} stayed {status}, wanted {wanted}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.expect(sql)
    }

    /// Nothing pending in the outbox, nothing unfinished, audit clean; then stops `serve`.
    pub(crate) async fn finish(self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await > 0 {
            assert!(tokio::time::Instant::now() < deadline, "outbox never drained");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            self.count("SELECT COUNT(*) FROM outbox WHERE state = 'dropped'").await,
            0,
            "dropped rows"
        );
        self.db.assert_audit_clean().await;
        let _ = self.stop.send(true);
        self.server.await.expect("server task").expect("server ran cleanly");
        let _ = std::fs::remove_dir_all(&self.storage);
    }
}

pub(crate) fn texts(chat: &ChatRecord) -> Vec<String> {
    chat.messages.iter().filter_map(|m| m.text().or(m.caption()).map(str::to_owned)).collect()
}

#[tokio::test]
async fn worker_delivers_photo_and_original_and_charges_once() {
    let p = Pipeline::start().await;
    p.funded(1_001, 100).await;
    sqlx::query("UPDATE users SET settings = '{\"delivery\": \"photo_and_file\"}' WHERE telegram_id = 1001")
        .execute(&p.db.pool)
        .await
        .expect("settings");
    let id = p.prompt(1_001, "a banana <astronaut> on the moon").await;
    assert_eq!(p.db.balance(1_001).await, (90, PRICE));
    let w = p.worker(fast()).await;
    let chat = p.chat(1_001, |c| c.messages.iter().any(|m| m.kind == "document")).await;
    let photo = chat.messages.iter().find(|m| m.kind == "photo").expect("a photo");
    let caption = photo.caption().unwrap_or("");
    assert!(
        caption.contains("a banana <astronaut> on the moon") && caption.contains("Nano Banana 2"),
        "{caption}"
    );
    assert_eq!(
        photo.callback_data(),
        vec![format!("regen:{id}"), format!("edit:{id}"), format!("orig:{id}")]
    );
    let document = chat.messages.iter().find(|m| m.kind == "document").expect("a document");
    // The files Telegram got are the stored ones.
    let (result_key, preview_key): (String, String) =
        sqlx::query_as("SELECT result_key, preview_key FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&p.db.pool)
            .await
            .expect("keys");
    let stored = |key: &str| std::fs::read(p.storage.join(key)).expect("stored file");
    let sent = |m: &fakes::telegram::BotMessage| {
        let file = m.file.as_ref().expect("file record");
        p.tg.file_bytes(&file.file_id).expect("file bytes").to_vec()
    };
    assert_eq!(sent(photo), stored(&preview_key));
    assert_eq!(sent(document), stored(&result_key));
    p.wait_status(id, "succeeded").await;
    assert_eq!(p.db.balance(1_001).await, (90, 0));
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 1);
    // Telegram's file_id is kept for sending again, with the usage and cost of the call.
    let deadline = tokio::time::Instant::now() + WAIT;
    while p
        .count("SELECT COUNT(*) FROM generations WHERE file_id IS NOT NULL AND document_file_id IS NOT NULL")
        .await
        == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "file ids never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recorded = p
        .count("SELECT COUNT(*) FROM generations WHERE usage IS NOT NULL AND provider_cost_micro_usd > 0 AND latency_ms >= 0")
        .await;
    assert_eq!(recorded, 1);
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_releases_once_and_explains_each_permanent_outcome() {
    let p = Pipeline::start().await;
    let cases = [
        (1_101, "a cat [[blocked]]", "blocked by the model's safety rules"),
        (1_102, "a cat [[text_only]]", "the model declined"),
        (1_103, "a cat [[no_image]]", "returned no picture"),
        (1_104, "a cat", "rejected as invalid"),
    ];
    let mut ids = Vec::new();
    for (user, prompt, _) in cases {
        p.funded(user, 30).await;
        ids.push(p.prompt(user, prompt).await);
    }
    // An aspect ratio Gemini refuses: a 400, never worth a retry.
    sqlx::query("UPDATE generations SET aspect_ratio = '7:3' WHERE user_id = 1104")
        .execute(&p.db.pool)
        .await
        .expect("bad ratio");
    let w = p.worker(fast()).await;
    for ((user, _, reason), id) in cases.into_iter().zip(ids) {
        let chat = p.chat(user, |c| texts(c).iter().any(|t| t.contains("could not be made"))).await;
        let told = texts(&chat).into_iter().find(|t| t.contains("could not be made")).unwrap_or_default();
        assert!(told.contains(reason) && told.contains("10 cr. returned"), "{user}: {told}");
        p.wait_status(id, "failed").await;
        assert_eq!(p.db.balance(user).await, (30, 0), "{user}");
        assert_eq!(p.status(id).await.1, 1, "{user}: one attempt, no retries");
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'release'").await, 4);
    assert_eq!(p.count("SELECT COUNT(*) FROM generations WHERE result_key IS NOT NULL").await, 0);
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_retries_then_succeeds_and_gives_up_after_max_attempts() {
    let p = Pipeline::start().await;
    p.funded(1_201, 50).await;
    p.funded(1_202, 50).await;
    p.gemini.queue(Behaviour::Server(500), 2);
    let flaky = p.prompt(1_201, "a cat").await;
    let w = p.worker(fast()).await;
    p.chat(1_201, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    p.wait_status(flaky, "succeeded").await;
    assert_eq!(p.status(flaky).await.1, 3, "two failures, then the image");
    assert_eq!(p.db.balance(1_201).await, (40, 0));

    let doomed = p.prompt(1_202, "a dog [[503]]").await;
    let chat = p.chat(1_202, |c| texts(c).iter().any(|t| t.contains("could not be made"))).await;
    assert!(texts(&chat).iter().any(|t| t.contains("did not answer after several attempts")), "{chat:?}");
    p.wait_status(doomed, "failed").await;
    assert_eq!(p.status(doomed).await.1, 3);
    assert_eq!(p.db.balance(1_202).await, (50, 0));
    assert!(!chat.messages.iter().any(|m| m.kind == "photo"));
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_lease_lost_under_a_live_worker_changes_nothing() {
    let p = Pipeline::start().await;
    p.funded(1_301, 50).await;
    p.gemini.set_latency(Duration::from_millis(2_500));
    let id = p.prompt(1_301, "a slow cat").await;
    // The first worker's lease expires after 1 s and it never renews it.
    let stalled = WorkerSettings { lease: Duration::from_secs(1), heartbeat_every: None, ..fast() };
    let first = p.worker(stalled).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let holder: Option<String> = sqlx::query_scalar("SELECT worker_id FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&p.db.pool)
            .await
            .expect("holder");
        if holder.as_deref() == Some(first.id.as_str()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "first worker never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = p.worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    // Both called Gemini; the first one's late answer was discarded.
    p.gemini.wait_for_requests(2, WAIT).await.expect("two calls");
    let winner: Option<String> = sqlx::query_scalar("SELECT worker_id FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&p.db.pool)
        .await
        .expect("holder");
    assert_eq!(winner.as_deref(), Some(second.id.as_str()));
    let deadline = tokio::time::Instant::now() + WAIT;
    while first.worker.stats.get(Some(Finished::Discarded)) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first worker's answer never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first.worker.stats.get(Some(Finished::Succeeded)), 0);
    assert_eq!(second.worker.stats.get(Some(Finished::Succeeded)), 1);
    Pipeline::stop_worker(first).await;
    Pipeline::stop_worker(second).await;
    let chat = p.chat(1_301, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(chat.messages.iter().filter(|m| m.kind == "photo").count(), 1);
    assert_eq!(p.db.balance(1_301).await, (40, 0));
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type IN ('commit', 'release')").await, 1);
    p.finish().await;
}

#[tokio::test]
async fn worker_daily_quota_pauses_alerts_admins_once_and_resumes_on_a_probe() {
    let p = Pipeline::start().await;
    p.funded(1_401, 50).await;
    p.gemini.queue(Behaviour::DailyQuota, 2);
    let id = p.prompt(1_401, "a cat").await;
    let w = p.worker(fast()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pause::is_paused(&mut *p.db.conn().await).await.expect("pause flag").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "generation never paused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(p.status(id).await.0, "failed", "a paused job is requeued, not failed");
    for admin in ADMINS {
        p.chat(admin, |c| texts(c).iter().any(|t| t.contains("Generation is paused"))).await;
    }
    // The second probe also hits the quota; the third succeeds and generation resumes.
    p.wait_status(id, "succeeded").await;
    assert_eq!(p.status(id).await.1, 1, "paused calls do not count as attempts");
    assert!(pause::is_paused(&mut *p.db.conn().await).await.expect("pause flag").is_none());
    for admin in ADMINS {
        let chat = p.chat(admin, |c| texts(c).iter().any(|t| t.contains("Generation resumed"))).await;
        let paused = texts(&chat).iter().filter(|t| t.contains("Generation is paused")).count();
        assert_eq!(paused, 1, "admins are alerted once per pause");
    }
    assert_eq!(p.gemini.requests().len(), 3);
    p.chat(1_401, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(p.db.balance(1_401).await, (40, 0));
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_shutdown_hands_back_in_flight_jobs() {
    let p = Pipeline::start().await;
    p.funded(1_501, 50).await;
    let id = p.prompt(1_501, "a cat [[hang]]").await;
    let w = p.worker(fast()).await;
    p.gemini.wait_for_requests(1, WAIT).await.expect("the call is in flight");
    Pipeline::stop_worker(w).await;
    let (status, attempts) = p.status(id).await;
    assert_eq!((status.as_str(), attempts), ("queued", 0), "handed back, attempt not counted");
    let holder: Option<String> = sqlx::query_scalar("SELECT worker_id FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&p.db.pool)
        .await
        .expect("holder");
    assert_eq!(holder, None);
    assert_eq!(p.db.balance(1_501).await, (40, PRICE), "still reserved, nothing settled");
    p.finish().await;
}

#[tokio::test]
async fn worker_deadline_sweep_fails_overdue_generations_and_tells_the_user() {
    let p = Pipeline::start().await;
    p.funded(1_601, 50).await;
    let id = p.prompt(1_601, "a cat").await;
    sqlx::query("UPDATE generations SET deadline = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&p.db.pool)
        .await
        .expect("overdue");
    let w = p.worker(fast()).await;
    let chat = p.chat(1_601, |c| texts(c).iter().any(|t| t.contains("it took too long"))).await;
    assert!(texts(&chat).iter().any(|t| t.contains("10 cr. returned")), "{chat:?}");
    p.wait_status(id, "failed").await;
    assert_eq!(p.db.balance(1_601).await, (50, 0));
    assert!(p.gemini.requests().is_empty(), "an overdue job is never called");
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_run_serves_and_works_in_one_process_until_shutdown() {
    let p = Pipeline::start().await;
    p.funded(1_701, 50).await;
    // `run` next to the test's `serve`: the second outbox sender waits for the leader lock.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (stop, rx) = watch::channel(false);
    let config = p.config.clone();
    let run = tokio::spawn(async move { nanobanana::service::run_both(&config, listener, rx).await });
    p.prompt(1_701, "a cat").await;
    p.chat(1_701, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    let _ = stop.send(true);
    let stopped = tokio::time::timeout(WAIT, run).await.expect("run stops in time");
    stopped.expect("run task").expect("run ended cleanly");
    p.finish().await;
}

#[tokio::test]
async fn worker_process_killed_mid_call_is_finished_by_another_worker() {
    let p = Pipeline::start().await;
    p.funded(1_801, 50).await;
    let id = p.prompt(1_801, "a cat").await;
    // The first call never gets an answer: the process is killed while Gemini holds it.
    p.gemini.queue(Behaviour::Hang, 1);
    let mut child = p.worker_process();
    if let Err(e) = p.gemini.wait_for_requests(1, WAIT).await {
        panic!("the worker process never called Gemini ({e:?}); its log:\n{}", p.process_logs());
    }
    assert_eq!(p.status(id).await.0, "processing");
    child.start_kill().expect("kill -9");
    child.wait().await.expect("the process is gone");
    // Time passes: the dead worker's lease expires.
    sqlx::query("UPDATE generations SET locked_until = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&p.db.pool)
        .await
        .expect("expire the lease");
    let w = p.worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    let chat = p.chat(1_801, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(chat.messages.iter().filter(|m| m.kind == "photo").count(), 1);
    assert_eq!(p.db.balance(1_801).await, (40, 0));
    assert_eq!(p.status(id).await.1, 2, "the killed attempt and the one that finished");
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

/// Deletes every Redis key of this test's prefix: `FLUSHALL` for this deployment, without
/// touching the keys of tests running beside it.
async fn flush_prefix(prefix: &str) {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned());
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("DEL");
    }
}

#[tokio::test]
async fn worker_redis_data_lost_with_jobs_queued_and_in_flight_all_finish() {
    let p = Pipeline::start().await;
    p.gemini.set_latency(Duration::from_millis(300));
    let users = [1_901, 1_902, 1_903, 1_904];
    let mut ids = Vec::new();
    for user in users {
        p.funded(user, 50).await;
        ids.push(p.prompt(user, "a cat").await);
    }
    let w = p.worker(WorkerSettings { concurrency: 2, ..fast() }).await;
    p.gemini.wait_for_requests(1, WAIT).await.expect("calls in flight");
    flush_prefix(&p.config.redis.prefix).await;
    // A request after the loss is signalled into a stream that no longer has its group.
    p.funded(1_905, 50).await;
    ids.push(p.prompt(1_905, "a dog").await);
    for id in &ids {
        p.wait_status(*id, "succeeded").await;
    }
    for user in users.into_iter().chain([1_905]) {
        p.chat(user, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
        assert_eq!(p.db.balance(user).await, (40, 0));
    }
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

/// Queues `prompt` for `user` as a request would (reserve + insert in one transaction).
async fn queue_generation(db: &TestDb, user: i64, prompt: &str) -> Uuid {
    let id = Uuid::new_v4();
    let mut tx = db.pool.begin().await.expect("begin");
    let cost = crate::helpers::credits_of(PRICE);
    nanobanana::ledger::reserve(&mut tx, user, id, cost).await.expect("reserve");
    let source_key = id.to_string();
    let generation = nanobanana::jobs::new::NewGeneration {
        id,
        user_id: user,
        prompt,
        model: nanobanana::domain::Model::Flash,
        image_size: None,
        aspect_ratio: "1:1",
        cost,
        source_key: &source_key,
    };
    assert!(nanobanana::jobs::new::insert(&mut tx, &generation).await.expect("insert"));
    tx.commit().await.expect("commit");
    id
}

#[tokio::test]
async fn worker_pair_takes_a_thousand_generations_with_faults_to_the_end() {
    let p = Pipeline::start().await;
    let (users, per_user) = (50_i64, 20_usize);
    for user in 0..users {
        p.db.user_with(20_000 + user, PRICE * 20).await;
    }
    // Transient faults on the first calls, whoever makes them; permanent ones by prompt.
    p.gemini.queue(Behaviour::Server(503), 60);
    p.gemini.queue(Behaviour::Drop, 20);
    let mut expected_failures = 0;
    for n in 0..(users as usize * per_user) {
        let user = 20_000 + (n as i64 % users);
        let prompt = match n % 20 {
            0 => "a cat [[blocked]]",
            1 => "a cat [[text_only]]",
            2 => "a cat [[503]]",
            _ => "a cat",
        };
        expected_failures += usize::from(n % 20 < 3);
        queue_generation(&p.db, user, &format!("{prompt} #{n}")).await;
    }
    let settings = WorkerSettings { concurrency: 8, ..fast() };
    let (a, b) = (p.worker(settings.clone()).await, p.worker(settings).await);
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(240);
    while p.count("SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "not all generations ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("1000 generations ended in {:?}", started.elapsed());
    Pipeline::stop_worker(a).await;
    Pipeline::stop_worker(b).await;
    let failed = p.count("SELECT COUNT(*) FROM generations WHERE status = 'failed'").await;
    assert_eq!(failed, expected_failures as i64);
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 1000 - failed);
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'release'").await, failed);
    let delivered = p.count("SELECT COUNT(*) FROM outbox WHERE method = 'sendPhoto'").await;
    assert_eq!(delivered, 1000 - failed, "one photo per success");
    p.db.assert_audit_clean().await;
    // These users never opened a chat: their messages are not delivered, and that is fine here.
    let _ = p.stop.send(true);
    p.server.await.expect("server task").expect("server ran cleanly");
    let _ = std::fs::remove_dir_all(&p.storage);
}

#[tokio::test]
async fn worker_downloads_stores_and_sends_reference_photos() {
    let p = Pipeline::start().await;
    p.funded(2_101, 50).await;
    let spec = users::ImageSpec {
        caption: Some("make it blue".into()),
        width: Some(80),
        height: Some(60),
        ..Default::default()
    };
    let sent = users::photo(p.tg.state(), 2_101, &profile("en"), &spec, None).expect("photo");
    let file_id = sent.file_id.expect("the photo's file id");
    p.chat(2_101, |c| c.messages.len() >= 2).await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM generations WHERE user_id = 2101")
        .fetch_one(&p.db.pool)
        .await
        .expect("a generation with a reference");
    let w = p.worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    let original = p.tg.file_bytes(&file_id).expect("the user's photo").to_vec();
    let requests = p.gemini.requests();
    let references = &requests.first().expect("one call").references;
    assert_eq!(references.len(), 1);
    assert_eq!(references[0].size, original.len());
    let stored = std::fs::read_dir(p.storage.join(format!("references/{id}"))).expect("references stored");
    let stored: Vec<Vec<u8>> =
        stored.map(|e| std::fs::read(e.expect("entry").path()).expect("read")).collect();
    assert_eq!(stored, vec![original]);
    p.chat(2_101, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(p.db.balance(2_101).await, (40, 0));
    Pipeline::stop_worker(w).await;
    p.finish().await;
}

/// A Gemini that answers every call with an image part whose bytes have a PNG header and
/// nothing decodable after it.
async fn garbage_gemini() -> (String, JoinHandle<()>) {
    use base64::Engine;
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13];
    png.extend(b"IHDR");
    png.extend(64u32.to_be_bytes());
    png.extend(64u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png.extend([0x5a; 64]);
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let answer = serde_json::json!({
        "candidates": [{"content": {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295}
    });
    let app = axum::Router::new().fallback(move || {
        let answer = answer.clone();
        async move { axum::Json(answer) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, server)
}

#[tokio::test]
async fn worker_never_charges_for_an_undecodable_image() {
    let (url, server) = garbage_gemini().await;
    let p = Pipeline::start_with_gemini(Some(url)).await;
    p.funded(2_201, 50).await;
    let id = p.prompt(2_201, "a cat").await;
    let w = p.worker(fast()).await;
    let chat = p.chat(2_201, |c| texts(c).iter().any(|t| t.contains("could not be made"))).await;
    assert!(!chat.messages.iter().any(|m| m.kind == "photo"));
    p.wait_status(id, "failed").await;
    assert_eq!(p.status(id).await.1, 3, "retried as a bad image, then given up");
    assert_eq!(p.db.balance(2_201).await, (50, 0));
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 0);
    let error: Option<String> = sqlx::query_scalar("SELECT error FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&p.db.pool)
        .await
        .expect("error");
    assert!(error.as_deref().is_some_and(|e| e.contains("bad_image")), "{error:?}");
    Pipeline::stop_worker(w).await;
    p.finish().await;
    server.abort();
}

#[tokio::test]
async fn worker_process_on_sigterm_hands_back_and_exits_zero() {
    let p = Pipeline::start().await;
    p.funded(2_301, 50).await;
    let id = p.prompt(2_301, "a cat [[hang]]").await;
    let mut child = p.worker_process();
    if let Err(e) = p.gemini.wait_for_requests(1, WAIT).await {
        panic!("the worker process never called Gemini ({e:?}); its log:\n{}", p.process_logs());
    }
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(killed.success());
    let exit = tokio::time::timeout(WAIT, child.wait()).await.expect("exits in time").expect("exit status");
    assert!(exit.success(), "{exit:?}");
    assert_eq!(p.status(id).await, ("queued".to_owned(), 0), "handed back, attempt not counted");
    assert_eq!(p.db.balance(2_301).await, (40, PRICE));
    p.finish().await;
}

#[tokio::test]
async fn worker_processes_take_a_thousand_generations_through_faults_and_a_kill() {
    let p = Pipeline::start().await;
    let users = 50_i64;
    for user in 0..users {
        p.db.user_with(30_000 + user, PRICE * 20).await;
    }
    let mut permanent = 0;
    for n in 0..1000_usize {
        let prompt = match n % 25 {
            0 => "a cat [[blocked]]",
            1 => "a cat [[no_image]]",
            _ => "a cat",
        };
        permanent += usize::from(n % 25 < 2);
        queue_generation(&p.db, 30_000 + (n as i64 % users), &format!("{prompt} #{n}")).await;
    }
    p.gemini.queue(Behaviour::Server(503), 40);
    let mut first = p.worker_process();
    let mut second = p.worker_process();
    let finished = "SELECT COUNT(*) FROM generations WHERE status IN ('succeeded', 'failed')";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while p.count(finished).await < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers made no progress:\n{}",
            p.process_logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Connections drop mid-answer, and one process dies with jobs in hand.
    p.gemini.queue(Behaviour::Drop, 10);
    first.start_kill().expect("kill -9");
    first.wait().await.expect("the process is gone");
    // Its leases run out (as 60 s would make them), and a replacement starts.
    sqlx::query("UPDATE generations SET locked_until = now() WHERE status = 'processing'")
        .execute(&p.db.pool)
        .await
        .expect("expire the leases");
    let mut third = p.worker_process();
    while p.count("SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "not all generations ended:\n{}", p.process_logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for child in [&mut second, &mut third] {
        let pid = child.id().expect("pid").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        assert!(child.wait().await.expect("exit").success());
    }
    let failed = p.count("SELECT COUNT(*) FROM generations WHERE status = 'failed'").await;
    assert_eq!(failed, permanent as i64, "only the permanent refusals failed");
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 1000 - failed);
    assert_eq!(p.count("SELECT COUNT(*) FROM outbox WHERE method = 'sendPhoto'").await, 1000 - failed);
    p.db.assert_audit_clean().await;
    let _ = p.stop.send(true);
    p.server.await.expect("server task").expect("server ran cleanly");
    let _ = std::fs::remove_dir_all(&p.storage);
}
