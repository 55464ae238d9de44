//! YooKassa payments end to end: the service's client against FakeYooKassa over HTTP, the
//! webhook reached over real HTTP from the fake's notification sender, real Postgres. Asserts
//! on balances, the journal, the messages queued for the user and the audit.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fakes::yookassa::{ApiFault, ApiFaultKind, NotifyMode};
use fakes::FakeYooKassa;
use futures_util::future::join_all;
use nanobanana::config::{Pack, ReceiptConfig, YooKassaConfig};
use nanobanana::payments::{self, Settled, YooKassa};
use nanobanana::secret::Secret;
use nanobanana::yookassa::Contact;
use serde_json::{json, Value};

use crate::helpers::{credits_of, TestDb};

const WAIT: Duration = Duration::from_secs(15);

struct Shop {
    db: TestDb,
    fake: FakeYooKassa,
    yk: Arc<YooKassa>,
    url: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Shop {
    /// The webhook on port 0, trusting `trusted`; the fake notifies it from `source`.
    async fn start(source: Option<IpAddr>, trusted: &[&str]) -> Self {
        Self::start_with(source, trusted, None).await
    }

    async fn start_with(source: Option<IpAddr>, trusted: &[&str], receipt: Option<ReceiptConfig>) -> Self {
        let db = TestDb::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let fake = FakeYooKassa::start(fakes::YooKassaConfig {
            notification_url: Some(format!("{url}/yookassa/webhook")),
            source_address: source,
            hang: Duration::from_secs(5),
            ..Default::default()
        })
        .await
        .expect("fake YooKassa");
        let config = YooKassaConfig {
            shop_id: fake.shop_id().to_owned(),
            secret_key: Secret::new(fake.secret_key().to_owned()),
            api_url: url::Url::parse(&fake.api_url()).expect("api url"),
            return_url: Some(url::Url::parse("https://t.me/nanobanana_test_bot").expect("url")),
            trusted_networks: trusted.iter().map(|n| n.parse().expect("net")).collect(),
            trusted_proxies: vec![],
            receipt,
        };
        let yk = Arc::new(
            YooKassa::with_timeout(db.pool.clone(), config, None, Duration::from_secs(1)).expect("client"),
        );
        let server = tokio::spawn(nanobanana::http::yookassa::serve(listener, yk.clone()));
        Self { db, fake, yk, url, server }
    }

    async fn trusted() -> Self {
        Self::start(None, &["127.0.0.1/32"]).await
    }

    fn pack(rubles: i64) -> Pack {
        Pack { id: format!("rub{rubles}"), price: rubles * 100, credits: credits_of(rubles) }
    }

    /// A user buys the 100 ₽ pack; returns the YooKassa payment id.
    async fn buy(&self, user: i64, source: &str) -> String {
        let url = payments::start_yookassa(&self.yk, user, &Self::pack(100), source, None)
            .await
            .expect("payment started");
        let id = url.rsplit('/').next().expect("checkout URL ends with the id").to_owned();
        assert!(self.fake.payment(&id).is_some(), "{url} names a payment at YooKassa");
        id
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.expect(sql)
    }

    async fn until(&self, what: &str, sql: &str, want: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let have = self.scalar(sql).await;
            if have == want {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {sql} is {have}, want {want}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every notification attempt so far has an answer and `n` were answered 200.
    async fn notified(&self, n: usize) {
        self.fake
            .wait_for_notifications(WAIT, |r| r.iter().filter(|a| a.status == Some(200)).count() >= n)
            .await
            .unwrap_or_else(|e| panic!("{e:?}: {:?}", self.fake.notifications()));
    }

    async fn messages(&self, user: i64) -> Vec<String> {
        sqlx::query_scalar("SELECT params->>'text' FROM outbox WHERE chat_id = $1 ORDER BY id")
            .bind(user)
            .fetch_all(&self.db.pool)
            .await
            .expect("outbox")
    }

    async fn topups_credited(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM transactions WHERE type = 'topup'").await
    }

    async fn post_webhook(&self, from: &str, forwarded_for: Option<&str>, body: &Value) -> u16 {
        let local: IpAddr = from.parse().expect("ip");
        let client = reqwest::Client::builder().local_address(local).build().expect("client");
        let mut request = client.post(format!("{}/yookassa/webhook", self.url)).json(body);
        if let Some(xff) = forwarded_for {
            request = request.header("X-Forwarded-For", xff);
        }
        request.send().await.expect("webhook answers").status().as_u16()
    }

    async fn stop(self) {
        self.db.assert_audit_clean().await;
        self.server.abort();
    }
}

fn forged_success(id: &str, topup: &str) -> Value {
    json!({"type": "notification", "event": "payment.succeeded", "object": {
        "id": id, "status": "succeeded", "paid": true,
        "amount": {"value": "100.00", "currency": "RUB"}, "metadata": {"topup_id": topup}}})
}

#[tokio::test]
async fn payments_create_sends_the_exact_body_and_a_retry_after_500_makes_no_second_payment() {
    let shop = Shop::trusted().await;
    shop.db.user(1001).await;
    shop.fake.inject_fault(ApiFault {
        kind: ApiFaultKind::ServerError,
        count: 1,
        processed: true,
        path: Some("/v3/payments".into()),
        method: Some("POST".into()),
    });
    let id = shop.buy(1001, "update:77").await;
    let all = shop.fake.payments();
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
    let posts: Vec<_> = shop.fake.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts.iter().all(|r| r.idempotence_key.as_deref() == Some(topup.as_str())), "{posts:?}");
    assert_eq!((posts[0].status, posts[1].status), (500, 200));
    // The same update again (a redelivery) repeats the same payment.
    assert_eq!(shop.buy(1001, "update:77").await, id);
    // Even if the pack list changed in between, the redelivery repeats the original request.
    let again = payments::start_yookassa(&shop.yk, 1001, &Shop::pack(200), "update:77", None).await;
    assert!(again.expect("same request").ends_with(&id));
    assert_eq!(shop.fake.payments().len(), 1);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments WHERE status = 'pending'").await, 1);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM topups WHERE status = 'pending'").await, 1);
    // Paying proves capture: true (otherwise it would wait for capture).
    let paid = shop.fake.pay(&id).expect("pay");
    assert_eq!(paid["status"], "succeeded");
    shop.until("credited", "SELECT credits_available FROM balances WHERE user_id = 1001", 100).await;
    shop.stop().await;
}

