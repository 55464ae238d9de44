//! Payments through the bot, end to end: `serve` with the fake Telegram as the user's app and
//! the fake YooKassa as the shop, over real HTTP, real Postgres. `/buy`, the terms, the
//! receipt contact, the checkout, Stars invoices and pre-checkout, refunds (the admin's
//! `/refund` and the CLI), dashboard refunds and the debt they leave. Audit clean after each.

use fakes::telegram::users;
use fakes::telegram::ChatRecord;
use serde_json::{json, Value};

use crate::support::shop::{pay_buttons, TERMS};
use crate::support::{wait, Shop, TestApp, WAIT};

#[tokio::test]
async fn buy_rubles_terms_first_then_pay_at_the_checkout_credited_once_and_told() {
    let shop = Shop::start(&[]).await;
    let user = 6001;
    shop.choose(user, "en", "rub100").await;
    let terms = shop.wait_text(user, "Terms of use (version 2026-11)").await;
    assert!(terms.text().is_some_and(|t| t.contains("https://example.com/privacy")), "{terms:?}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM topups").await, 0, "no order before the terms");
    shop.accept_terms(user).await;
    let accepted: Option<String> = sqlx::query_scalar(
        "SELECT terms_version FROM users WHERE telegram_id = $1 AND terms_accepted_at IS NOT NULL",
    )
    .bind(user)
    .fetch_one(&shop.db.pool)
    .await
    .expect("user");
    assert_eq!(accepted.as_deref(), Some(TERMS));
    let pay = shop.wait_text(user, "Order: 100 credits for 100 ₽").await;
    let button = &pay.reply_markup().expect("keyboard")["inline_keyboard"][0][0];
    assert_eq!(button["text"], "Pay 100 ₽");
    let url = shop.pay_url(user, 1).await;
    shop.checkout(&url, None).await;
    shop.wait_text(user, "100 credits credited. Balance: 100 credits").await;
    assert_eq!(shop.db.balance(user).await, (100, 0));
    assert_eq!(shop.yk().payments().len(), 1, "one payment at YooKassa");
    // A second purchase asks no terms again; a new version of the terms does.
    shop.choose(user, "en", "rub200").await;
    let url = shop.pay_url(user, 2).await;
    assert_eq!(shop.count_texts(user, "Terms of use"), 1);
    shop.checkout(&url, None).await;
    shop.wait_text(user, "Balance: 300 credits").await;
    sqlx::query("UPDATE users SET terms_version = '2026-01' WHERE telegram_id = $1")
        .bind(user)
        .execute(&shop.db.pool)
        .await
        .expect("an older acceptance");
    shop.choose(user, "en", "rub100").await;
    shop.tg
        .wait_for_chat(user, WAIT, |c| {
            c.messages.iter().filter(|m| m.text().is_some_and(|t| t.contains("Terms of use"))).count() == 2
        })
        .await
        .expect("the new terms asked again");
    shop.until("credited once each", "SELECT COUNT(*) FROM transactions WHERE type = 'topup'", 2).await;
    assert_eq!(shop.count_texts(user, "credited"), 2);
    shop.finish().await;
}

#[tokio::test]
async fn buy_a_canceled_payment_tells_the_user_why_in_russian() {
    let shop = Shop::start(&[]).await;
    let user = 6002;
    shop.choose(user, "ru", "rub300").await;
    shop.accept_terms(user).await;
    let pay = shop.wait_text(user, "300 кредитов за 300 ₽").await;
    assert_eq!(pay.reply_markup().expect("keyboard")["inline_keyboard"][0][0]["text"], "Оплатить 300 ₽");
    let url = shop.pay_url(user, 1).await;
    shop.checkout(&url, Some("insufficient_funds")).await;
    shop.wait_text(user, "не прошёл: на карте недостаточно средств").await;
    assert_eq!(shop.db.balance(user).await, (0, 0));
    assert_eq!(shop.count("SELECT COUNT(*) FROM transactions").await, 0);
    shop.finish().await;
}

