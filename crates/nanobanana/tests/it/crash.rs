//! Guarantee 3 with a real process: `nanobanana serve` is killed with SIGKILL while the fake
//! Telegram delivers updates, then started again. Telegram redelivers what was not answered 2xx;
//! every update ends handled exactly once — one generation per prompt, one reply per update.

use std::time::Duration;

use fakes::telegram::TelegramConfig;

use crate::support::{fast, wait, TestApp};

const USERS: i64 = 40;
const HANDLED: &str = "SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'";

#[tokio::test]
async fn a_killed_service_loses_and_repeats_nothing() {
    // The service below opens up to 50 connections: run alone among the heavy tests.
    let app = TestApp::builder()
        .heavy(5)
        .telegram(TelegramConfig {
            webhook_retry_delay: Duration::from_millis(100),
            ..TelegramConfig::default()
        })
        .env("DATABASE_MAX_CONNECTIONS", "50")
        .serve_as_process()
        .start()
        .await;
    let db = &app.db;
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
    let mut serve = app.spawn_serve();
    for user in 0..USERS {
        app.text(7000 + user, "en", &format!("prompt of {user}"));
    }
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    wait::until("the service got going", Duration::from_secs(30), || async {
        let (handled, blocked) = (app.count(HANDLED).await, app.count(waiting).await);
        if handled >= USERS / 2 && blocked >= 3 {
            Ok(())
        } else {
            Err(format!("{handled} handled, {blocked} waiting on a lock"))
        }
    })
    .await;
    serve.kill().await;
    // Counted before the unlock: a blocked update whose transaction is one call of the intake's
    // server-side function (the fast path) runs to its end inside the database once unlocked,
    // whole or not at all, and Telegram's redelivery then finds it handled.
    let handled_before = app.count(HANDLED).await;
    blocker.rollback().await.expect("unlock");
    let mut serve = app.spawn_serve();
    app.tg.wait_until_no_pending_updates(Duration::from_secs(60)).await.expect("all updates delivered");
    wait::until("outbox drained", Duration::from_secs(60), || async {
        match app.count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await {
            0 => Ok(()),
            pending => Err(format!("{pending} pending")),
        }
    })
    .await;
    serve.kill().await;

    assert_eq!(handled_before, USERS / 2, "the blocked half was in flight when the service died");
    assert_eq!(app.count(HANDLED).await, USERS);
    assert_eq!(app.count("SELECT COUNT(*) FROM generations").await, USERS, "one generation per prompt");
    // Every reply arrives. Telegram has no idempotency key, so the one message the sender had
    // on the wire when it died may arrive twice; the sender sends one at a time, so never more.
    let mut replies = 0;
    for user in 0..USERS {
        let chat = app.tg.chat(7000 + user).expect("chat");
        assert!(!chat.messages.is_empty(), "user {user} got no reply");
        replies += chat.messages.len() as i64;
        assert_eq!(db.balance(7000 + user).await, (90, 10));
    }
    assert!(replies <= USERS + 1, "{replies} replies to {USERS} prompts");
    db.assert_audit_clean().await;
    // The end: `serve` once more and a worker make and deliver the 40 generations.
    let _serve = app.spawn_serve();
    app.run_worker(fast()).await;
    app.finish().await;
}
