//! YooKassa: checkout page, notifications (retries until 200, source address, duplicates,
//! drops, held and reordered) and refunds from the dashboard.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;
use crate::yookassa_api::{payment_body, start_yookassa, yk};
use fakes::yookassa::NotifyMode;

#[tokio::test]
async fn checkout_page_pays_and_the_notification_is_retried_until_200() {
    let hook =
        Receiver::start(|n, _| if n < 3 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }).await;
    let fake = start_yookassa(Some(hook.url.clone())).await;
    let created = yk(&fake, "POST", "/payments", Some("p"), Some(payment_body("100.00", true))).await.1;
    let url = created["confirmation"]["confirmation_url"].as_str().expect("url").to_string();
    let page = client().get(&url).send().await.expect("page").text().await.expect("html");
    assert!(page.contains("Pay 100.00 RUB") && page.contains("insufficient_funds"));
    let no_redirect =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let paid = no_redirect.post(format!("{url}/pay")).send().await.expect("pay");
    assert_eq!(paid.status().as_u16(), 303);
    assert_eq!(paid.headers()["location"], "https://t.me/nanobanana_test_bot");

    let received = hook.wait_for(3).await;
    for request in &received {
        assert_eq!(request.body["type"], "notification");
        assert_eq!(request.body["event"], "payment.succeeded");
        assert_eq!(request.body["object"]["id"], created["id"]);
        assert_eq!(request.body["object"]["status"], "succeeded");
        assert_eq!(request.peer.ip().to_string(), "127.0.0.2", "sent from the configured source address");
    }
    let records = fake
        .wait_for_notifications(WAIT, |r| r.iter().any(|a| a.status == Some(200)))
        .await
        .expect("delivered");
    assert_eq!(records.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test]
async fn duplicates_drops_and_reordering() {
    let hook = Receiver::start(|_, _| StatusCode::OK).await;
    let fake = start_yookassa(Some(hook.url.clone())).await;
    let a = yk(&fake, "POST", "/payments", Some("a"), Some(payment_body("10.00", true))).await.1;
    let b = yk(&fake, "POST", "/payments", Some("b"), Some(payment_body("20.00", false))).await.1;
    let c = yk(&fake, "POST", "/payments", Some("c"), Some(payment_body("30.00", true))).await.1;
    let id = |v: &serde_json::Value| v["id"].as_str().expect("id").to_string();

    fake.set_notify_mode(NotifyMode { duplicate: 3, ..NotifyMode::default() });
    fake.pay(&id(&a)).expect("pay");
    let copies = hook.wait_for(3).await;
    assert!(copies.iter().all(|r| r.body["object"]["id"] == a["id"]));

    fake.set_notify_mode(NotifyMode { drop_next: 1, ..NotifyMode::default() });
    fake.cancel(&id(&c), "general_decline").expect("cancel");
    let records = fake.notifications();
    assert!(records.iter().any(|r| r.object_id == id(&c) && r.error.as_deref() == Some("dropped")));

    let (status, _) =
        post_json(&format!("{}/_fake/notifications/mode", fake.base_url()), &json!({"hold": true})).await;
    assert_eq!(status, 200);
    fake.pay(&id(&b)).expect("pay: waiting_for_capture");
    let captured =
        yk(&fake, "POST", &format!("/payments/{}/capture", id(&b)), Some("cap"), Some(json!({}))).await;
    assert_eq!(captured.1["status"], "succeeded");
    let (status, released) =
        post_json(&format!("{}/_fake/notifications/release", fake.base_url()), &json!({"reverse": true}))
            .await;
    assert_eq!((status, released["released"].as_u64()), (200, Some(2)));
    let all = hook.wait_for(5).await;
    let events: Vec<&str> = all[3..].iter().map(|r| r.body["event"].as_str().unwrap_or("")).collect();
    assert_eq!(events, ["payment.succeeded", "payment.waiting_for_capture"], "released in reverse order");
    assert!(all.iter().all(|r| r.body["object"]["id"] != c["id"]), "the dropped one never arrives");
}

#[tokio::test]
async fn a_dashboard_refund_sends_refund_succeeded() {
    let hook = Receiver::start(|_, _| StatusCode::OK).await;
    let fake = start_yookassa(Some(hook.url.clone())).await;
    let p = yk(&fake, "POST", "/payments", Some("p"), Some(payment_body("100.00", true))).await.1;
    let id = p["id"].as_str().expect("id");
    fake.pay(id).expect("pay");
    let (status, refund) =
        post_json(&format!("{}/_fake/payments/{id}/refund", fake.base_url()), &json!({"value": "30.00"}))
            .await;
    assert_eq!(status, 200, "{refund}");
    let received = hook.wait_for(2).await;
    // Notifications of different objects may arrive in any order, as with YooKassa.
    let refunded = received.iter().find(|r| r.body["event"] == "refund.succeeded").expect("refund.succeeded");
    assert_eq!(refunded.body["object"]["payment_id"], id);
    assert_eq!(refunded.body["object"]["amount"]["value"], "30.00");
    let got = yk(&fake, "GET", &format!("/refunds/{}", refund["id"].as_str().expect("id")), None, None).await;
    assert_eq!(got.1["status"], "succeeded");
}

#[tokio::test]
async fn unpaid_payments_expire_on_confirmation() {
    let hook = Receiver::start(|_, _| StatusCode::OK).await;
    let config = fakes::YooKassaConfig {
        notification_url: Some(hook.url.clone()),
        confirmation_expiry: std::time::Duration::from_millis(100),
        ..fakes::YooKassaConfig::default()
    };
    let fake = fakes::FakeYooKassa::start(config).await.expect("start");
    let p = yk(&fake, "POST", "/payments", Some("p"), Some(payment_body("10.00", true))).await.1;
    let received = hook.wait_for(1).await;
    assert_eq!(received[0].body["event"], "payment.canceled");
    assert_eq!(received[0].body["object"]["id"], p["id"]);
    assert_eq!(
        received[0].body["object"]["cancellation_details"],
        json!({"party": "yoo_money", "reason": "expired_on_confirmation"})
    );
    let got = yk(&fake, "GET", &format!("/payments/{}", p["id"].as_str().expect("id")), None, None).await;
    assert_eq!(got.1["status"], "canceled");
}

fn object_id(body: &serde_json::Value) -> String {
    body["object"]["id"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn duplicate_copies_arrive_concurrently() {
    // Each answer takes 500 ms, so copies sent together overlap at the receiver.
    let delay = std::time::Duration::from_millis(500);
    let hook = Receiver::start_with(|_, _| StatusCode::OK, delay, object_id, "127.0.0.1:0").await;
    let fake = start_yookassa(Some(hook.url.clone())).await;
    let p = yk(&fake, "POST", "/payments", Some("p"), Some(payment_body("10.00", true))).await.1;
    fake.set_notify_mode(NotifyMode { duplicate: 3, ..NotifyMode::default() });
    fake.pay(p["id"].as_str().expect("id")).expect("pay");
    let received = hook.wait_for(3).await;
    assert!(received.iter().all(|r| r.body["event"] == "payment.succeeded"));
    assert_eq!(hook.max_in_flight_per_key(), 3, "the three copies were in flight together");
}