#[tokio::test]
async fn payments_a_paid_payment_is_credited_once_and_the_user_told() {
    let shop = Shop::trusted().await;
    shop.db.user(1002).await;
    sqlx::query("UPDATE users SET language = 'en' WHERE telegram_id = 1002")
        .execute(&shop.db.pool)
        .await
        .expect("language");
    let id = shop.buy(1002, "update:1").await;
    shop.fake.pay(&id).expect("pay");
    shop.notified(1).await;
    assert_eq!(shop.db.balance(1002).await, (100, 0));
    assert_eq!(shop.topups_credited().await, 1);
    let messages = shop.messages(1002).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("<b>100</b> credits credited. Balance: <b>100</b>"), "{messages:?}");
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM topups WHERE status = 'paid'").await, 1);
    let events = shop.scalar("SELECT COUNT(*) FROM payment_events WHERE source = 'notification'").await;
    assert_eq!(events, 1, "the raw notification is kept");
    // Reading it again (the reconciler, a late duplicate) changes nothing.
    assert_eq!(shop.yk.check_payment(&id).await.expect("check"), Settled::AlreadyCredited);
    assert_eq!(shop.db.balance(1002).await, (100, 0));
    shop.stop().await;
}

#[tokio::test]
async fn payments_duplicated_and_reordered_notifications_credit_each_charge_once() {
    let shop = Shop::trusted().await;
    shop.db.user(1003).await;
    let first = shop.buy(1003, "update:1").await;
    let second = shop.buy(1003, "update:2").await;
    let third = shop.buy(1003, "update:3").await;
    assert_eq!(shop.fake.payments().len(), 3);
    // Five concurrent copies of one notification.
    shop.fake.set_notify_mode(NotifyMode { duplicate: 5, ..Default::default() });
    shop.fake.pay(&first).expect("pay");
    shop.notified(5).await;
    assert_eq!(shop.db.balance(1003).await, (100, 0));
    // Held, then delivered in reverse order: the cancel of the third before the second's success.
    shop.fake.set_notify_mode(NotifyMode { hold: true, ..Default::default() });
    shop.fake.pay(&second).expect("pay");
    shop.fake.cancel(&third, "card_expired").expect("cancel");
    assert_eq!(shop.fake.release_notifications(true).await, 2);
    shop.notified(7).await;
    assert_eq!(shop.db.balance(1003).await, (200, 0));
    assert_eq!(shop.topups_credited().await, 2);
    let messages = shop.messages(1003).await;
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
    shop.stop().await;
}