#[tokio::test]
async fn buy_with_receipts_the_contact_is_asked_once_validated_and_sent() {
    let shop = Shop::start(&[("RECEIPTS_ENABLED", "true")]).await;
    let user = 6003;
    shop.choose(user, "en", "rub100").await;
    shop.accept_terms(user).await;
    shop.wait_text(user, "e-mail or phone number").await;
    // A mistyped address is asked again (and is no prompt).
    shop.text(user, "en", "buyer@example");
    shop.wait_text(user, "That is not an e-mail or a phone number").await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM generations").await, 0, "not a prompt");
    shop.text(user, "en", "buyer@example.com");
    shop.wait_text(user, "the receipt will go there").await;
    let url = shop.pay_url(user, 1).await;
    let id = url.rsplit('/').next().expect("id");
    let payment = shop.yk().payment(id).expect("payment");
    assert_eq!(payment["receipt_registration"], "pending", "{payment}");
    // Remembered: the next purchase goes straight to the button.
    shop.choose(user, "en", "rub200").await;
    shop.pay_url(user, 2).await;
    assert_eq!(shop.count_texts(user, "e-mail or phone number"), 1);
    // Russian, a phone number.
    let ru = 6004;
    shop.choose(ru, "ru", "rub100").await;
    shop.accept_terms(ru).await;
    shop.wait_text(ru, "e-mail или номер телефона").await;
    shop.text(ru, "ru", "8 900 123 45");
    shop.wait_text(ru, "не похоже на e-mail").await;
    shop.text(ru, "ru", "8 (900) 123-45-67");
    shop.pay_url(ru, 1).await;
    let stored: String = sqlx::query_scalar("SELECT receipt_contact FROM users WHERE telegram_id = $1")
        .bind(ru)
        .fetch_one(&shop.db.pool)
        .await
        .expect("contact");
    assert_eq!(stored, "phone:79001234567");
    shop.finish().await;
}

fn awaiting_contact(user: i64) -> String {
    format!("SELECT COUNT(*) FROM users WHERE telegram_id = {user} AND awaiting = 'receipt_contact'")
}

/// Asked for the receipt contact, a user who moves on is not held there: a command is that
/// command and a sentence is a prompt, both leaving the question; a mistyped contact is still
/// asked again.
#[tokio::test]
async fn buy_receipt_contact_question_is_left_by_a_command_or_a_prompt() {
    let shop = Shop::start(&[("RECEIPTS_ENABLED", "true")]).await;
    let (by_command, by_prompt, by_typo) = (6061, 6062, 6063);
    for (user, lang) in [(by_command, "en"), (by_prompt, "ru"), (by_typo, "en")] {
        shop.choose(user, lang, "rub100").await;
        shop.accept_terms(user).await;
        let asked =
            if lang == "ru" { "e-mail или номер телефона" } else { "e-mail or phone number" };
        shop.wait_text(user, asked).await;
        shop.until("asked", &awaiting_contact(user), 1).await;
    }
    // A command: answered as itself, and the question is dropped.
    shop.command(by_command, "en", "balance");
    shop.wait_text(by_command, "credits, reserved: 0").await;
    shop.until("left by the command", &awaiting_contact(by_command), 0).await;
    // A prompt: handled as one (no credits yet), and the question is dropped.
    shop.text(by_prompt, "ru", "кот в шляпе на луне");
    shop.wait_text(by_prompt, "Не хватает кредитов").await;
    shop.until("left by the prompt", &awaiting_contact(by_prompt), 0).await;
    // A typo: asked again, still waiting; then the contact goes on to the payment.
    shop.text(by_typo, "en", "+7 900 123");
    shop.wait_text(by_typo, "That is not an e-mail or a phone number").await;
    assert_eq!(shop.count(&awaiting_contact(by_typo)).await, 1, "still asked");
    shop.text(by_typo, "en", "+7 900 123-45-67");
    shop.pay_url(by_typo, 1).await;
    for user in [by_command, by_prompt] {
        assert_eq!(shop.count_texts(user, "e-mail"), 1, "asked once, never told it is invalid");
    }
    let contacts = "SELECT COUNT(*) FROM users WHERE receipt_contact IS NOT NULL";
    assert_eq!(shop.count(contacts).await, 1);
    shop.finish().await;
}

