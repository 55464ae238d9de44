//! Chatter must not starve paid deliveries (DESIGN §10; issue 14 item 7): a backlog of replies
//! to other users never holds a paid picture back, and one user's flood is capped by their
//! reply budget (Redis). The fake Telegram and Gemini over HTTP, real Postgres and Redis.

use std::time::Duration;

use crate::support::{fast, wait, TestApp, WAIT};

/// 50 users flood the bot with unknown commands (600 replies: 20 s of Telegram's 30 a second)
/// while one user's paid picture is made: its photo is sent within a few seconds of the
/// worker's commit, not after the backlog.
#[tokio::test]
async fn a_paid_picture_goes_out_within_seconds_of_its_commit_while_50_users_flood() {
    let p = TestApp::builder().heavy(10).start().await;
    let paid = 14_700;
    p.funded(paid, 50).await;
    p.gemini.set_latency(Duration::from_millis(2_000));
    for round in 0..12 {
        for user in 14_701..14_751 {
            p.command(user, "en", &format!("nonsense{round}"));
        }
    }
    // The prompt's own "accepted" message waits behind the flood like any reply; the picture's
    // commit lifts that chat ahead of it.
    p.text(paid, "en", "a banana that skips the queue");
    p.until("the generation queued", "SELECT COUNT(*) FROM generations", 1).await;
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM generations").fetch_one(&p.db.pool).await.expect("id");
    p.run_worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    let backlog_at_commit = p.count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await;
    let lag: f64 = wait::until("the photo sent", WAIT, || async {
        let lag: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM o.sent_at - g.completed_at)::FLOAT8
             FROM outbox o JOIN generations g ON g.id = o.delivers
             WHERE o.delivers = $1 AND o.method = 'sendPhoto' AND o.state = 'sent'",
        )
        .bind(id)
        .fetch_optional(&p.db.pool)
        .await
        .expect("lag");
        lag.ok_or("not yet")
    })
    .await;
    let backlog = p.count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await;
    println!(
        "photo sent {lag:.2} s after the commit; backlog {backlog_at_commit} at the commit, {backlog} after"
    );
    assert!(
        lag < 4.0,
        "the photo went out {lag:.1} s after the commit (backlog {backlog_at_commit} then, {backlog} now)"
    );
    assert!(backlog > 0, "the flood was still being served when the photo went out");
    p.finish().await;
}

/// One user's flood: at most their budget of replies a minute (two minutes' worth if the test
/// straddles a minute), every message still recorded as handled.
#[tokio::test]
async fn a_users_flood_is_answered_only_within_their_reply_budget() {
    let p = TestApp::builder().env("REPLY_BUDGET_PER_MINUTE", "5").start().await;
    let user = 14_760;
    for n in 0..15 {
        p.command(user, "en", &format!("nonsense{n}"));
    }
    p.tg.wait_until_no_pending_updates(WAIT).await.expect("updates delivered");
    p.until("all 15 updates handled", "SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'", 15)
        .await;
    p.drained().await;
    let replies = p.tg.chat(user).map_or(0, |c| c.messages.len());
    assert!((5..=10).contains(&replies), "{replies} replies to 15 messages");
    p.finish().await;
}

/// Telegram delivers an update again when it gets no 2xx in time: a redelivery of an update
/// already handled spends nothing of the user's budget, so their next message is answered.
#[tokio::test]
async fn a_redelivered_update_spends_the_reply_budget_once() {
    let p = TestApp::builder().env("REPLY_BUDGET_PER_MINUTE", "3").start().await;
    let user = 14_770;
    p.command(user, "en", "start");
    p.tg.wait_until_no_pending_updates(WAIT).await.expect("updates delivered");
    let help = |update_id: i64| {
        serde_json::json!({
            "update_id": update_id,
            "message": {
                "message_id": update_id, "date": 1_700_000_000, "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
                "chat": {"id": user, "type": "private", "first_name": "T"},
                "from": {"id": user, "is_bot": false, "first_name": "T", "language_code": "en"}
            }
        })
    };
    for _ in 0..3 {
        let body = serde_json::to_vec(&help(9_477_001)).expect("JSON");
        assert!(p.post(Some(crate::support::SECRET), body).await.is_success());
    }
    let body = serde_json::to_vec(&help(9_477_002)).expect("JSON");
    assert!(p.post(Some(crate::support::SECRET), body).await.is_success());
    p.drained().await;
    let replies = p.tg.chat(user).map_or(0, |c| c.messages.len());
    assert_eq!(replies, 3, "/start and both /help answered, the redeliveries not counted");
    p.finish().await;
}
