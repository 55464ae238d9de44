//! YooKassa: auth, Idempotence-Key rules, field limits, statuses, refunds and API faults.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;
use fakes::{FakeYooKassa, YooKassaConfig};

pub async fn start_yookassa(notification_url: Option<String>) -> FakeYooKassa {
    let config = YooKassaConfig {
        notification_url,
        source_address: Some("127.0.0.2".parse().expect("ip")),
        retry_delays: vec![Duration::from_millis(20)],
        ..YooKassaConfig::default()
    };
    FakeYooKassa::start(config).await.expect("start fake yookassa")
}

pub async fn yk(
    yk: &FakeYooKassa,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", yk.api_url());
    let mut request = match method {
        "GET" => client().get(url),
        _ => client().post(url),
    }
    .basic_auth(yk.shop_id(), Some(yk.secret_key()));
    if let Some(key) = key {
        request = request.header("Idempotence-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub fn payment_body(value: &str, capture: bool) -> Value {
    json!({"amount": {"value": value, "currency": "RUB"}, "capture": capture, "description": "100 credits",
        "confirmation": {"type": "redirect", "return_url": "https://t.me/nanobanana_test_bot"},
        "metadata": {"topup_id": "t-1"}})
}

pub fn assert_yk_error(answer: &(u16, Value), status: u16, code: &str, parameter: Option<&str>) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["type"], "error");
    assert_eq!(answer.1["code"], code);
    assert!(answer.1["id"].is_string() && answer.1["description"].is_string());
    if let Some(parameter) = parameter {
        assert_eq!(answer.1["parameter"], parameter);
    }
}

#[tokio::test]
async fn basic_auth_and_idempotence_key_are_required() {
    let fake = start_yookassa(None).await;
    let anonymous = client()
        .post(format!("{}/payments", fake.api_url()))
        .header("Idempotence-Key", "k")
        .json(&payment_body("10.00", true))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body["code"], "invalid_credentials");
    let missing = yk(&fake, "POST", "/payments", None, Some(payment_body("10.00", true))).await;
    assert_yk_error(&missing, 400, "invalid_request", Some("Idempotence-Key"));
    let long = yk(&fake, "POST", "/payments", Some(&"k".repeat(65)), Some(payment_body("10.00", true))).await;
    assert_yk_error(&long, 400, "invalid_request", Some("Idempotence-Key"));
    assert!(fake.payments().is_empty());
}

#[tokio::test]
async fn same_key_same_body_same_answer_other_body_400() {
    let fake = start_yookassa(None).await;
    let first = yk(&fake, "POST", "/payments", Some("topup-1"), Some(payment_body("100.00", true))).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["status"], "pending");
    assert_eq!(first.1["paid"], false);
    assert_eq!(first.1["amount"], json!({"value": "100.00", "currency": "RUB"}));
    let url = first.1["confirmation"]["confirmation_url"].as_str().expect("url");
    assert!(url.starts_with(&fake.base_url()));
    let again = yk(&fake, "POST", "/payments", Some("topup-1"), Some(payment_body("100.00", true))).await;
    assert_eq!(again, first);
    let other = yk(&fake, "POST", "/payments", Some("topup-1"), Some(payment_body("200.00", true))).await;
    assert_yk_error(&other, 400, "invalid_request", Some("Idempotence-Key"));

    let body = payment_body("50.00", true);
    let (a, b) = tokio::join!(
        yk(&fake, "POST", "/payments", Some("concurrent"), Some(body.clone())),
        yk(&fake, "POST", "/payments", Some("concurrent"), Some(body.clone()))
    );
    assert_eq!(a.1["id"], b.1["id"], "concurrent requests with one key create one payment");
    assert_eq!(fake.payments().len(), 2);
    let got =
        yk(&fake, "GET", &format!("/payments/{}", first.1["id"].as_str().expect("id")), None, None).await;
    assert_eq!(got.1["id"], first.1["id"]);
    let unknown = yk(&fake, "GET", "/payments/nope", None, None).await;
    assert_yk_error(&unknown, 404, "not_found", None);
}