fn answers(chat: &ChatRecord) -> Vec<Value> {
    chat.events.iter().filter(|e| e.method == "answerPreCheckoutQuery").map(|e| e.detail.clone()).collect()
}

#[tokio::test]
async fn buy_stars_credited_once_per_charge_and_a_second_charge_too() {
    let shop = Shop::start(&[]).await;
    let user = 6010;
    shop.choose(user, "en", "xtr100").await;
    shop.accept_terms(user).await;
    let invoice = shop.invoice(user).await;
    assert_eq!(invoice.message["invoice"]["currency"], "XTR");
    assert_eq!(invoice.message["invoice"]["total_amount"], 80);
    assert_eq!(invoice.message["invoice"]["start_parameter"], "buy");
    let topup = shop.topup_of(user).await;
    assert_eq!(invoice.invoice_payload.as_deref(), Some(topup.as_str()));
    shop.tg.pay_invoice(user, invoice.message_id).expect("pay");
    shop.wait_text(user, "100 credits credited. Balance: 100 credits").await;
    let chat = shop.tg.chat(user).expect("chat");
    assert_eq!(answers(&chat).first().map(|a| a["ok"].clone()), Some(json!(true)));
    let charge = shop.tg.payments().into_iter().find_map(|p| p.telegram_payment_charge_id).expect("charge");
    // Telegram delivers the same successful_payment again (another update): nothing more.
    let paid = |charge: &str| {
        json!({"message": {"message_id": 900, "date": 0, "chat": {"id": user, "type": "private"},
            "from": {"id": user, "first_name": "T", "language_code": "en"},
            "successful_payment": {"currency": "XTR", "total_amount": 80, "invoice_payload": topup,
                "telegram_payment_charge_id": charge, "provider_payment_charge_id": "p"}}})
    };
    users::raw_update(shop.tg.state(), paid(&charge)).expect("duplicate");
    users::raw_update(shop.tg.state(), paid(&charge)).expect("duplicate");
    shop.tg.wait_until_no_pending_updates(WAIT).await.expect("delivered");
    shop.until(
        "duplicates handled",
        "SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled' AND kind = 'message'",
        4,
    )
    .await;
    assert_eq!(shop.db.balance(user).await, (100, 0));
    // A second charge of the same order (the money arrived twice): credited too.
    users::raw_update(shop.tg.state(), paid("stxSECOND")).expect("second charge");
    shop.wait_text(user, "Balance: 200 credits").await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM transactions WHERE type = 'topup'").await, 2);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_events WHERE provider = 'stars'").await, 5);
    shop.finish().await;
}

