//! Variants and cancel (issue 18, DESIGN §10): ×N is N generations, each with its own reserve
//! and single settlement, refused whole when the balance does not cover them all; ❌ on the
//! status message releases what has not started, exactly once, however often it is pressed
//! and however it races a worker's claim.

use std::time::Duration;

use fakes::gemini::Behaviour;
use fakes::telegram::ChatRecord;
use nanobanana::ledger::{self, Settled, Settlement};
use sqlx::Connection;
use uuid::Uuid;

use crate::support::{fast, texts, wait, TestApp, TestDb, WAIT};

fn photos(chat: &ChatRecord) -> usize {
    chat.messages.iter().filter(|m| m.kind == "photo").count()
}

async fn ids_of(p: &TestApp, user: i64, prompt: &str) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM generations WHERE user_id = $1 AND prompt = $2 ORDER BY id")
        .bind(user)
        .bind(prompt)
        .fetch_all(&p.db.pool)
        .await
        .expect("generations")
}

#[tokio::test]
async fn four_variants_need_credits_for_four_and_two_failures_are_released_and_told() {
    const USER: i64 = 1_901;
    let p = TestApp::builder().start().await;
    p.funded(USER, 20).await;
    // ×4 in /settings.
    p.command(USER, "en", "settings");
    let screen = p.wait_text(USER, "Settings").await;
    p.press(USER, screen.message_id, "st:v:4").await;
    assert_eq!(
        p.count("SELECT COUNT(*) FROM users WHERE telegram_id = 1901 AND settings->>'variants' = '4'").await,
        1
    );

    // Credits for two: the whole request is refused, nothing reserved.
    p.text(USER, "en", "four cats");
    let refused = p.wait_text(USER, "Not enough credits").await;
    assert!(refused.text().is_some_and(|t| t.contains("40 needed, 20 on your balance")), "{refused:?}");
    assert_eq!(p.count("SELECT COUNT(*) FROM generations").await, 0);
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'reserve'").await, 0);
    assert_eq!(p.db.balance(USER).await, (20, 0));

    // With enough: four generations of one request, each reserved; two of them fail.
    p.db.user_with(USER, 80).await;
    p.gemini.queue(Behaviour::Blocked("SAFETY".into()), 2);
    let before = p.tg.chat(USER).map_or(0, |c| c.messages.len());
    p.text(USER, "en", "four dogs");
    let status = p.chat(USER, |c| c.messages.len() > before).await.messages[before].clone();
    let ids = ids_of(&p, USER, "four dogs").await;
    assert_eq!(ids.len(), 4);
    let requests =
        p.count("SELECT COUNT(DISTINCT request_id) FROM generations WHERE prompt = 'four dogs'").await;
    assert_eq!(requests, 1, "linked by one request id");
    assert_eq!(p.db.balance(USER).await, (60, 40), "four reserves");
    let w = p.start_worker(fast()).await;
    for id in &ids {
        wait::until(format!("{id} ends"), WAIT, || async {
            let (status, _) = p.status(*id).await;
            if status == "succeeded" || status == "failed" {
                Ok(())
            } else {
                Err(status)
            }
        })
        .await;
    }
    let count = |kind: &'static str| {
        let ids = ids.clone();
        let pool = p.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM transactions WHERE type = $1 AND generation_id = ANY($2)",
            )
            .bind(kind)
            .bind(&ids)
            .fetch_one(&pool)
            .await
            .expect("count")
        }
    };
    assert_eq!((count("commit").await, count("release").await), (2, 2));
    assert_eq!(p.db.balance(USER).await, (80, 0), "two charged, two returned");
    // Delivered as they finish; the status message shows 2 of 4 and what came back.
    let chat = p
        .chat(USER, |c| {
            photos(c) == 2
                && c.messages[before]
                    .text()
                    .is_some_and(|t| t.contains("Ready: 2 of 4") && t.contains("20 cr. returned"))
        })
        .await;
    assert_eq!(chat.messages[before].message_id, status.message_id, "one status message for the request");

    // ×4 on a delivered picture: four more of the same.
    let photo = chat.messages.iter().find(|m| m.kind == "photo").expect("photo").clone();
    let shown: Uuid =
        sqlx::query_scalar("SELECT delivers FROM outbox WHERE message_id = $1 AND chat_id = $2")
            .bind(photo.message_id)
            .bind(USER)
            .fetch_one(&p.db.pool)
            .await
            .expect("the photo's generation");
    p.until("the photo's delivery recorded", "SELECT COUNT(*) FROM generations WHERE file_id IS NOT NULL", 2)
        .await;
    assert_eq!(p.press(USER, photo.message_id, &format!("x4:{shown}")).await, "Four variants on the way");
    p.until("eight dogs", "SELECT COUNT(*) FROM generations WHERE prompt = 'four dogs'", 8).await;
    p.until(
        "all ended",
        "SELECT COUNT(*) FROM generations WHERE status IN ('succeeded', 'failed') AND prompt = 'four dogs'",
        8,
    )
    .await;
    assert_eq!(p.db.balance(USER).await, (40, 0));
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn cancel_pressed_twice_releases_once_and_the_status_says_so() {
    const USER: i64 = 1_902;
    let p = TestApp::builder().start().await;
    p.funded(USER, 100).await;
    let before = p.tg.chat(USER).map_or(0, |c| c.messages.len());
    let id = [p.prompt(USER, "en", "a cat I regret").await];
    let cancel = format!("cancel:{}", id[0]);
    let status =
        p.wait_message(USER, "the status message with ❌", |m| m.callback_data().contains(&cancel)).await;
    assert_eq!(p.db.balance(USER).await, (90, 10));
    // Two presses before the bot answers either.
    let answers = |c: &ChatRecord| c.events.iter().filter(|e| e.method == "answerCallbackQuery").count();
    p.tg.press_button(USER, status.message_id, &cancel).expect("press");
    p.tg.press_button(USER, status.message_id, &cancel).expect("press again");
    let chat = p.chat(USER, |c| answers(c) == 2).await;
    let toasts: Vec<&str> = chat
        .events
        .iter()
        .filter(|e| e.method == "answerCallbackQuery")
        .filter_map(|e| e.detail["text"].as_str())
        .collect();
    assert_eq!(toasts, ["Cancelled: 1, 10 cr. returned", "Nothing to cancel: it has already started"]);
    assert_eq!(p.status(id[0]).await.0, "failed");
    assert_eq!(p.db.balance(USER).await, (100, 0));
    let releases = p.count("SELECT COUNT(*) FROM transactions WHERE type = 'release'").await;
    assert_eq!(releases, 1);
    // The status message says it was cancelled, and its ❌ is gone.
    let chat =
        p.chat(USER, |c| c.messages[before].text().is_some_and(|t| t.contains("cancelled by you"))).await;
    assert!(chat.messages[before].callback_data().is_empty(), "{:?}", texts(&chat));
    // A worker finds nothing to do.
    p.run_worker(fast()).await;
    assert_eq!(p.gemini.requests().len(), 0);
    p.finish().await;
}

