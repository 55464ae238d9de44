//! A fresh database per test, cloned from a template migrated once per run; alone for the
//! database tests (ledger, jobs, audit), inside `TestApp` for the end-to-end ones.
//!
//! Databases are named `nbt_<pid>_<n>`; each run drops those of processes no longer alive,
//! so failed runs leave nothing behind for long.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nanobanana::config::DEFAULT_DATABASE_URL;
use nanobanana::db::{self, users};
use nanobanana::domain::{Credits, Model, TelegramId};
use nanobanana::ledger::{self, Outcome};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};
use uuid::Uuid;

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Tests that open many connections take turns, so Postgres' connection limit holds.
static HEAVY: Semaphore = Semaphore::const_new(1);

pub fn server_url() -> url::Url {
    let raw = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    url::Url::parse(&raw).expect("DATABASE_URL is a URL")
}

fn url_for(name: &str) -> url::Url {
    let mut url = server_url();
    url.set_path(&format!("/{name}"));
    url
}

async fn admin() -> PgConnection {
    let options: PgConnectOptions = url_for("postgres").as_str().parse().expect("admin URL");
    PgConnection::connect_with(&options).await.expect("connect to the postgres database")
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql).execute(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Builds the migrated template once per process (serialized across processes).
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let checksum: String =
                db::migrator().iter().map(|m| format!("{}{:x?}", m.version, &m.checksum[..4])).collect();
            let name = format!("nbt_template_{:x}", fxhash(&checksum));
            let mut admin = admin().await;
            exec(&mut admin, "SELECT pg_advisory_lock(727274)").await;
            sweep_dead(&mut admin).await;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await
                    .expect("look up the template");
            if !exists {
                let building = format!("{name}_building");
                exec(&mut admin, &format!("DROP DATABASE IF EXISTS {building}")).await;
                exec(&mut admin, &format!("CREATE DATABASE {building}")).await;
                let pool = PgPool::connect(url_for(&building).as_str()).await.expect("connect to template");
                db::migrate(&pool).await.expect("migrate the template");
                pool.close().await;
                exec(&mut admin, &format!("ALTER DATABASE {building} RENAME TO {name}")).await;
            }
            exec(&mut admin, "SELECT pg_advisory_unlock(727274)").await;
            name
        })
        .await
}