#[tokio::test]
async fn buy_stars_pre_checkout_from_another_user_or_for_an_unknown_order_is_declined() {
    let shop = Shop::start(&[]).await;
    let (owner, other) = (6020, 6021);
    shop.choose(owner, "en", "xtr100").await;
    shop.accept_terms(owner).await;
    shop.invoice(owner).await;
    let topup = shop.topup_of(owner).await;
    let query = |id: &str, from: i64, lang: &str, payload: &str, amount: i64| {
        json!({"pre_checkout_query": {"id": id, "from": {"id": from, "first_name": "X", "language_code": lang},
            "currency": "XTR", "total_amount": amount, "invoice_payload": payload}})
    };
    let cases = [
        ("q-other", other, "ru", topup.clone(), 80, "недействителен"),
        ("q-unknown", owner, "en", uuid::Uuid::new_v4().to_string(), 80, "not valid for you"),
        ("q-junk", owner, "en", "not-a-topup".to_owned(), 80, "not valid for you"),
        ("q-amount", owner, "en", topup.clone(), 1, "has changed"),
    ];
    for (id, from, lang, payload, amount, _) in &cases {
        users::raw_update(shop.tg.state(), query(id, *from, lang, payload, *amount)).expect("query");
        assert!(shop.tg.chat(*from).is_some(), "{id}: the payer's chat exists in the fake");
    }
    for (id, from, _, _, _, reason) in &cases {
        let chat = shop
            .tg
            .wait_for_chat(*from, WAIT, |c| answers(c).iter().any(|a| a["pre_checkout_query_id"] == *id))
            .await
            .unwrap_or_else(|e| panic!("{id} answered: {e}; {:?}", shop.tg.chat(*from)));
        let answer = answers(&chat).into_iter().find(|a| a["pre_checkout_query_id"] == *id).expect("answer");
        assert_eq!(answer["ok"], false, "{id}: {answer}");
        assert!(answer["error_message"].as_str().is_some_and(|m| m.contains(reason)), "{id}: {answer}");
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM transactions").await, 0);
    shop.finish().await;
}

/// Guarantee 3 for the create call: `serve` is killed after YooKassa created the payment and
/// before the answer was saved; Telegram redelivers the button press and the new process
/// finishes it with the same payment (same Idempotence-Key), which is then credited once.
#[tokio::test]
async fn buy_killed_between_the_create_call_and_saving_its_answer_finishes_with_the_same_payment() {
    let app = TestApp::builder()
        .telegram(fakes::TelegramConfig {
            webhook_retry_delay: std::time::Duration::from_millis(100),
            ..fakes::TelegramConfig::default()
        })
        .yookassa()
        .env("TERMS_VERSION", TERMS)
        .serve_as_process()
        .start()
        .await;
    let (db, tg, yk) = (&app.db, &app.tg, app.yookassa());
    let user = 6030;
    db.user(user).await;
    sqlx::query("UPDATE users SET terms_version = $2, terms_accepted_at = now(), language = 'en' WHERE telegram_id = $1")
        .bind(user)
        .bind(TERMS)
        .execute(&db.pool)
        .await
        .expect("terms accepted");
    let mut serve = app.spawn_serve();
    app.command(user, "en", "buy");
    let chat = app.messages(user, 1).await;
    let screen = chat.messages[0].message_id;
    // Saving the charge row waits on this lock: the kill lands after the create call returned.
    let mut blocker = db.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE payments IN SHARE MODE").execute(&mut *blocker).await.expect("lock");
    tg.press_button(user, screen, "buy:rub100").expect("press");
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    wait::until("the create call got to saving", WAIT, || async {
        let blocked: i64 = sqlx::query_scalar(waiting).fetch_one(&db.pool).await.expect("activity");
        let created = yk.payments().len();
        if created == 1 && blocked > 0 {
            Ok(())
        } else {
            Err(format!("{created} payments created, {blocked} waiting on a lock"))
        }
    })
    .await;
    serve.kill().await;
    blocker.rollback().await.expect("unlock");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments").await,
        0,
        "the answer was not saved before the kill"
    );
    let _serve = app.spawn_serve();
    let chat = app.chat(user, |c| !pay_buttons(c).is_empty()).await;
    let buttons = pay_buttons(&chat);
    assert_eq!(buttons.len(), 1, "one button: {buttons:?}");
    let payments = yk.payments();
    assert_eq!(payments.len(), 1, "one payment at YooKassa: {payments:?}");
    let id = payments[0]["id"].as_str().expect("id");
    assert!(buttons[0].ends_with(id), "{} pays {id}", buttons[0]);
    let creates: Vec<_> =
        yk.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v3/payments").collect();
    assert!(creates.len() >= 2, "the create call was repeated: {creates:?}");
    assert!(creates.iter().all(|r| r.idempotence_key == creates[0].idempotence_key), "{creates:?}");
    yk.pay(id).expect("pay");
    wait::until("credited", WAIT, || async {
        match db.balance(user).await {
            (100, 0) => Ok(()),
            other => Err(format!("the balance is {other:?}")),
        }
    })
    .await;
    app.wait_text(user, "credited").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM topups").await, 1);
    // The restarted `serve` is still running: it drains, then the test ends.
    app.finish().await;
}

