//! The control endpoints the README documents and other tests do not reach, over HTTP.

use serde_json::json;

use crate::support::*;
use crate::yookassa_api::{payment_body, start_yookassa, yk};

async fn delete(url: &str) -> u16 {
    client().delete(url).send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn telegram_control_endpoints() {
    let tg = start_telegram().await;
    let base = format!("{}/_fake", tg.base_url());
    tg.send_text(1, "hi").expect("user writes");
    let fault = json!({"method": "*", "count": 5, "kind": "500"});
    assert_eq!(post_json(&format!("{base}/faults"), &fault).await.0, 200);
    assert_eq!(get_json(&format!("{base}/faults")).await.1[0]["count"], 5);
    assert_eq!(delete(&format!("{base}/faults")).await, 200);
    assert_eq!(get_json(&format!("{base}/faults")).await.1, json!([]));
    assert_eq!(post_json(&format!("{base}/pace"), &json!({"strict": true})).await.1["strict"], true);
    let (_, pending) = get_json(&format!("{base}/updates")).await;
    assert_eq!(pending[0]["message"]["text"], "hi");
    let (_, webhook) = get_json(&format!("{base}/webhook")).await;
    assert_eq!(
        (webhook["info"]["url"].as_str(), webhook["deliveries"].as_array().map(Vec::len)),
        (Some(""), Some(0))
    );
    call_ok(&tg, "setMyCommands", json!({"commands": [{"command": "start", "description": "Start"}]})).await;
    assert_eq!(get_json(&format!("{base}/commands")).await.1["default|"][0]["command"], "start");
    let bad =
        call(&tg, "setMyCommands", json!({"commands": [{"command": "Start!", "description": "x"}]})).await;
    assert_error(&bad, 400, "Bad Request: BOT_COMMAND_INVALID");
    let (status, document) =
        post_json(&format!("{base}/users/1/document"), &json!({"file_name": "a.png"})).await;
    assert_eq!(status, 200, "{document}");
    let (status, _) =
        post_json(&format!("{base}/users/1/callback"), &json!({"message_id": 99, "data": "x"})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn gemini_control_endpoints() {
    let fake = fakes::FakeGemini::start(fakes::GeminiConfig { small: true, ..Default::default() })
        .await
        .expect("start");
    let base = format!("{}/_fake", fake.base_url());
    assert_eq!(post_json(&format!("{base}/behaviours"), &json!({"behaviour": "nonsense"})).await.0, 400);
    assert_eq!(
        post_json(&format!("{base}/behaviours"), &json!({"behaviour": "503", "count": 2})).await.1["queued"],
        2
    );
    assert_eq!(get_json(&format!("{base}/behaviours")).await.1, json!(["503", "503"]));
    assert_eq!(delete(&format!("{base}/behaviours")).await, 200);
    assert_eq!(post_json(&format!("{base}/latency"), &json!({"ms": 0})).await.0, 200);
    let url = format!(
        "{}/v1beta/models/gemini-3.1-flash-lite-image:generateContent?key={}",
        fake.base_url(),
        fake.api_key()
    );
    let (status, _) = post_json(&url, &json!({"contents": [{"parts": [{"text": "hello"}]}]})).await;
    assert_eq!(status, 200);
    let (_, requests) = get_json(&format!("{base}/requests")).await;
    assert_eq!((requests[0]["prompt"].as_str(), requests[0]["status"].as_u64()), (Some("hello"), Some(200)));
    assert_eq!(delete(&format!("{base}/requests")).await, 200);
    assert_eq!(get_json(&format!("{base}/requests")).await.1, json!([]));
}

#[tokio::test]
async fn yookassa_control_endpoints() {
    let fake = start_yookassa(None).await;
    let base = format!("{}/_fake", fake.base_url());
    let created = yk(&fake, "POST", "/payments", Some("k"), Some(payment_body("10.00", true))).await.1;
    let id = created["id"].as_str().expect("id");
    assert_eq!(get_json(&format!("{base}/payments")).await.1[0]["id"], id);
    let (status, paid) = post_json(&format!("{base}/payments/{id}/succeed"), &json!({})).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("succeeded")));
    assert_eq!(post_json(&format!("{base}/payments/{id}/succeed"), &json!({})).await.0, 409, "already final");
    assert_eq!(post_json(&format!("{base}/payments/nope/succeed"), &json!({})).await.0, 404);
    let (_, requests) = get_json(&format!("{base}/requests")).await;
    assert_eq!(requests[0]["idempotence_key"], "k");
    assert_eq!(requests[0]["status"], 200);
    let (_, notifications) = get_json(&format!("{base}/notifications")).await;
    let attempts = notifications["attempts"].as_array().expect("attempts");
    assert!(attempts.iter().any(|a| a["event"] == "payment.succeeded"));
    let mode = json!({"duplicate": 2, "delay_ms": 10});
    assert_eq!(post_json(&format!("{base}/notifications/mode"), &mode).await.1["duplicate"], 2);
    assert_eq!(get_json(&format!("{base}/notifications/mode")).await.1["delay_ms"], 10);
    let fault = json!({"kind": "timeout", "count": 1});
    assert_eq!(post_json(&format!("{base}/faults"), &fault).await.0, 200);
    assert_eq!(get_json(&format!("{base}/faults")).await.1[0]["kind"], "timeout");
    assert_eq!(delete(&format!("{base}/faults")).await, 200);
    let refund = post_json(&format!("{base}/payments/{id}/refund"), &json!({})).await;
    assert_eq!(refund.1["amount"]["value"], "10.00", "the whole rest by default");
    assert_eq!(post_json(&format!("{base}/payments/{id}/refund"), &json!({})).await.0, 409, "nothing left");
}
