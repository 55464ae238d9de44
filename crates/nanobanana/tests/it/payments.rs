//! YooKassa payments end to end: the service's client against FakeYooKassa over HTTP, the
//! notifications reaching `serve`'s webhook over real HTTP from the fake's sender, real
//! Postgres (`support::Shop`). Asserts on balances, the journal, the messages queued for the
//! user and the audit.

use std::time::Duration;

use fakes::yookassa::{ApiFault, ApiFaultKind, NotifyMode};
use futures_util::future::join_all;
use nanobanana::payments::{self, Settled};
use nanobanana::yookassa::Contact;
use serde_json::{json, Value};

use crate::support::{Shop, WAIT};

fn forged_success(id: &str, topup: &str) -> Value {
    json!({"type": "notification", "event": "payment.succeeded", "object": {
        "id": id, "status": "succeeded", "paid": true,
        "amount": {"value": "100.00", "currency": "RUB"}, "metadata": {"topup_id": topup}}})
}

#[tokio::test]
async fn payments_create_sends_the_exact_body_and_a_retry_after_500_makes_no_second_payment() {
    let shop = Shop::start(&[]).await;
    shop.user(1001).await;
    shop.yk().inject_fault(ApiFault {
        kind: ApiFaultKind::ServerError,
        count: 1,
        processed: true,
        path: Some("/v3/payments".into()),
        method: Some("POST".into()),
    });
    let id = shop.buy(1001, "update:77").await;
    let all = shop.yk().payments();
    assert_eq!(all.len(), 1, "one payment despite the 500: {all:?}");
    let topup: String =
        sqlx::query_scalar("SELECT id::text FROM topups").fetch_one(&shop.db.pool).await.expect("topup");
    let p = &all[0];
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["amount"], json!({"value": "100.00", "currency": "RUB"}));
    assert_eq!(p["description"], "Nano Banana Pro: 100 credits");
    assert_eq!(p["metadata"], json!({"topup_id": topup, "user_id": "1001"}));
    assert_eq!(p["confirmation"]["type"], "redirect");
    assert_eq!(p["confirmation"]["return_url"], "https://t.me/nanobanana_test_bot");
    let posts: Vec<_> = shop.yk().requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts.iter().all(|r| r.idempotence_key.as_deref() == Some(topup.as_str())), "{posts:?}");
    assert_eq!((posts[0].status, posts[1].status), (500, 200));
    // The same update again (a redelivery) repeats the same payment.
    assert_eq!(shop.buy(1001, "update:77").await, id);
    // Even if the pack list changed in between, the redelivery repeats the original request.
    let again = payments::start_yookassa(&shop.client, 1001, &Shop::pack(200), "update:77", None).await;
    assert!(again.expect("same request").ends_with(&id));
    assert_eq!(shop.yk().payments().len(), 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'pending'").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM topups WHERE status = 'pending'").await, 1);
    // Paying proves capture: true (otherwise it would wait for capture).
    let paid = shop.yk().pay(&id).expect("pay");
    assert_eq!(paid["status"], "succeeded");
    shop.until("credited", "SELECT credits_available FROM balances WHERE user_id = 1001", 100).await;
    shop.finish().await;
}

#[tokio::test]
async fn payments_a_paid_payment_is_credited_once_and_the_user_told() {
    let shop = Shop::start(&[]).await;
    shop.user(1002).await;
    sqlx::query("UPDATE users SET language = 'en' WHERE telegram_id = 1002")
        .execute(&shop.db.pool)
        .await
        .expect("language");
    let id = shop.buy(1002, "update:1").await;
    shop.yk().pay(&id).expect("pay");
    shop.notified(1).await;
    assert_eq!(shop.db.balance(1002).await, (100, 0));
    assert_eq!(shop.topups_credited().await, 1);
    let messages = shop.outbox_texts(1002).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("<b>100</b> credits credited. Balance: <b>100</b>"), "{messages:?}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM topups WHERE status = 'paid'").await, 1);
    let events = shop.count("SELECT COUNT(*) FROM payment_events WHERE source = 'notification'").await;
    assert_eq!(events, 1, "the raw notification is kept");
    // Reading it again (the reconciler, a late duplicate) changes nothing.
    assert_eq!(shop.client.check_payment(&id).await.expect("check"), Settled::AlreadyCredited);
    assert_eq!(shop.db.balance(1002).await, (100, 0));
    shop.finish().await;
}

