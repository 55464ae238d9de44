//! Telegram: webhook delivery (secret header, redelivery, order, one in flight per chat) and
//! the 409 Conflict of getUpdates while a webhook is set.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

fn chat_of(update: &Value) -> String {
    update["message"]["chat"]["id"].to_string()
}

#[tokio::test]
async fn webhook_redelivers_until_2xx_with_the_secret_header() {
    let tg = start_telegram().await;
    // First answer 500, then 200.
    let hook =
        Receiver::start(|n, _| if n == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }).await;
    call_ok(&tg, "setWebhook", json!({"url": hook.url, "secret_token": "s3cret_-X"})).await;
    let sent = tg.send_text(21, "hello").expect("user writes");
    let received = hook.wait_for(2).await;
    for request in &received {
        assert_eq!(request.headers["x-telegram-bot-api-secret-token"], "s3cret_-X");
        assert_eq!(request.body["update_id"], sent.update_id);
    }
    tg.wait_until_no_pending_updates(WAIT).await.expect("delivered");
    let info = call_ok(&tg, "getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], hook.url);
    assert_eq!(info["pending_update_count"], 0);
    assert_eq!(info["last_error_message"], "Wrong response from the webhook: 500 Internal Server Error");
    let deliveries = tg.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!((deliveries[0].status, deliveries[1].status), (Some(500), Some(200)));
}

#[tokio::test]
async fn get_updates_conflicts_while_a_webhook_is_set() {
    let tg = start_telegram().await;
    let hook = Receiver::start(|_, _| StatusCode::OK).await;
    call_ok(&tg, "setWebhook", json!({"url": hook.url})).await;
    let answer = call(&tg, "getUpdates", json!({})).await;
    assert_error(&answer, 409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    let bad_secret = call(&tg, "setWebhook", json!({"url": hook.url, "secret_token": "no spaces"})).await;
    assert_eq!(bad_secret.0, 400);
    call_ok(&tg, "deleteWebhook", json!({})).await;
    assert_eq!(call_ok(&tg, "getUpdates", json!({})).await, json!([]));
}

#[tokio::test]
async fn updates_of_one_chat_go_one_at_a_time_in_order() {
    let tg = start_telegram().await;
    let hook =
        Receiver::start_with(|_, _| StatusCode::OK, Duration::from_millis(30), chat_of, "127.0.0.1:0").await;
    for i in 0..4 {
        tg.send_text(31, &format!("a{i}")).expect("user writes");
        tg.send_text(32, &format!("b{i}")).expect("user writes");
    }
    call_ok(&tg, "setWebhook", json!({"url": hook.url, "max_connections": 10})).await;
    let received = hook.wait_for(8).await;
    let texts = |chat: i64| -> Vec<String> {
        received
            .iter()
            .filter(|r| r.body["message"]["chat"]["id"] == chat)
            .map(|r| r.body["message"]["text"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(texts(31), ["a0", "a1", "a2", "a3"]);
    assert_eq!(texts(32), ["b0", "b1", "b2", "b3"]);
    assert_eq!(hook.max_in_flight_per_key(), 1, "never two updates of one chat at once");
}

#[tokio::test]
async fn a_slow_webhook_times_out_and_the_update_goes_again() {
    let config = fakes::TelegramConfig {
        webhook_timeout: Duration::from_millis(200),
        webhook_retry_delay: Duration::from_millis(20),
        ..fakes::TelegramConfig::default()
    };
    let tg = fakes::FakeTelegram::start(config).await.expect("start");
    // Every answer takes 500 ms, longer than the 200 ms the fake waits: each attempt times out.
    let hook =
        Receiver::start_with(|_, _| StatusCode::OK, Duration::from_millis(500), chat_of, "127.0.0.1:0").await;
    call_ok(&tg, "setWebhook", json!({"url": hook.url})).await;
    let sent = tg.send_text(41, "slow").expect("user writes");
    let received = hook.wait_for(2).await;
    assert!(received.iter().all(|r| r.body["update_id"] == sent.update_id), "the same update again");
    let first = tg.deliveries().into_iter().next().expect("the first attempt is recorded before the second");
    assert_eq!((first.attempt, first.error.as_deref()), (1, Some("Read timeout expired")));
    let info = call_ok(&tg, "getWebhookInfo", json!({})).await;
    assert_eq!(info["last_error_message"], "Read timeout expired");
    assert_eq!(info["pending_update_count"], 1);
}

#[tokio::test]
async fn a_redirect_is_not_a_delivery() {
    let tg = start_telegram().await;
    let hook = Receiver::start(|n, _| if n == 1 { StatusCode::FOUND } else { StatusCode::NO_CONTENT }).await;
    call_ok(&tg, "setWebhook", json!({"url": hook.url})).await;
    tg.send_text(42, "hi").expect("user writes");
    hook.wait_for(2).await;
    tg.wait_until_no_pending_updates(WAIT).await.expect("delivered by the 204");
    let statuses: Vec<Option<u16>> = tg.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(302), Some(204)]);
}

#[tokio::test]
async fn undeliverable_updates_are_dropped_after_the_ttl() {
    let config = fakes::TelegramConfig {
        update_ttl: Duration::from_millis(300),
        webhook_retry_delay: Duration::from_millis(20),
        ..fakes::TelegramConfig::default()
    };
    let tg = fakes::FakeTelegram::start(config).await.expect("start");
    let hook = Receiver::start(|_, _| StatusCode::INTERNAL_SERVER_ERROR).await;
    call_ok(&tg, "setWebhook", json!({"url": hook.url})).await;
    let sent = tg.send_text(43, "lost").expect("user writes");
    tg.wait_until_no_pending_updates(WAIT).await.expect("dropped after the TTL");
    let attempts = hook.received();
    assert!(attempts.len() >= 2, "retried until the TTL: {}", attempts.len());
    assert!(attempts.iter().all(|r| r.body["update_id"] == sent.update_id));
    assert_eq!(call_ok(&tg, "getWebhookInfo", json!({})).await["pending_update_count"], 0);
}
