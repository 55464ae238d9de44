//! Delivery is part of the sale (DESIGN §10; issue 14 item 1): a paid picture survives minutes
//! of Telegram failures, waits for a user who blocked the bot, is sent again from the stored
//! preview when Telegram never took it, and is re-queued by the reconciler when its delivery was
//! lost. Through the fake Telegram and Gemini over HTTP, real Postgres and Redis.

use std::time::Duration;

use fakes::telegram::{ChatRecord, Fault, FaultKind};
use nanobanana::domain::Button;

use crate::support::{fast, TestApp};

fn photos(chat: &ChatRecord) -> usize {
    chat.messages.iter().filter(|m| m.kind == "photo").count()
}

fn fault(method: &str, count: u32, kind: FaultKind) -> Fault {
    Fault { method: method.into(), count, kind, retry_after: None, processed: false }
}

/// Five minutes of 502 at the production backoff (2, 4, … capped at 60 s) are about ten
/// tries, the old give-up point. Here the cap is 50 ms so that 25 failed tries take a moment:
/// the photo still arrives, and its row was never dropped.
#[tokio::test]
async fn a_paid_picture_survives_minutes_of_bad_gateway() {
    let p = TestApp::builder().env("OUTBOX_RETRY_CAP_MS", "50").worker(fast()).start().await;
    let user = 14_101;
    p.funded(user, 50).await;
    p.tg.inject_fault(fault("sendPhoto", 25, FaultKind::BadGateway));
    let id = p.prompt(user, "en", "a banana through an outage").await;
    p.wait_status(id, "succeeded").await;
    p.chat(user, |c| photos(c) == 1).await;
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM outbox WHERE delivers = $1 AND method = 'sendPhoto'")
            .bind(id)
            .fetch_one(&p.db.pool)
            .await
            .expect("the delivery row");
    assert!(attempts >= 25, "the row was tried {attempts} times");
    // The fake shows the photo as soon as it takes it; the id is kept right after its answer.
    p.until("the delivered file id kept", "SELECT COUNT(*) FROM generations WHERE file_id IS NOT NULL", 1)
        .await;
    p.finish().await;
}

/// A user who blocked the bot while their picture was being made gets it when they write again;
/// the "unknown command" reply queued for them meanwhile is dropped, the paid picture is not.
#[tokio::test]
async fn a_paid_picture_waits_for_a_user_who_blocked_the_bot() {
    let p = TestApp::builder().start().await;
    let user = 14_102;
    p.funded(user, 50).await;
    let id = p.prompt(user, "en", "a banana for later").await;
    p.tg.block(user).expect("block");
    p.run_worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    p.until("the delivery parked", "SELECT COUNT(*) FROM outbox WHERE state = 'parked'", 1).await;
    assert_eq!(photos(&p.tg.chat(user).expect("chat")), 0);
    p.tg.unblock(user).expect("unblock");
    p.text(user, "en", "/hello");
    p.chat(user, |c| photos(c) == 1).await;
    // The status messages queued while the bot was blocked were dropped, as they should be.
    p.finish_leaving(crate::support::Leave { dropped_outbox: true, ..Default::default() }).await;
}

/// Telegram refused the photo for good (a 400): "send again" in /history uploads the stored
/// preview (there is no Telegram file id to send), and the reconciler re-queues another such
/// picture once, then leaves it alone.
#[tokio::test]
async fn a_picture_telegram_never_took_is_sent_again_from_the_preview_and_reconciled() {
    let admin = 14_199;
    let p = TestApp::builder().worker(fast()).env("ADMIN_IDS", &admin.to_string()).start().await;
    p.open_chat(admin, "en").await;
    let user = 14_103;
    p.funded(user, 50).await;
    p.tg.inject_fault(fault("sendPhoto", 2, FaultKind::BadRequest));
    let first = p.prompt(user, "en", "first banana").await;
    p.wait_status(first, "succeeded").await;
    let second = p.prompt(user, "en", "second banana").await;
    p.wait_status(second, "succeeded").await;
    p.until("both deliveries refused", "SELECT COUNT(*) FROM outbox WHERE state = 'dropped'", 2).await;
    assert_eq!(photos(&p.tg.chat(user).expect("chat")), 0);

    // Send again from /history: the preview goes out.
    p.command(user, "en", "history");
    let data = Button::SendAgain { generation: first }.encode();
    let history =
        p.wait_message(user, "the history with its buttons", |m| m.callback_data().contains(&data)).await;
    p.press(user, history.message_id, &data).await;
    p.chat(user, |c| photos(c) == 1).await;

    // The reconciler: only the second picture has no delivery in sight; the admin hears of it.
    let queued =
        nanobanana::worker::redeliver_lost(&p.db.pool, Duration::ZERO, &[admin]).await.expect("reconcile");
    assert_eq!(queued, 1);
    p.chat(user, |c| photos(c) == 2).await;
    p.wait_text(admin, &format!("A paid picture (generation {second}, user {user}) had no delivery")).await;
    let undelivered = "SELECT COUNT(*) FROM generations WHERE status = 'succeeded' AND file_id IS NULL";
    p.until("both file ids recorded", undelivered, 0).await;
    p.drained().await;
    let queued =
        nanobanana::worker::redeliver_lost(&p.db.pool, Duration::ZERO, &[admin]).await.expect("reconcile");
    assert_eq!(queued, 0, "both pictures are delivered now");
    p.drained().await;
    assert_eq!(p.count_texts(admin, "had no delivery in sight"), 1, "told once");
    assert_eq!(photos(&p.tg.chat(user).expect("chat")), 2, "each picture once");
    p.finish_leaving(crate::support::Leave { dropped_outbox: true, ..Default::default() }).await;
}