#[tokio::test]
async fn payments_notifications_from_outside_the_trusted_networks_are_refused() {
    let shop = Shop::start(Some("127.0.0.2".parse().expect("ip")), &["127.0.0.1/32"]).await;
    shop.db.user(1004).await;
    let id = shop.buy(1004, "update:1").await;
    shop.fake.set_notify_mode(NotifyMode::default());
    shop.fake.pay(&id).expect("pay");
    let refused = shop
        .fake
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
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payment_events WHERE source = 'notification'").await, 0);
    shop.stop().await;
}

#[tokio::test]
async fn payments_forged_or_foreign_notifications_credit_nothing() {
    let shop = Shop::trusted().await;
    shop.db.user(1005).await;
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
        .post(format!("{}/payments", shop.fake.api_url()))
        .basic_auth(shop.fake.shop_id(), Some(shop.fake.secret_key()))
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
    shop.fake.pay(cheap_id).expect("pay");
    shop.notified(1).await;
    assert_eq!(shop.yk.check_payment(cheap_id).await.expect("check"), Settled::Ignored("amount mismatch"));
    assert_eq!(shop.db.balance(1005).await, (0, 0));
    assert_eq!(shop.topups_credited().await, 0);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments WHERE status = 'pending'").await, 1);
    assert!(shop.messages(1005).await.is_empty());
    shop.stop().await;
}

#[tokio::test]
async fn payments_a_canceled_payment_tells_the_user_why_and_credits_nothing() {
    let shop = Shop::trusted().await;
    shop.db.user(1006).await;
    let id = shop.buy(1006, "update:1").await;
    shop.fake.set_notify_mode(NotifyMode { duplicate: 3, ..Default::default() });
    shop.fake.cancel(&id, "insufficient_funds").expect("cancel");
    shop.notified(3).await;
    let messages = shop.messages(1006).await;
    assert_eq!(messages.len(), 1, "told once: {messages:?}");
    assert!(messages[0].contains("100.00 ₽") && messages[0].contains("недостаточно средств"), "{messages:?}");
    assert_eq!(shop.db.balance(1006).await, (0, 0));
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments WHERE status = 'canceled'").await, 1);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM topups WHERE status = 'canceled'").await, 1);
    assert_eq!(payments::reconcile_once(&shop.yk, Duration::ZERO).await.expect("reconcile"), 0);
    shop.stop().await;
}

#[tokio::test]
async fn payments_dropped_notifications_are_made_good_by_the_reconciler() {
    let shop = Shop::trusted().await;
    shop.db.user(1007).await;
    let id = shop.buy(1007, "update:1").await;
    // Nothing settled while the payment is still pending.
    assert_eq!(payments::reconcile_once(&shop.yk, Duration::ZERO).await.expect("reconcile"), 1);
    assert_eq!(shop.db.balance(1007).await, (0, 0));
    shop.fake.set_notify_mode(NotifyMode { drop_next: 1, ..Default::default() });
    shop.fake.pay(&id).expect("pay");
    // Too recent for a pass with the production age: left alone.
    assert_eq!(payments::reconcile_once(&shop.yk, payments::MIN_AGE).await.expect("reconcile"), 0);
    assert_eq!(payments::reconcile_once(&shop.yk, Duration::ZERO).await.expect("reconcile"), 1);
    assert_eq!(shop.db.balance(1007).await, (100, 0));
    assert_eq!(shop.messages(1007).await.len(), 1);
    assert_eq!(payments::reconcile_once(&shop.yk, Duration::ZERO).await.expect("reconcile"), 0);
    assert_eq!(shop.topups_credited().await, 1);
    assert!(shop.fake.notifications().iter().all(|n| n.status.is_none()), "the notification was dropped");
    shop.stop().await;
}