#[tokio::test]
async fn payments_duplicated_and_reordered_notifications_credit_each_charge_once() {
    let shop = Shop::start(&[]).await;
    shop.user(1003).await;
    let first = shop.buy(1003, "update:1").await;
    let second = shop.buy(1003, "update:2").await;
    let third = shop.buy(1003, "update:3").await;
    assert_eq!(shop.yk().payments().len(), 3);
    // Five concurrent copies of one notification.
    shop.yk().set_notify_mode(NotifyMode { duplicate: 5, ..Default::default() });
    shop.yk().pay(&first).expect("pay");
    shop.notified(5).await;
    assert_eq!(shop.db.balance(1003).await, (100, 0));
    // Held, then delivered in reverse order: the cancel of the third before the second's success.
    shop.yk().set_notify_mode(NotifyMode { hold: true, ..Default::default() });
    shop.yk().pay(&second).expect("pay");
    shop.yk().cancel(&third, "card_expired").expect("cancel");
    assert_eq!(shop.yk().release_notifications(true).await, 2);
    shop.notified(7).await;
    assert_eq!(shop.db.balance(1003).await, (200, 0));
    assert_eq!(shop.topups_credited().await, 2);
    let messages = shop.outbox_texts(1003).await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[1].contains("истёк срок действия карты"), "{messages:?}");
    // Five more copies of one, concurrently, straight at the webhook.
    let topup: String = sqlx::query_scalar("SELECT topup_id::text FROM payments WHERE payment_id = $1")
        .bind(&first)
        .fetch_one(&shop.db.pool)
        .await
        .expect("topup");
    let body = forged_success(&first, &topup);
    let statuses = join_all((0..5).map(|_| shop.post_webhook("127.0.0.1", None, &body))).await;
    assert_eq!(statuses, vec![200; 5]);
    assert_eq!(shop.db.balance(1003).await, (200, 0));
    assert_eq!(shop.topups_credited().await, 2);
    shop.finish().await;
}

