//! Refunds end to end (DESIGN §4 "Refunds"): the admin's `/refund` and `nanobanana admin
//! refund` hold unspent credits, ask the provider (the fake YooKassa or the fake Telegram)
//! and commit or release; a refund made in the YooKassa dashboard takes back what is left
//! and records the rest as debt that blocks generation until repaid. Audit clean after each.

use std::process::Output;

use fakes::yookassa::NotifyMode;
use serde_json::Value;

use crate::support::shop::ADMIN;
use crate::support::{fast, Shop, WAIT};

async fn payment_id(shop: &Shop, topup: &str) -> String {
    sqlx::query_scalar("SELECT payment_id FROM payments WHERE topup_id = $1::UUID")
        .bind(topup)
        .fetch_one(&shop.db.pool)
        .await
        .expect("charge")
}

/// The admin sends `/refund args`; the answer's text.
async fn admin_refund(shop: &Shop, args: &str) -> String {
    let before = shop.tg.chat(ADMIN).map_or(0, |c| c.messages.len());
    shop.ask(ADMIN, "en", "refund", args, before + 1).await
}

/// `nanobanana admin refund` as a separate process; awaited without blocking the fakes in this
/// runtime.
async fn cli(shop: &Shop, args: &[&str]) -> Output {
    shop.admin(&[&["refund"], args].concat()).await
}