#[tokio::test]
async fn payments_timeouts_and_202_on_create_are_retried_with_the_same_key() {
    let shop = Shop::trusted().await;
    shop.db.user(1008).await;
    for (kind, source) in [(ApiFaultKind::Timeout, "update:1"), (ApiFaultKind::Processing, "update:2")] {
        let fault = ApiFault {
            kind,
            count: 1,
            processed: true,
            path: Some("/v3/payments".into()),
            method: Some("POST".into()),
        };
        shop.fake.inject_fault(fault);
        shop.buy(1008, source).await;
    }
    assert_eq!(shop.fake.payments().len(), 2, "one payment per click");
    let keys: Vec<String> = shop.fake.requests().into_iter().filter_map(|r| r.idempotence_key).collect();
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    // The timed-out first attempt is still hanging at the fake, so it is not listed yet.
    assert_eq!((keys.len(), distinct.len()), (3, 2), "{keys:?}");
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments WHERE status = 'pending'").await, 2);
    shop.stop().await;
}

#[tokio::test]
async fn payments_a_notification_before_the_create_call_returned_is_credited_once() {
    let shop = Shop::trusted().await;
    shop.db.user(1009).await;
    // YooKassa creates the payment but its answer hangs; the user pays meanwhile.
    shop.fake.inject_fault(ApiFault {
        kind: ApiFaultKind::Timeout,
        count: 1,
        processed: true,
        path: Some("/v3/payments".into()),
        method: Some("POST".into()),
    });
    let yk = shop.yk.clone();
    let create =
        tokio::spawn(
            async move { payments::start_yookassa(&yk, 1009, &Shop::pack(100), "update:5", None).await },
        );
    let created = shop.fake.wait_for_payment(WAIT, |_| true).await.expect("created at YooKassa");
    let id = created["id"].as_str().expect("id").to_owned();
    shop.fake.pay(&id).expect("pay");
    shop.notified(1).await;
    // Usually before the create call returns (it waits for its 1 s timeout); credited once either way.
    assert_eq!(shop.db.balance(1009).await, (100, 0));
    let url = create.await.expect("task").expect("the retry gets the remembered answer");
    assert!(url.ends_with(&id), "{url}");
    assert_eq!(shop.db.balance(1009).await, (100, 0));
    // The redelivered update finishes with the same payment and credits nothing more.
    assert_eq!(shop.buy(1009, "update:5").await, id);
    assert_eq!(shop.fake.payments().len(), 1);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.topups_credited().await, 1);
    assert_eq!(shop.messages(1009).await.len(), 1);
    shop.stop().await;
}

#[tokio::test]
async fn payments_oversized_and_unhandled_notifications() {
    let shop = Shop::trusted().await;
    let huge = json!({"type": "notification", "event": "payment.succeeded",
        "object": {"id": "x", "padding": "a".repeat(100 * 1024)}});
    assert_eq!(shop.post_webhook("127.0.0.1", None, &huge).await, 413);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payment_events").await, 0);
    // refund.succeeded is stored for later; unknown shapes too; both answered 200.
    let refund = json!({"type": "notification", "event": "refund.succeeded", "object": {"id": "r-1"}});
    assert_eq!(shop.post_webhook("127.0.0.1", None, &refund).await, 200);
    assert_eq!(shop.post_webhook("127.0.0.1", None, &json!({"hello": "world"})).await, 200);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payment_events WHERE source = 'notification'").await, 2);
    shop.stop().await;
}

