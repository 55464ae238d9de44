//! An unknown outcome is never a 5xx, an old idempotence key is never reused, a reused update
//! id is a new update (DESIGN §10; issue 14 items 2, 4, 5). The fake YooKassa and Telegram over
//! HTTP, real Postgres and Redis, the audit clean at the end.

use std::time::Duration;

use fakes::yookassa::{ApiFault, ApiFaultKind};
use serde_json::json;

use crate::support::shop::ADMIN;
use crate::support::{wait, Shop, SECRET};

fn create_fails(path: &str, count: u32, processed: bool) -> ApiFault {
    ApiFault {
        kind: ApiFaultKind::ServerError,
        count,
        processed,
        path: Some(path.into()),
        method: Some("POST".into()),
    }
}

/// YooKassa answers 500 to every create: the pack's update is answered 200 with "still being
/// created", the user's next prompt is answered within seconds (the chat is not frozen behind
/// a redelivered update), and once YooKassa recovers the resumer creates the payment with the
/// same key and the user pays.
#[tokio::test]
async fn an_unknown_payment_create_never_freezes_the_chat_and_finishes_later() {
    let shop = Shop::start(&[]).await;
    let user = 14_201;
    shop.funded(user, 20).await;
    shop.yk().inject_fault(create_fails("/v3/payments", 10_000, false));
    shop.choose(user, "en", "rub100").await;
    shop.accept_terms(user).await;
    shop.wait_text(user, "The payment is still being created").await;
    shop.text(user, "en", "a cat while the payment hangs");
    let answered = shop
        .tg
        .wait_for_chat(user, Duration::from_secs(5), |c| {
            c.messages.iter().any(|m| m.text().is_some_and(|t| t.contains("Prompt accepted")))
        })
        .await;
    assert!(answered.is_ok(), "the prompt was not answered within 5 s: {:?}", shop.tg.chat(user));
    let open = "SELECT COUNT(*) FROM telegram_updates WHERE state <> 'handled'";
    assert_eq!(shop.count(open).await, 1, "the payment's step waits for the resumer");

    shop.yk().clear_faults();
    let url = shop.pay_url(user, 1).await;
    shop.checkout(&url, None).await;
    shop.wait_text(user, "credited").await;
    let creates: Vec<_> =
        shop.yk().requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v3/payments").collect();
    let keys: std::collections::HashSet<_> = creates.iter().map(|r| r.idempotence_key.clone()).collect();
    assert_eq!(keys.len(), 1, "every try with the same key: {creates:?}");
    assert_eq!(shop.yk().payments().len(), 1);
    shop.run_worker(crate::support::fast()).await;
    shop.finish().await;
}

