//! Guarantee 3 with a real process: `nanobanana serve` is killed with SIGKILL while the fake
//! Telegram delivers updates, then started again. Telegram redelivers what was not answered 2xx;
//! every update ends handled exactly once — one generation per prompt, one reply per update.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fakes::telegram::users::{self, UserProfile};
use fakes::telegram::TelegramConfig;
use fakes::FakeTelegram;

use crate::helpers::TestDb;

const SECRET: &str = "crash-test-secret";
const USERS: i64 = 40;

/// A child process killed when dropped, so a failing test leaves no server behind.
struct Serve(Child);

impl Serve {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_serve(db: &TestDb, tg: &FakeTelegram, port: u16, prefix: &str) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_nanobanana"))
        .arg("serve")
        .env("DATABASE_URL", db.url.as_str())
        .env("TELEGRAM_BOT_TOKEN", tg.token())
        .env("TELEGRAM_WEBHOOK_SECRET", SECRET)
        .env("TELEGRAM_API_URL", tg.base_url())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}/"))
        .env("REDIS_PREFIX", prefix)
        .env("DATABASE_MAX_CONNECTIONS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nanobanana serve");
    Serve(child)
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test]
async fn a_killed_service_loses_and_repeats_nothing() {
    // The service below opens up to 50 connections: run alone among the heavy tests.
    let db = TestDb::heavy(5).await;
    let config =
        TelegramConfig { webhook_retry_delay: Duration::from_millis(100), ..TelegramConfig::default() };
    let tg = FakeTelegram::start(config).await.expect("fake Telegram");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address").port()
    };
    let prefix = format!("nbtest:{}:", uuid::Uuid::new_v4().simple());
    for user in 0..USERS {
        db.user_with(7000 + user, 100).await;
    }
    // Half the users' balance rows are locked by this test, so their updates stop inside the
    // service's transactions: the kill then lands mid-handling, deterministically.
    let mut blocker = db.pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM balances WHERE user_id >= 7000 AND user_id < $1 FOR UPDATE")
        .bind(7000 + USERS / 2)
        .execute(&mut *blocker)
        .await
        .expect("lock half the balances");
    let mut serve = spawn_serve(&db, &tg, port, &prefix);
    let profile =
        UserProfile { first_name: Some("K".into()), username: None, language_code: Some("en".into()) };
    for user in 0..USERS {
        users::text(tg.state(), 7000 + user, &profile, &format!("prompt of {user}")).expect("user writes");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    while count(&db, "SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'").await < USERS / 2
        || count(&db, waiting).await < 3
    {
        assert!(tokio::time::Instant::now() < deadline, "the service never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serve.kill();
    blocker.rollback().await.expect("unlock");
    let handled_before = count(&db, "SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'").await;
    let mut serve = spawn_serve(&db, &tg, port, &prefix);
    tg.wait_until_no_pending_updates(Duration::from_secs(60)).await.expect("all updates delivered");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(&db, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "outbox never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serve.kill();

    assert_eq!(handled_before, USERS / 2, "the blocked half was in flight when the service died");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'").await, USERS);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM generations").await, USERS, "one generation per prompt");
    // Every reply arrives. Telegram has no idempotency key, so the one message the sender had
    // on the wire when it died may arrive twice; the sender sends one at a time, so never more.
    let mut replies = 0;
    for user in 0..USERS {
        let chat = tg.chat(7000 + user).expect("chat");
        assert!(!chat.messages.is_empty(), "user {user} got no reply");
        replies += chat.messages.len() as i64;
        assert_eq!(db.balance(7000 + user).await, (90, 10));
    }
    assert!(replies <= USERS + 1, "{replies} replies to {USERS} prompts");
    db.assert_audit_clean().await;
}