#[tokio::test]
async fn payments_notifications_from_outside_the_trusted_networks_are_refused() {
    let shop = Shop::start_with(
        fakes::YooKassaConfig {
            source_address: Some("127.0.0.2".parse().expect("ip")),
            ..Default::default()
        },
        &[],
    )
    .await;
    shop.user(1004).await;
    let id = shop.buy(1004, "update:1").await;
    shop.yk().set_notify_mode(NotifyMode::default());
    shop.yk().pay(&id).expect("pay");
    let refused = shop
        .yk()
        .wait_for_notifications(WAIT, |r| r.iter().filter(|a| a.status == Some(403)).count() >= 2)
        .await
        .expect("refused notifications");
    assert!(refused.iter().all(|a| a.status != Some(200)), "{refused:?}");
    // A spoofed X-Forwarded-For from an untrusted peer is not believed either.
    let topup: String =
        sqlx::query_scalar("SELECT id::text FROM topups").fetch_one(&shop.db.pool).await.expect("topup");
    let status = shop.post_webhook("127.0.0.2", Some("127.0.0.1"), &forged_success(&id, &topup)).await;
    assert_eq!(status, 403);
    assert_eq!(shop.db.balance(1004).await, (0, 0));
    assert_eq!(shop.topups_credited().await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_events WHERE source = 'notification'").await, 0);
    shop.finish().await;
}

#[tokio::test]
async fn payments_forged_or_foreign_notifications_credit_nothing() {
    let shop = Shop::start(&[]).await;
    shop.user(1005).await;
    let id = shop.buy(1005, "update:1").await;
    let topup: String =
        sqlx::query_scalar("SELECT id::text FROM topups").fetch_one(&shop.db.pool).await.expect("topup");
    // The body says succeeded; the API says pending.
    assert_eq!(shop.post_webhook("127.0.0.1", None, &forged_success(&id, &topup)).await, 200);
    // An id YooKassa does not know, and one that is not an id at all.
    assert_eq!(
        shop.post_webhook("127.0.0.1", None, &forged_success("2f000000-000f-5000-8000-1", &topup)).await,
        200
    );
    assert_eq!(shop.post_webhook("127.0.0.1", None, &forged_success("../refunds/x", &topup)).await, 200);
    // A real, paid payment of 1 ₽ that names our 100 ₽ topup.
    let cheap: Value = reqwest::Client::new()
        .post(format!("{}/payments", shop.yk().api_url()))
        .basic_auth(shop.yk().shop_id(), Some(shop.yk().secret_key()))
        .header("Idempotence-Key", "cheap-1")
        .json(&json!({"amount": {"value": "1.00", "currency": "RUB"}, "capture": true,
            "confirmation": {"type": "redirect", "return_url": "https://example.com"},
            "metadata": {"topup_id": topup}}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("JSON");
    let cheap_id = cheap["id"].as_str().expect("id");
    shop.yk().pay(cheap_id).expect("pay");
    shop.notified(1).await;
    assert_eq!(
        shop.client.check_payment(cheap_id).await.expect("check"),
        Settled::Ignored("amount mismatch")
    );
    assert_eq!(shop.db.balance(1005).await, (0, 0));
    assert_eq!(shop.topups_credited().await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'pending'").await, 1);
    assert!(shop.outbox_texts(1005).await.is_empty());
    shop.finish().await;
}

#[tokio::test]
async fn payments_a_canceled_payment_tells_the_user_why_and_credits_nothing() {
    let shop = Shop::start(&[]).await;
    shop.user(1006).await;
    let id = shop.buy(1006, "update:1").await;
    shop.yk().set_notify_mode(NotifyMode { duplicate: 3, ..Default::default() });
    shop.yk().cancel(&id, "insufficient_funds").expect("cancel");
    shop.notified(3).await;
    let messages = shop.outbox_texts(1006).await;
    assert_eq!(messages.len(), 1, "told once: {messages:?}");
    assert!(messages[0].contains("100.00 ₽") && messages[0].contains("недостаточно средств"), "{messages:?}");
    assert_eq!(shop.db.balance(1006).await, (0, 0));
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'canceled'").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM topups WHERE status = 'canceled'").await, 1);
    assert_eq!(payments::reconcile_once(&shop.client, Duration::ZERO).await.expect("reconcile"), 0);
    shop.finish().await;
}

#[tokio::test]
async fn payments_dropped_notifications_are_made_good_by_the_reconciler() {
    let shop = Shop::start(&[]).await;
    shop.user(1007).await;
    let id = shop.buy(1007, "update:1").await;
    // Nothing settled while the payment is still pending.
    assert_eq!(payments::reconcile_once(&shop.client, Duration::ZERO).await.expect("reconcile"), 1);
    assert_eq!(shop.db.balance(1007).await, (0, 0));
    shop.yk().set_notify_mode(NotifyMode { drop_next: 1, ..Default::default() });
    shop.yk().pay(&id).expect("pay");
    // Too recent for a pass with the production age: left alone.
    assert_eq!(payments::reconcile_once(&shop.client, payments::MIN_AGE).await.expect("reconcile"), 0);
    assert_eq!(payments::reconcile_once(&shop.client, Duration::ZERO).await.expect("reconcile"), 1);
    assert_eq!(shop.db.balance(1007).await, (100, 0));
    assert_eq!(shop.outbox_texts(1007).await.len(), 1);
    assert_eq!(payments::reconcile_once(&shop.client, Duration::ZERO).await.expect("reconcile"), 0);
    assert_eq!(shop.topups_credited().await, 1);
    assert!(shop.yk().notifications().iter().all(|n| n.status.is_none()), "the notification was dropped");
    shop.finish().await;
}

#[tokio::test]
async fn payments_the_reconciler_reaches_every_pending_charge_and_runs_on_one_replica() {
    let shop = Shop::start(&[]).await;
    shop.user(1009).await;
    let id = shop.buy(1009, "update:1").await;
    // More charges than one page, older than the real one, that the provider never settles.
    sqlx::query(
        "INSERT INTO payments (provider, payment_id, topup_id, user_id, currency, amount_minor, credits,
                               status, updated_at)
         SELECT 'yookassa', 'never-settled-' || n, topup_id, user_id, currency, amount_minor, credits,
                'pending', now() - interval '1 hour'
         FROM payments, generate_series(1, 150) AS n WHERE payment_id = $1",
    )
    .bind(&id)
    .execute(&shop.db.pool)
    .await
    .expect("stuck charges");
    shop.yk().set_notify_mode(NotifyMode { drop_next: 1, ..Default::default() });
    shop.yk().pay(&id).expect("pay");

    // Another replica leads: this one checks nothing.
    let mut other = shop.db.pool.acquire().await.expect("connection");
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(payments::RECONCILER_LOCK)
        .fetch_one(&mut *other)
        .await
        .expect("lock");
    assert!(locked);
    let skipped = payments::reconcile_as_leader(&shop.client, Duration::ZERO).await.expect("reconcile");
    assert_eq!(skipped, None);
    assert_eq!(shop.db.balance(1009).await, (0, 0));
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(payments::RECONCILER_LOCK)
        .execute(&mut *other)
        .await
        .expect("unlock");

    // One pass reaches the real charge behind the 150 that never change.
    let checked = payments::reconcile_as_leader(&shop.client, Duration::ZERO).await.expect("reconcile");
    assert_eq!(checked, Some(151));
    assert_eq!(shop.db.balance(1009).await, (100, 0));
    sqlx::query("DELETE FROM payments WHERE payment_id LIKE 'never-settled-%'")
        .execute(&shop.db.pool)
        .await
        .expect("clean up");
    shop.finish().await;
}

#[tokio::test]
async fn payments_timeouts_and_202_on_create_are_retried_with_the_same_key() {
    let shop = Shop::start(&[]).await;
    shop.user(1008).await;
    for (kind, source) in [(ApiFaultKind::Timeout, "update:1"), (ApiFaultKind::Processing, "update:2")] {
        let fault = ApiFault {
            kind,
            count: 1,
            processed: true,
            path: Some("/v3/payments".into()),
            method: Some("POST".into()),
        };
        shop.yk().inject_fault(fault);
        shop.buy(1008, source).await;
    }
    assert_eq!(shop.yk().payments().len(), 2, "one payment per click");
    let keys: Vec<String> = shop.yk().requests().into_iter().filter_map(|r| r.idempotence_key).collect();
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    // The timed-out first attempt is still hanging at the fake, so it is not listed yet.
    assert_eq!((keys.len(), distinct.len()), (3, 2), "{keys:?}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'pending'").await, 2);
    shop.finish().await;
}