/// Telegram answers the pre-checkout answer with a 500 (or a 429) once: the bot tries again
/// within Telegram's 10 s, so the user's payment goes through instead of failing.
#[tokio::test]
async fn buy_stars_pre_checkout_answer_is_repeated_after_a_telegram_error() {
    use fakes::telegram::{Fault, FaultKind};
    let shop = Shop::start(&[]).await;
    let user = 6040;
    shop.choose(user, "en", "xtr100").await;
    shop.accept_terms(user).await;
    let invoice = shop.invoice(user).await;
    for kind in [FaultKind::ServerError, FaultKind::TooManyRequests] {
        shop.tg.inject_fault(Fault {
            method: "answerPreCheckoutQuery".into(),
            count: 1,
            kind,
            retry_after: Some(1),
            processed: false,
        });
    }
    shop.tg.pay_invoice(user, invoice.message_id).expect("pay");
    shop.wait_text(user, "100 credits credited. Balance: 100 credits").await;
    let payments = shop.tg.payments();
    assert_eq!(payments.iter().filter(|p| p.status == "paid").count(), 1, "{payments:?}");
    shop.finish().await;
}

/// `serve` committed a pre-checkout query but never got its answer through (here: Telegram
/// failed every try): when Telegram delivers the same update again, the handled update is
/// answered again with the same decision, recording nothing, and the payment goes through
/// and is credited once.
#[tokio::test]
async fn buy_stars_pre_checkout_redelivered_after_a_lost_answer_is_answered_again() {
    use fakes::telegram::{Fault, FaultKind};
    let shop = Shop::start(&[]).await;
    let user = 6050;
    shop.choose(user, "en", "xtr100").await;
    shop.accept_terms(user).await;
    shop.invoice(user).await;
    let topup = shop.topup_of(user).await;
    let (update_id, query_id) = (7_000_001_i64, "q-redelivered");
    let update = json!({"update_id": update_id, "pre_checkout_query": {"id": query_id,
        "from": {"id": user, "first_name": "T", "language_code": "en"},
        "currency": "XTR", "total_amount": 80, "invoice_payload": topup}});
    shop.tg.inject_fault(Fault {
        method: "answerPreCheckoutQuery".into(),
        count: 3,
        kind: FaultKind::ServerError,
        retry_after: None,
        processed: false,
    });
    users::raw_update(shop.tg.state(), update.clone()).expect("query");
    shop.until(
        "the query handled",
        &format!("SELECT COUNT(*) FROM telegram_updates WHERE update_id = {update_id} AND state = 'handled'"),
        1,
    )
    .await;
    // The webhook call returns after the tries: then the update leaves the fake's queue.
    shop.tg.wait_until_no_pending_updates(WAIT).await.expect("delivered");
    assert!(shop.tg.state().lock().faults.is_empty(), "all three tries failed");
    let answered = |c: &ChatRecord| answers(c).iter().any(|a| a["pre_checkout_query_id"] == query_id);
    assert!(!shop.tg.chat(user).is_some_and(|c| answered(&c)), "no answer got through");
    let events = "SELECT COUNT(*) FROM payment_events WHERE event = 'pre_checkout_query'";
    assert_eq!(shop.count(events).await, 1);
    // Telegram delivers the very same update again.
    users::raw_update(shop.tg.state(), update).expect("redelivery");
    let chat = shop.chat(user, answered).await;
    let answer = answers(&chat).into_iter().find(|a| a["pre_checkout_query_id"] == query_id).expect("answer");
    assert_eq!(answer["ok"], true, "{answer}");
    shop.wait_text(user, "100 credits credited. Balance: 100 credits").await;
    shop.tg.wait_until_no_pending_updates(WAIT).await.expect("delivered");
    assert_eq!(shop.count(events).await, 1, "the repeat recorded nothing");
    assert_eq!(shop.count("SELECT COUNT(*) FROM topups").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM transactions WHERE type = 'topup'").await, 1);
    assert_eq!(shop.db.balance(user).await, (100, 0));
    shop.finish().await;
}