/// Drops the databases of test processes that have exited.
async fn sweep_dead(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname ~ '^nbt_[0-9]+_'")
            .fetch_all(&mut *admin)
            .await
            .expect("list test databases");
    for name in names {
        let pid = name.split('_').nth(1).unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            exec(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub pool: PgPool,
    pub url: url::Url,
    _heavy: Option<SemaphorePermit<'static>>,
}

impl TestDb {
    pub async fn new() -> Self {
        Self::with_connections(5, false).await
    }

    /// For tests that need many simultaneous connections: they run one at a time.
    pub async fn heavy(connections: u32) -> Self {
        Self::with_connections(connections, true).await
    }

    async fn with_connections(connections: u32, heavy: bool) -> Self {
        let permit = if heavy { Some(HEAVY.acquire().await.expect("semaphore open")) } else { None };
        let template = template().await;
        let name = format!("nbt_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut admin = admin().await;
        exec(&mut admin, &format!("CREATE DATABASE {name} TEMPLATE {template}")).await;
        admin.close().await.ok();
        let url = url_for(&name);
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url.as_str())
            .await
            .expect("connect to the test database");
        Self { pool, url, _heavy: permit }
    }

    pub async fn conn(&self) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
        self.pool.acquire().await.expect("a connection")
    }

    pub async fn user(&self, telegram_id: TelegramId) {
        let user = users::NewUser { telegram_id, username: Some("tester"), first_name: Some("Test") };
        users::ensure(&mut *self.conn().await, &user).await.expect("create user");
    }

    /// A user holding `credits`, granted through the ledger.
    pub async fn user_with(&self, telegram_id: TelegramId, credits: i64) {
        self.user(telegram_id).await;
        let reason = ledger::Reason::parse("test setup").expect("reason");
        let key = format!("setup-{}", Uuid::new_v4());
        let adjustment = ledger::Adjustment {
            user_id: telegram_id,
            direction: ledger::Direction::Grant,
            credits: credits_of(credits),
            reason: &reason,
            actor: "test",
            idempotency_key: &key,
        };
        let mut tx = self.pool.begin().await.expect("begin");
        let outcome = ledger::adjust(&mut tx, &adjustment).await.expect("grant");
        assert!(matches!(outcome, Outcome::Applied(_)));
        tx.commit().await.expect("commit");
    }

    pub async fn balance(&self, telegram_id: TelegramId) -> (i64, i64) {
        let b = nanobanana::ledger::balance(&mut *self.conn().await, telegram_id)
            .await
            .expect("read balance")
            .expect("user exists");
        (b.credits_available, b.credits_reserved)
    }

    /// The bonus part of the balance: (available, reserved).
    pub async fn bonus_balance(&self, telegram_id: TelegramId) -> (i64, i64) {
        let b = nanobanana::ledger::balance(&mut *self.conn().await, telegram_id)
            .await
            .expect("read balance")
            .expect("user exists");
        (b.bonus_available, b.bonus_reserved)
    }

    /// Gives `credits` bonus credits (source: promo) through the ledger, under a fresh key.
    pub async fn bonus(&self, telegram_id: TelegramId, credits: i64) {
        let mut tx = self.pool.begin().await.expect("begin");
        let key = format!("test-bonus:{}", Uuid::new_v4());
        let outcome = ledger::grant_bonus(
            &mut tx,
            telegram_id,
            credits_of(credits),
            ledger::BonusSource::Promo,
            &key,
            "test",
        )
        .await
        .expect("bonus");
        assert!(matches!(outcome, Outcome::Applied(_)));
        tx.commit().await.expect("commit");
    }

    /// Inserts a generation and reserves its cost in one transaction, as a request does.
    pub async fn request_generation(
        &self,
        user_id: TelegramId,
        cost: i64,
    ) -> Result<Uuid, ledger::LedgerError> {
        self.request_prompt(user_id, cost, "a banana").await
    }

    /// As `request_generation`, for `prompt`.
    pub async fn request_prompt(
        &self,
        user_id: TelegramId,
        cost: i64,
        prompt: &str,
    ) -> Result<Uuid, ledger::LedgerError> {
        let id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        ledger::reserve(&mut tx, user_id, id, credits_of(cost)).await?;
        let source_key = id.to_string();
        let generation = nanobanana::jobs::new::NewGeneration {
            id,
            user_id,
            prompt,
            model: Model::parse("nb21").expect("a catalog key"),
            model_id: None,
            image_size: None,
            aspect_ratio: "1:1",
            cost: credits_of(cost),
            source_key: &source_key,
        };
        assert!(nanobanana::jobs::new::insert(&mut tx, &generation).await?);
        tx.commit().await?;
        Ok(id)
    }

    /// Moves a queued generation to processing; returns its lease epoch.
    pub async fn start(&self, id: Uuid) -> i64 {
        nanobanana::jobs::new::start(&mut *self.conn().await, id)
            .await
            .expect("start")
            .expect("generation was queued")
    }

    /// A succeeded charge of a new topup worth `credits`; returns `payments.id`.
    pub async fn succeeded_charge(&self, user_id: TelegramId, credits: i64) -> i64 {
        let topup = self.topup(user_id, credits).await;
        self.charge(topup, &format!("pay-{}", Uuid::new_v4()), db::payments::ChargeStatus::Succeeded).await
    }

    pub async fn topup(&self, user_id: TelegramId, credits: i64) -> Uuid {
        let topup = db::payments::NewTopup {
            user_id,
            provider: db::payments::Provider::YooKassa,
            pack: "rub",
            amount_minor: credits * 100,
            credits: credits_of(credits),
            source_key: None,
        };
        db::payments::create_topup(&mut *self.conn().await, &topup).await.expect("topup")
    }

    pub async fn charge(&self, topup_id: Uuid, payment_id: &str, status: db::payments::ChargeStatus) -> i64 {
        let amount: i64 = sqlx::query_scalar("SELECT amount_minor FROM topups WHERE id = $1")
            .bind(topup_id)
            .fetch_one(&self.pool)
            .await
            .expect("topup amount");
        let charge = db::payments::Charge {
            provider: db::payments::Provider::YooKassa,
            payment_id,
            topup_id,
            amount_minor: amount,
            status,
            raw_payload: None,
        };
        db::payments::record_charge(&mut *self.conn().await, &charge).await.expect("charge")
    }

    pub async fn credit(&self, payment_id: i64) -> Result<Outcome, ledger::LedgerError> {
        let mut tx = self.pool.begin().await?;
        let outcome = ledger::credit_charge(&mut tx, payment_id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn settle(
        &self,
        id: Uuid,
        epoch: i64,
        settlement: ledger::Settlement<'_>,
    ) -> Result<ledger::Settled, ledger::LedgerError> {
        let commit =
            matches!(settlement, ledger::Settlement::Commit | ledger::Settlement::CommitSmaller { .. });
        let mut tx = self.pool.begin().await?;
        let settled = ledger::settle(&mut tx, id, epoch, settlement).await?;
        if commit && matches!(settled, ledger::Settled::Now(_)) {
            // As the worker commits: with the result stored (the audit checks its keys).
            sqlx::query("UPDATE generations SET result_key = $2, preview_key = $3 WHERE id = $1")
                .bind(id)
                .bind(nanobanana::storage::original_key(id, "png"))
                .bind(nanobanana::storage::preview_key(id))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(settled)
    }

    pub async fn audit(&self) -> nanobanana::audit::Report {
        nanobanana::audit::run(&mut *self.conn().await).await.expect("audit runs")
    }

    /// Asserts the audit finds nothing wrong.
    pub async fn assert_audit_clean(&self) {
        let report = self.audit().await;
        assert!(report.clean, "audit found violations:\n{report}");
    }

    /// Waits until nothing is unfinished but what `leave` allows, then asserts the audit clean
    /// (`end::settled`): for tests whose service is not a `TestApp` (the sandbox, loadgen's).
    pub async fn assert_settled(&self, leave: super::end::Leave) {
        super::end::settled(&self.pool, leave, super::wait::WAIT).await;
    }

    /// Runs raw SQL with triggers and foreign keys off, to corrupt data on purpose.
    pub async fn corrupt(&self, sql: &str) {
        let mut conn = self.conn().await;
        exec(
            &mut conn,
            &format!("SET session_replication_role = replica; {sql}; SET session_replication_role = DEFAULT"),
        )
        .await;
    }
}

pub fn credits_of(n: i64) -> Credits {
    Credits::new(n).expect("positive test amount")
}