#[tokio::test]
async fn payments_a_notification_before_the_create_call_returned_is_credited_once() {
    let shop = Shop::start(&[]).await;
    shop.user(1009).await;
    // YooKassa creates the payment but its answer hangs; the user pays meanwhile.
    shop.yk().inject_fault(ApiFault {
        kind: ApiFaultKind::Timeout,
        count: 1,
        processed: true,
        path: Some("/v3/payments".into()),
        method: Some("POST".into()),
    });
    let yk = shop.client.clone();
    let create =
        tokio::spawn(
            async move { payments::start_yookassa(&yk, 1009, &Shop::pack(100), "update:5", None).await },
        );
    let created = shop.yk().wait_for_payment(WAIT, |_| true).await.expect("created at YooKassa");
    let id = created["id"].as_str().expect("id").to_owned();
    shop.yk().pay(&id).expect("pay");
    shop.notified(1).await;
    // Usually before the create call returns (it waits for its 1 s timeout); credited once either way.
    assert_eq!(shop.db.balance(1009).await, (100, 0));
    let url = create.await.expect("task").expect("the retry gets the remembered answer");
    assert!(url.ends_with(&id), "{url}");
    assert_eq!(shop.db.balance(1009).await, (100, 0));
    // The redelivered update finishes with the same payment and credits nothing more.
    assert_eq!(shop.buy(1009, "update:5").await, id);
    assert_eq!(shop.yk().payments().len(), 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.topups_credited().await, 1);
    assert_eq!(shop.outbox_texts(1009).await.len(), 1);
    shop.finish().await;
}