/// A YooKassa refund held for 25 h (its create answer lost) is never POSTed again — YooKassa
/// forgot the key and would refund twice. It is looked up by payment and amount: found, it is
/// committed; not found, it stays held for the operator.
#[tokio::test]
async fn a_yookassa_refund_held_past_24_hours_is_looked_up_never_created_again() {
    let shop = Shop::start(&[]).await;
    let (done, lost) = (14_401, 14_402);
    let done_topup = shop.paid_user(done, "en").await;
    let lost_topup = shop.paid_user(lost, "en").await;
    // Every answer to both refunds is lost (500s); YooKassa made neither.
    shop.yk().inject_fault(create_fails("/v3/refunds", 4, false));
    let before = shop.tg.chat(ADMIN).map_or(0, |c| c.messages.len());
    let answer = shop.ask(ADMIN, "en", "refund", &done_topup, before + 1).await;
    assert!(answer.starts_with("The refund's outcome is not known yet"), "{answer}");
    shop.yk().inject_fault(create_fails("/v3/refunds", 4, false));
    let answer = shop.ask(ADMIN, "en", "refund", &lost_topup, before + 2).await;
    assert!(answer.starts_with("The refund's outcome is not known yet"), "{answer}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'held'").await, 2);
    // As if one lost call had gone through after all: YooKassa refunded `done`'s payment (its
    // notification is held back, so only the lookup can find it).
    shop.yk().set_notify_mode(fakes::yookassa::NotifyMode { hold: true, ..Default::default() });
    let payment: String = sqlx::query_scalar("SELECT payment_id FROM payments WHERE user_id = $1")
        .bind(done)
        .fetch_one(&shop.db.pool)
        .await
        .expect("charge");
    let made = reqwest::Client::new()
        .post(format!("{}/refunds", shop.yk().api_url()))
        .basic_auth(shop.yk().shop_id(), Some(shop.yk().secret_key()))
        .header("Idempotence-Key", "the-lost-call")
        .json(&json!({"amount": {"value": "100.00", "currency": "RUB"}, "payment_id": payment}))
        .send()
        .await
        .expect("YooKassa answers");
    assert!(made.status().is_success(), "{}", made.status());

    // A day and an hour later (the fake forgets keys after 24 h of its clock).
    sqlx::query("UPDATE refunds SET created_at = now() - interval '25 hours', updated_at = now() - interval '25 hours'")
        .execute(&shop.db.pool)
        .await
        .expect("age the holds");
    let posts =
        || shop.yk().requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v3/refunds").count();
    let posted = posts();
    nanobanana::payments::refund::reconcile_held(&shop.client).await.expect("reconcile");
    nanobanana::payments::refund::reconcile_held(&shop.client).await.expect("reconcile again");
    assert_eq!(posts(), posted, "no refund was created again");
    shop.wait_text(done, "Refund: 100 credits were taken back").await;
    assert_eq!(shop.db.balance(done).await, (0, 0));
    let held = "SELECT COUNT(*) FROM refunds WHERE status = 'held'";
    assert_eq!(shop.count(held).await, 1, "the one YooKassa does not know waits for the operator");
    // The admins are told, once however many passes find it, in their language.
    shop.wait_text(ADMIN, "has been held for over 24 h and YooKassa has no refund").await;
    nanobanana::payments::refund::reconcile_held(&shop.client).await.expect("a third pass");
    shop.drained().await;
    assert_eq!(shop.count_texts(ADMIN, "has been held for over 24 h"), 1, "told once");
    assert_eq!(shop.count_texts(ADMIN, "is still held after"), 0, "handed over, not merely stuck");
    // The operator learns of it from the audit, and decides: here, that it never happened.
    let report = shop.db.audit().await;
    let stale: Vec<_> = report.violations.iter().filter(|v| v.check == "refund_held_stale").collect();
    assert_eq!((report.violations.len(), stale.len()), (1, 1), "{report}");
    let unknown: uuid::Uuid = sqlx::query_scalar("SELECT id FROM refunds WHERE status = 'held'")
        .fetch_one(&shop.db.pool)
        .await
        .expect("the held refund");
    let mut tx = shop.db.pool.begin().await.expect("begin");
    nanobanana::ledger::refund_release(&mut tx, unknown).await.expect("released by the operator");
    tx.commit().await.expect("commit");
    shop.finish().await;
}

/// Telegram restarts update ids at random after a quiet week: id 100 first came as a text, then
/// (another update) as a Stars payment. The payment is credited, not dropped as a repeat; a
/// true repeat of it changes nothing; old handled updates are pruned.
#[tokio::test]
async fn a_known_update_id_with_another_body_is_a_new_update() {
    let shop = Shop::start(&[]).await;
    let user = 14_501;
    shop.choose(user, "en", "xtr100").await;
    shop.accept_terms(user).await;
    let invoice = shop.invoice(user).await;
    let payload = invoice.invoice_payload.clone().expect("payload");
    let from = json!({"id": user, "is_bot": false, "first_name": "Test", "language_code": "en"});
    let chat = json!({"id": user, "type": "private"});
    let text = json!({"update_id": 100, "message": {"message_id": 9001, "date": 1_760_000_000,
        "from": from, "chat": chat, "text": "/balance"}});
    let paid = json!({"update_id": 100, "message": {"message_id": 9002, "date": 1_760_600_000,
        "from": from, "chat": chat, "successful_payment": {"currency": "XTR", "total_amount": 80,
        "invoice_payload": payload, "telegram_payment_charge_id": "stxRestartedIds",
        "provider_payment_charge_id": "p-restarted"}}});
    for body in [&text, &paid, &paid] {
        let status = shop.post(Some(SECRET), serde_json::to_vec(body).expect("json")).await;
        assert_eq!(status, 200);
    }
    shop.wait_text(user, "Balance: 100 credits").await;
    assert_eq!(shop.db.balance(user).await, (100, 0));
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").await, 1);

    sqlx::query("UPDATE telegram_updates SET received_at = now() - interval '4 days' WHERE update_id = 100")
        .execute(&shop.db.pool)
        .await
        .expect("age");
    let pruned = nanobanana::bot::updates::prune(&shop.db.pool, Duration::from_secs(3 * 24 * 3600), 100)
        .await
        .expect("prune");
    assert_eq!(pruned, 1);
    wait::until_count(
        &shop.db.pool,
        "update 100 gone",
        "SELECT COUNT(*) FROM telegram_updates WHERE update_id = 100",
        0,
    )
    .await;
    shop.finish().await;
}
