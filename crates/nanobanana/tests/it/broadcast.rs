//! Broadcasts end to end (DESIGN §10 "Broadcasts"): 1,000 users, three of whom blocked the bot
//! without the bot knowing, `serve` killed with SIGKILL mid-way and started again — everyone
//! else gets the message exactly once, the blocked become inactive, and a paid picture queued
//! during the broadcast goes out before the broadcast's rows queued ahead of it.

use std::time::Duration;

use fakes::telegram::users;

use crate::support::app::profile;
use crate::support::{fast, wait, TestApp};

const ADMIN: i64 = 2000;
const FIRST: i64 = 20_001;
const USERS: i64 = 1000;
const BLOCKED: [i64; 3] = [20_010, 20_500, 20_990];
const PAYER: i64 = 2100;
const TEXT: &str = "News: a new model";

#[tokio::test]
async fn a_broadcast_survives_a_kill_sends_everyone_once_and_lets_paid_pictures_pass() {
    let app = TestApp::builder()
        .env("ADMIN_IDS", &ADMIN.to_string())
        .env("DATABASE_MAX_CONNECTIONS", "20")
        .heavy(5)
        .serve_as_process()
        .start()
        .await;
    sqlx::query(
        "INSERT INTO users (telegram_id, language, last_seen_at)
         SELECT g, 'en', now() FROM generate_series($1::BIGINT, $2::BIGINT) g",
    )
    .bind(FIRST)
    .bind(FIRST + USERS - 1)
    .execute(&app.db.pool)
    .await
    .expect("users");
    {
        let mut tg = app.tg.state().lock();
        for user in FIRST..FIRST + USERS {
            // Three blocked the bot while it was not looking: only a send tells.
            tg.ensure_user(users::user_object(user, &profile("en"))).blocked = BLOCKED.contains(&user);
        }
    }
    app.db.user_with(PAYER, 100).await;
    app.tg.state().lock().ensure_user(users::user_object(PAYER, &profile("en")));
    let mut serve = app.spawn_serve();
    let draft = app
        .ask(
            ADMIN,
            "en",
            "broadcast",
            &format!("new <b>News</b>: a new model\nbutton: More | https://example.com/news"),
            1,
        )
        .await;
    assert!(draft.contains("Draft 1 saved for segment all (1002 recipients)"), "{draft}");
    app.text(ADMIN, "en", "/broadcast confirm");
    app.wait_text(ADMIN, "Broadcast 1 started: 1002 recipients").await;

    // Mid-way, the sender is held before its next send (the test locks the queued broadcast
    // rows), so the kill lands between sends, deterministically; then serve starts again.
    let sent = "SELECT COUNT(*) FROM outbox WHERE class = 3 AND state = 'sent'";
    wait::until("a third sent", Duration::from_secs(60), || async {
        let n = app.count(sent).await;
        if n >= 300 {
            Ok(())
        } else {
            Err(format!("{n} sent"))
        }
    })
    .await;
    let mut lock = app.db.pool.begin().await.expect("begin");
    sqlx::query("SELECT id FROM outbox WHERE class = 3 AND state = 'pending' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .expect("lock the queued broadcast rows");
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    app.until("the sender waits for its next row", waiting, 1).await;
    serve.kill().await;
    // The killed process's connections die with it; Postgres notices a dead client only when it
    // next talks to it, so the backend left waiting on the lock is ended as the kill would.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    .execute(&app.db.pool)
    .await
    .expect("end the dead process's backend");
    lock.rollback().await.expect("unlock");
    let before_restart = app.count(sent).await;
    assert!(before_restart < 1002, "the kill landed mid-way");
    let _serve = app.spawn_serve();

    // A paid picture during the broadcast.
    app.run_worker(fast()).await;
    app.text(PAYER, "en", "a cat");
    app.wait_message(PAYER, "the picture", |m| m.kind == "photo").await;
    wait::until("broadcast done", Duration::from_secs(120), || async {
        match app.count("SELECT COUNT(*) FROM broadcasts WHERE state = 'done'").await {
            1 => Ok(()),
            _ => Err(format!("{} sent", app.count(sent).await)),
        }
    })
    .await;

    for user in (FIRST..FIRST + USERS).chain([ADMIN, PAYER]) {
        let got = app
            .tg
            .chat(user)
            .map_or(0, |c| c.messages.iter().filter(|m| m.text().is_some_and(|t| t.contains(TEXT))).count());
        let expected = usize::from(!BLOCKED.contains(&user));
        assert_eq!(got, expected, "user {user} got the broadcast {got} times");
    }
    let inactive: Vec<i64> =
        sqlx::query_scalar("SELECT telegram_id FROM users WHERE NOT is_active ORDER BY 1")
            .fetch_all(&app.db.pool)
            .await
            .expect("inactive");
    assert_eq!(inactive, BLOCKED);
    // A row on the wire when serve died is never sent again; its outcome is unknown, so after a
    // minute it counts as failed (the user may well have it: above, everyone did, once).
    let unknown = app.count("SELECT COUNT(*) FROM outbox WHERE class = 3 AND state = 'sending'").await;
    assert!(unknown <= 1, "{unknown} broadcast rows left on the wire");
    app.text(ADMIN, "en", "/broadcast status");
    app.wait_text(ADMIN, "3 blocked, 0 waiting of 1002").await;
    // Once its chat's pace allowed it (a second after the chat's previous message), the
    // picture waited for at most one broadcast send besides the one on the wire.
    let passed: i64 = app
        .count(&format!(
            "WITH p AS (SELECT id, created_at, sent_at FROM outbox WHERE class = 0 AND method = 'sendPhoto'),
                  prev AS (SELECT MAX(o.sent_at) AS at FROM outbox o, p
                           WHERE o.chat_id = {PAYER} AND o.id <> p.id AND o.sent_at < p.sent_at)
             SELECT COUNT(*) FROM outbox b, p, prev
             WHERE b.class = 3 AND b.sent_at < p.sent_at
               AND b.sent_at > GREATEST(p.created_at, prev.at + interval '1 second')"
        ))
        .await;
    let rows: Vec<(i64, i16, String, Option<String>, String, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT id, class, method, chat_id::TEXT, created_at::TEXT, next_attempt_at::TEXT, sent_at::TEXT FROM outbox WHERE chat_id = 2100 ORDER BY id"
    ))
    .fetch_all(&app.db.pool)
    .await
    .expect("rows");
    assert!(passed <= 2, "{passed} broadcast messages went out while the paid picture could have: {rows:#?}");
    app.finish_leaving(crate::support::end::Leave { dropped_outbox: true, ..Default::default() }).await;
}