/// The whole service: `serve` with YooKassa configured, the fake Telegram as the user's app.
/// The notification reaches serve's own router, and the user reads the result in Telegram.
#[tokio::test]
async fn payments_through_serve_the_user_reads_the_credit_in_telegram() {
    use fakes::telegram::users::{self, UserProfile};
    use nanobanana::config::{Config, Role};

    let db = TestDb::new().await;
    let tg = fakes::FakeTelegram::start(fakes::TelegramConfig::default()).await.expect("fake Telegram");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let fake = FakeYooKassa::start(fakes::YooKassaConfig {
        notification_url: Some(format!("{url}/yookassa/webhook")),
        ..Default::default()
    })
    .await
    .expect("fake YooKassa");
    let vars: std::collections::HashMap<&str, String> = [
        ("DATABASE_URL", db.url.to_string()),
        ("TELEGRAM_BOT_TOKEN", tg.token().to_owned()),
        ("TELEGRAM_WEBHOOK_SECRET", "payments-test-secret".to_owned()),
        ("TELEGRAM_API_URL", tg.base_url()),
        ("AUTO_MIGRATE", "false".to_owned()),
        ("REDIS_PREFIX", format!("nbtest:{}:", uuid::Uuid::new_v4().simple())),
        ("YOOKASSA_SHOP_ID", fake.shop_id().to_owned()),
        ("YOOKASSA_SECRET_KEY", fake.secret_key().to_owned()),
        ("YOOKASSA_API_URL", fake.api_url()),
        ("YOOKASSA_RETURN_URL", "https://t.me/nanobanana_test_bot".to_owned()),
        ("YOOKASSA_TRUSTED_NETWORKS", "127.0.0.1/32".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(Role::Serve, &|k| vars.get(k).cloned()).expect("config");
    let yk_config = config.yookassa.clone().expect("YooKassa configured");
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(nanobanana::service::serve(config, listener, rx));
    // The user opens the chat (so the bot may write) and gets the welcome.
    let profile =
        UserProfile { first_name: Some("T".into()), username: None, language_code: Some("en".into()) };
    let user = 1010;
    // No webhook is registered (no PUBLIC_BASE_URL): deliver the /start update ourselves.
    users::command(tg.state(), user, &profile, "start", None).expect("command");
    let updates: Value = reqwest::Client::new()
        .post(format!("{}/bot{}/getUpdates", tg.base_url(), tg.token()))
        .json(&json!({"timeout": 0}))
        .send()
        .await
        .expect("getUpdates")
        .json()
        .await
        .expect("JSON");
    let update = updates["result"][0].clone();
    let status = reqwest::Client::new()
        .post(format!("{url}/telegram/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", "payments-test-secret")
        .json(&update)
        .send()
        .await
        .expect("webhook")
        .status();
    assert!(status.is_success(), "{status}: {update}");
    tg.wait_for_chat(user, WAIT, |c| !c.messages.is_empty()).await.expect("welcome");
    let yk = YooKassa::new(db.pool.clone(), yk_config, None).expect("client");
    let checkout =
        payments::start_yookassa(&yk, user, &Shop::pack(100), "update:1", None).await.expect("start");
    let id = checkout.rsplit('/').next().expect("id").to_owned();
    fake.pay(&id).expect("pay");
    let chat = tg
        .wait_for_chat(user, WAIT, |c| c.messages.len() >= 2)
        .await
        .unwrap_or_else(|e| panic!("{e}; {:?}", tg.chat(user)));
    let text = chat.messages[1].text().unwrap_or("");
    assert!(text.contains("100 credits credited. Balance: 100 credits"), "{text}");
    assert_eq!(db.balance(user).await, (100, 0));
    let _ = shutdown.send(true);
    server.await.expect("server task").expect("server ran cleanly");
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn payments_a_receipt_is_sent_when_enabled_and_a_contact_is_known() {
    let receipt = ReceiptConfig {
        item_description: "Пакет кредитов".into(),
        vat_code: 1,
        payment_subject: "service".into(),
        payment_mode: "full_payment".into(),
    };
    let shop = Shop::start_with(None, &["127.0.0.1/32"], Some(receipt)).await;
    shop.db.user(1011).await;
    let contact = Some(Contact::Email("user@example.com".into()));
    let url = payments::start_yookassa(&shop.yk, 1011, &Shop::pack(300), "update:1", contact)
        .await
        .expect("the fake accepts our receipt");
    let id = url.rsplit('/').next().expect("id");
    let payment = shop.fake.payment(id).expect("payment");
    assert_eq!(payment["receipt_registration"], "pending", "{payment}");
    assert_eq!(payment["amount"]["value"], "300.00");
    // Without a contact no receipt is attempted (asking for one is the bot's job).
    let url = payments::start_yookassa(&shop.yk, 1011, &Shop::pack(100), "update:2", None).await.expect("ok");
    let payment = shop.fake.payment(url.rsplit('/').next().expect("id")).expect("payment");
    assert!(payment.get("receipt_registration").is_none(), "{payment}");
    shop.stop().await;
}