#[tokio::test]
async fn field_limits_and_receipts_are_enforced() {
    let fake = start_yookassa(None).await;
    let mut body = payment_body("10.00", true);
    body["description"] = json!("d".repeat(129));
    assert_yk_error(
        &yk(&fake, "POST", "/payments", Some("a"), Some(body)).await,
        400,
        "invalid_request",
        Some("description"),
    );
    let mut body = payment_body("10.00", true);
    body["metadata"]["k".repeat(33)] = json!("v");
    assert_yk_error(
        &yk(&fake, "POST", "/payments", Some("b"), Some(body)).await,
        400,
        "invalid_request",
        Some("metadata"),
    );
    let mut body = payment_body("10.00", true);
    body["amount"]["value"] = json!("10.001");
    assert_yk_error(
        &yk(&fake, "POST", "/payments", Some("c"), Some(body)).await,
        400,
        "invalid_request",
        Some("amount.value"),
    );
    let mut body = payment_body("10.00", true);
    body["receipt"] = json!({"customer": {"email": "user@example.com"}, "items": [{"description": "Credits",
        "quantity": "1.00", "amount": {"value": "9.00", "currency": "RUB"}, "vat_code": 1}]});
    assert_yk_error(
        &yk(&fake, "POST", "/payments", Some("d"), Some(body.clone())).await,
        400,
        "invalid_request",
        Some("receipt.items"),
    );
    body["receipt"]["items"][0]["amount"]["value"] = json!("10.00");
    let with_receipt = yk(&fake, "POST", "/payments", Some("e"), Some(body)).await;
    assert_eq!(with_receipt.0, 200);
    assert_eq!(with_receipt.1["receipt_registration"], "pending");
    let id = with_receipt.1["id"].as_str().expect("id");
    assert_eq!(fake.pay(id).expect("pay")["receipt_registration"], "succeeded");
}