#[tokio::test]
async fn payments_oversized_and_unhandled_notifications() {
    let shop = Shop::start(&[]).await;
    let huge = json!({"type": "notification", "event": "payment.succeeded",
        "object": {"id": "x", "padding": "a".repeat(100 * 1024)}});
    assert_eq!(shop.post_webhook("127.0.0.1", None, &huge).await, 413);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_events").await, 0);
    // refund.succeeded is stored for later; unknown shapes too; both answered 200.
    let refund = json!({"type": "notification", "event": "refund.succeeded", "object": {"id": "r-1"}});
    assert_eq!(shop.post_webhook("127.0.0.1", None, &refund).await, 200);
    assert_eq!(shop.post_webhook("127.0.0.1", None, &json!({"hello": "world"})).await, 200);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_events WHERE source = 'notification'").await, 2);
    shop.finish().await;
}

/// The whole service: `serve` with YooKassa configured, the fake Telegram as the user's app.
/// The notification reaches serve's own router, and the user reads the result in Telegram.
#[tokio::test]
async fn payments_through_serve_the_user_reads_the_credit_in_telegram() {
    let shop = Shop::start(&[]).await;
    let user = 1010;
    // The user opens the chat (so the bot may write) and gets the welcome.
    shop.open_chat(user, "en").await;
    let checkout = payments::start_yookassa(&shop.client, user, &Shop::pack(100), "update:1", None)
        .await
        .expect("start");
    let id = checkout.rsplit('/').next().expect("id").to_owned();
    shop.yk().pay(&id).expect("pay");
    let chat = shop.messages(user, 2).await;
    let text = chat.messages[1].text().unwrap_or("");
    assert!(text.contains("100 credits credited. Balance: 100 credits"), "{text}");
    assert_eq!(shop.db.balance(user).await, (100, 0));
    shop.finish().await;
}

#[tokio::test]
async fn payments_a_receipt_is_sent_when_enabled_and_a_contact_is_known() {
    let shop = Shop::start(&[
        ("RECEIPTS_ENABLED", "true"),
        ("RECEIPT_ITEM_DESCRIPTION", "Пакет кредитов"),
        ("RECEIPT_VAT_CODE", "1"),
        ("RECEIPT_PAYMENT_SUBJECT", "service"),
        ("RECEIPT_PAYMENT_MODE", "full_payment"),
    ])
    .await;
    shop.user(1011).await;
    let contact = Some(Contact::Email("user@example.com".into()));
    let url = payments::start_yookassa(&shop.client, 1011, &Shop::pack(300), "update:1", contact)
        .await
        .expect("the fake accepts our receipt");
    let id = url.rsplit('/').next().expect("id");
    let payment = shop.yk().payment(id).expect("payment");
    assert_eq!(payment["receipt_registration"], "pending", "{payment}");
    assert_eq!(payment["amount"]["value"], "300.00");
    // Without a contact no receipt is attempted (asking for one is the bot's job).
    let url =
        payments::start_yookassa(&shop.client, 1011, &Shop::pack(100), "update:2", None).await.expect("ok");
    let payment = shop.yk().payment(url.rsplit('/').next().expect("id")).expect("payment");
    assert!(payment.get("receipt_registration").is_none(), "{payment}");
    shop.finish().await;
}