#[tokio::test]
async fn refunds_unspent_credits_are_held_refunded_and_committed() {
    let shop = Shop::start(&[]).await;
    let user = 7001;
    let topup = shop.paid_user(user, "en").await;
    let answer = admin_refund(&shop, &topup).await;
    assert_eq!(answer, "Refunded: 100 credits, 100 ₽.");
    shop.wait_text(user, "Refund: 100 credits were taken back and 100 ₽ returned").await;
    assert_eq!(shop.db.balance(user).await, (0, 0));
    let payment = shop.yk().payment(&payment_id(&shop, &topup).await).expect("payment");
    assert_eq!(payment["refunded_amount"]["value"], "100.00");
    // YooKassa's refund.succeeded for our own refund settles nothing twice.
    shop.yk()
        .wait_for_notifications(WAIT, |r| {
            r.iter().any(|n| n.event == "refund.succeeded" && n.status == Some(200))
        })
        .await
        .expect("refund notification answered");
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM external_refunds").await, 0);
    assert_eq!(shop.count_texts(user, "Refund:"), 1);
    // Nothing is left to refund.
    let again = admin_refund(&shop, &topup).await;
    assert!(again.starts_with("Refund refused: topup"), "{again}");

    // The CLI, a part of a Russian user's charge.
    let ru = 7002;
    let topup = shop.paid_user(ru, "ru").await;
    let out = cli(&shop, &["--topup", &topup, "--credits", "30", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((report["outcome"].as_str(), report["credits"].as_i64()), (Some("refunded"), Some(30)));
    assert_eq!(report["amount_minor"], 3000);
    shop.wait_text(ru, "Возврат: списано 30 кредитов, вам возвращено 30 ₽").await;
    assert_eq!(shop.db.balance(ru).await, (70, 0));
    let refused = cli(&shop, &["--topup", &topup, "--credits", "71"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exceed the 70 still refundable"));
    shop.finish().await;
}

#[tokio::test]
async fn refunds_of_spent_credits_are_refused_and_a_provider_refusal_releases_the_hold() {
    let shop = Shop::start(&[]).await;
    let user = 7010;
    let topup = shop.paid_user(user, "en").await;
    shop.text(user, "en", "a cat in a hat");
    shop.until("reserved", "SELECT COUNT(*) FROM generations", 1).await;
    let (available, reserved) = shop.db.balance(user).await;
    assert!(reserved > 0 && available + reserved == 100);
    let answer = admin_refund(&shop, &topup).await;
    assert!(answer.contains(&format!("only {available} unspent")), "{answer}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);
    assert_eq!(
        shop.yk().payment(&payment_id(&shop, &topup).await).expect("p")["refunded_amount"]["value"],
        "0.00"
    );

    // YooKassa refuses: the payment was refunded in the dashboard meanwhile (we hear of it later).
    shop.yk().set_notify_mode(NotifyMode { hold: true, ..Default::default() });
    shop.yk().dashboard_refund(&payment_id(&shop, &topup).await, Some(2000)).expect("dashboard refund");
    let answer = admin_refund(&shop, &format!("{topup} {available}")).await;
    assert!(answer.starts_with("The provider refused the refund"), "{answer}");
    assert_eq!(shop.db.balance(user).await, (available, reserved), "hold released");
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'failed'").await, 1);
    // The queued generations are made, so the test ends with nothing in flight.
    shop.run_worker(fast()).await;
    shop.finish().await;
}

#[tokio::test]
async fn refunds_from_the_dashboard_leave_debt_that_blocks_generation_until_repaid() {
    let shop = Shop::start(&[]).await;
    let user = 7020;
    let topup = shop.paid_user(user, "ru").await;
    shop.text(user, "ru", "кот в шляпе");
    shop.until("reserved", "SELECT COUNT(*) FROM generations", 1).await;
    let (available, cost) = shop.db.balance(user).await;
    shop.yk().dashboard_refund(&payment_id(&shop, &topup).await, None).expect("dashboard refund");
    shop.wait_text(user, &format!("{cost} кредитов уже были потрачены")).await;
    assert_eq!(shop.db.balance(user).await, (0, cost));
    let (deducted, debt): (i64, i64) = sqlx::query_as("SELECT deducted, debt FROM external_refunds")
        .fetch_one(&shop.db.pool)
        .await
        .expect("settled");
    assert_eq!((deducted, debt), (available, cost));
    // The notification again (YooKassa retries): settled once.
    let again = shop.yk().notifications().into_iter().find(|n| n.event == "refund.succeeded").expect("sent");
    let body = serde_json::json!({"type": "notification", "event": "refund.succeeded",
        "object": {"id": again.object_id, "status": "succeeded"}});
    let status = reqwest::Client::new()
        .post(format!("{}/yookassa/webhook", shop.url))
        .json(&body)
        .send()
        .await
        .expect("webhook")
        .status();
    assert_eq!(status, 200);
    assert_eq!(shop.count("SELECT COUNT(*) FROM transactions WHERE type = 'refund'").await, 1);
    // Generation is blocked while the debt is open.
    shop.text(user, "ru", "собака в шляпе");
    shop.wait_text(user, &format!("за вами долг {cost} кредитов")).await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM generations").await, 1);
    // A top-up repays it; the next prompt goes through.
    shop.choose(user, "ru", "rub100").await;
    let url = shop.pay_url(user, 2).await;
    shop.checkout(&url, None).await;
    shop.until("the second payment credited", "SELECT COUNT(*) FROM transactions WHERE type = 'topup'", 2)
        .await;
    shop.text(user, "ru", "птица в шляпе");
    shop.wait_text(user, "птица в шляпе").await;
    shop.until("generated after repaying", "SELECT COUNT(*) FROM generations", 2).await;
    assert_eq!(shop.db.balance(user).await, (100 - cost - cost, cost + cost));
    assert_eq!(shop.count("SELECT owed FROM credit_debts").await, 0);
    // The queued generations are made, so the test ends with nothing in flight.
    shop.run_worker(fast()).await;
    shop.finish().await;
}

#[tokio::test]
async fn refunds_of_stars_go_through_refund_star_payment() {
    let shop = Shop::start(&[]).await;
    let user = 7030;
    let topup = shop.paid_stars(user).await;
    let partial = admin_refund(&shop, &format!("{topup} 10")).await;
    assert!(partial.contains("never a part"), "{partial}");
    let answer = admin_refund(&shop, &topup).await;
    assert_eq!(answer, "Refunded: 100 credits, 80 ⭐.");
    assert_eq!(shop.db.balance(user).await, (0, 0));
    let payments = shop.tg.payments();
    assert_eq!(payments.iter().filter(|p| p.status == "refunded").count(), 1, "{payments:?}");
    shop.finish().await;
}

/// Telegram fails `refundStarPayment` once (a 500: the outcome is unknown). The admin's update
/// closes at once with "held" (never a 5xx that would freeze the chat, DESIGN §10), and the
/// Stars reconciler finishes it: not among Telegram's transactions, so the same refund is asked
/// again.
#[tokio::test]
async fn refunds_of_stars_whose_outcome_was_unknown_are_reconciled_not_left_held() {
    use fakes::telegram::{Fault, FaultKind};
    let shop = Shop::start(&[]).await;
    let user = 7031;
    let topup = shop.paid_stars(user).await;
    shop.tg.inject_fault(Fault {
        method: "refundStarPayment".into(),
        count: 1,
        kind: FaultKind::ServerError,
        retry_after: None,
        processed: false,
    });
    let answer = admin_refund(&shop, &topup).await;
    assert!(answer.starts_with("The refund's outcome is not known yet"), "{answer}");
    shop.wait_text(user, "Refund: 100 credits were taken back and 80 ⭐ returned").await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.db.balance(user).await, (0, 0));
    let payments = shop.tg.payments();
    assert_eq!(payments.iter().filter(|p| p.status == "refunded").count(), 1, "{payments:?}");
    shop.finish().await;
}

/// The refund went through but its answer was lost: the reconciler finds it among Telegram's
/// outgoing Stars transactions and commits the hold without asking for it again.
#[tokio::test]
async fn refunds_of_stars_done_with_a_lost_answer_are_found_in_star_transactions() {
    use fakes::telegram::{Fault, FaultKind};
    let shop = Shop::start(&[]).await;
    let user = 7032;
    let topup = shop.paid_stars(user).await;
    shop.tg.inject_fault(Fault {
        method: "refundStarPayment".into(),
        count: 1,
        kind: FaultKind::ServerError,
        retry_after: None,
        processed: true,
    });
    let answer = admin_refund(&shop, &topup).await;
    assert!(answer.starts_with("The refund's outcome is not known yet"), "{answer}");
    shop.wait_text(user, "Refund: 100 credits were taken back and 80 ⭐ returned").await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded'").await, 1);
    assert_eq!(shop.db.balance(user).await, (0, 0));
    let chat = shop.tg.chat(user).expect("chat");
    let asked = chat.events.iter().filter(|e| e.method == "refundStarPayment").count();
    assert_eq!(asked, 1, "refunded once, never asked again");
    shop.finish().await;
}