#[tokio::test]
async fn statuses_cancellation_and_refunds() {
    let fake = start_yookassa(None).await;
    let created = yk(&fake, "POST", "/payments", Some("p1"), Some(payment_body("100.00", true))).await.1;
    let id = created["id"].as_str().expect("id").to_string();
    let early = yk(
        &fake,
        "POST",
        "/refunds",
        Some("r0"),
        Some(json!({"payment_id": id, "amount": {"value": "10.00", "currency": "RUB"}})),
    )
    .await;
    assert_yk_error(&early, 400, "invalid_request", Some("payment_id"));
    let paid = fake.pay(&id).expect("pay");
    assert_eq!((paid["status"].as_str(), paid["paid"].as_bool()), (Some("succeeded"), Some(true)));
    assert!(fake.pay(&id).is_err(), "succeeded is final");
    assert!(fake.cancel(&id, "insufficient_funds").is_err(), "succeeded is final");

    let refund = yk(
        &fake,
        "POST",
        "/refunds",
        Some("r1"),
        Some(json!({"payment_id": id, "amount": {"value": "40.00", "currency": "RUB"}})),
    )
    .await;
    assert_eq!(refund.0, 200, "{}", refund.1);
    assert_eq!(refund.1["status"], "succeeded");
    let over = yk(
        &fake,
        "POST",
        "/refunds",
        Some("r2"),
        Some(json!({"payment_id": id, "amount": {"value": "60.01", "currency": "RUB"}})),
    )
    .await;
    assert_yk_error(&over, 400, "invalid_request", Some("amount.value"));
    let got =
        yk(&fake, "GET", &format!("/refunds/{}", refund.1["id"].as_str().expect("id")), None, None).await;
    assert_eq!(got.1, refund.1);
    assert_eq!(fake.payment(&id).expect("payment")["refunded_amount"]["value"], "40.00");

    let hold = yk(&fake, "POST", "/payments", Some("p2"), Some(payment_body("10.00", false))).await.1;
    let hold_id = hold["id"].as_str().expect("id");
    assert_eq!(fake.pay(hold_id).expect("pay")["status"], "waiting_for_capture");
    let captured =
        yk(&fake, "POST", &format!("/payments/{hold_id}/capture"), Some("c1"), Some(json!({}))).await;
    assert_eq!(captured.1["status"], "succeeded");

    let third = yk(&fake, "POST", "/payments", Some("p3"), Some(payment_body("10.00", true))).await.1;
    let (status, canceled) = post_json(
        &format!("{}/_fake/payments/{}/cancel", fake.base_url(), third["id"].as_str().expect("id")),
        &json!({"reason": "fraud_suspected"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_details"], json!({"party": "yoo_money", "reason": "fraud_suspected"}));
}

#[tokio::test]
async fn waiting_for_a_payment_returns_it_once_created() {
    let fake = std::sync::Arc::new(start_yookassa(None).await);
    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move {
            fake.wait_for_payment(Duration::from_secs(10), |p| p["description"] == "waited for").await
        })
    };
    let mut body = payment_body("10.00", true);
    body["description"] = json!("waited for");
    let created = yk(&fake, "POST", "/payments", Some("wait-1"), Some(body)).await;
    let found = waiter.await.expect("task").expect("found");
    assert_eq!(found["id"], created.1["id"]);
    let missing = fake.wait_for_payment(Duration::from_millis(50), |p| p["description"] == "never").await;
    assert!(missing.is_err());
}

#[tokio::test]
async fn the_merchant_cancels_only_a_payment_waiting_for_capture() {
    let fake = start_yookassa(None).await;
    let pending = yk(&fake, "POST", "/payments", Some("c-1"), Some(payment_body("10.00", true))).await;
    let id = pending.1["id"].as_str().expect("id").to_owned();
    let refused = yk(&fake, "POST", &format!("/payments/{id}/cancel"), Some("c-2"), Some(json!({}))).await;
    assert_yk_error(&refused, 400, "invalid_request", Some("payment_id"));
    let held = yk(&fake, "POST", "/payments", Some("c-3"), Some(payment_body("10.00", false))).await;
    let id = held.1["id"].as_str().expect("id").to_owned();
    fake.pay(&id).expect("paid, waiting for capture");
    let canceled = yk(&fake, "POST", &format!("/payments/{id}/cancel"), Some("c-4"), Some(json!({}))).await;
    assert_eq!(canceled.0, 200, "{:?}", canceled.1);
    assert_eq!(canceled.1["status"], "canceled");
    assert_eq!(canceled.1["cancellation_details"]["reason"], "canceled_by_merchant");
}

#[tokio::test]
async fn a_refund_can_stay_pending_then_succeed_or_be_canceled() {
    let fake = start_yookassa(None).await;
    let created = yk(&fake, "POST", "/payments", Some("r-1"), Some(payment_body("100.00", true))).await;
    let id = created.1["id"].as_str().expect("id").to_owned();
    fake.pay(&id).expect("paid");
    fake.hold_next_refunds(2);
    let refund = |key: &'static str, value: &'static str| {
        let body = json!({"payment_id": id, "amount": {"value": value, "currency": "RUB"}});
        yk(&fake, "POST", "/refunds", Some(key), Some(body))
    };
    let first = refund("r-2", "60.00").await;
    assert_eq!((first.0, first.1["status"].as_str()), (200, Some("pending")));
    let second = refund("r-3", "40.00").await;
    assert_eq!(second.1["status"], "pending");
    let over = refund("r-4", "1.00").await;
    assert_yk_error(&over, 400, "invalid_request", Some("payment_id"));
    let canceled =
        fake.finish_refund(second.1["id"].as_str().expect("id"), false, "general_decline").expect("cancel");
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_details"]["reason"], "general_decline");
    let again = refund("r-5", "40.00").await;
    assert_eq!(again.1["status"], "succeeded", "the canceled amount is refundable again");
    let done = fake.finish_refund(first.1["id"].as_str().expect("id"), true, "").expect("succeed");
    assert_eq!(done["status"], "succeeded");
    assert!(fake.finish_refund(first.1["id"].as_str().expect("id"), true, "").is_err(), "final");
}