#[tokio::test]
async fn cancel_racing_a_worker_claim_fifty_times_settles_each_generation_once() {
    const USER: i64 = 1_903;
    let db = TestDb::new().await;
    db.user_with(USER, 10_000).await;
    let (mut cancelled, mut claimed) = (0, 0);
    for round in 0..50 {
        let id = db.request_prompt(USER, 10, &format!("race {round}")).await.expect("requested");
        let (mut a, mut b) = (db.conn().await, db.conn().await);
        let cancel = async {
            let mut tx = a.begin().await.expect("begin");
            let settled = ledger::cancel(&mut tx, id, USER).await.expect("cancel");
            tx.commit().await.expect("commit");
            settled
        };
        let claim = nanobanana::jobs::claim(&mut b, "racer", Duration::from_secs(30), 1);
        let (settled, taken) = tokio::join!(cancel, claim);
        let taken = taken.expect("claim");
        match (settled, taken.iter().find(|c| c.id == id)) {
            (Settled::Now(entry), None) => {
                assert_eq!(entry.amount, 10);
                cancelled += 1;
            }
            (Settled::Stale, Some(job)) => {
                // The claim won: the job is the worker's, and it settles it once.
                let done = db.settle(id, job.epoch, Settlement::Commit).await.expect("settle");
                assert!(matches!(done, Settled::Now(_)));
                claimed += 1;
            }
            (settled, job) => panic!("round {round}: cancel {settled:?} and claim {job:?}: both or neither"),
        }
        // Pressed again afterwards: nothing more.
        let again = ledger::cancel(&mut *db.conn().await, id, USER).await.expect("cancel again");
        assert_eq!(again, Settled::Stale);
    }
    assert_eq!(cancelled + claimed, 50);
    let settlements: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT generation_id FROM transactions WHERE type IN ('commit', 'release')
         GROUP BY generation_id HAVING COUNT(*) <> 1) AS odd",
    )
    .fetch_one(&db.pool)
    .await
    .expect("settlements");
    assert_eq!(settlements, 0, "every generation settled exactly once");
    let unsettled = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(unsettled, 0);
    assert_eq!(db.balance(USER).await, (10_000 - 10 * claimed, 0));
    db.assert_audit_clean().await;
}
