//! YooKassa: injected API faults (500 with and without effect, 202 processing, timeout).

use std::time::Duration;

use serde_json::json;

use crate::support::*;
use crate::yookassa_api::{assert_yk_error, payment_body, start_yookassa, yk};
use fakes::yookassa::{ApiFault, ApiFaultKind};

#[tokio::test]
async fn faults_500_processed_202_and_timeout() {
    let fake = start_yookassa(None).await;
    fake.inject_fault(ApiFault {
        kind: ApiFaultKind::ServerError,
        count: 1,
        processed: true,
        path: Some("/v3/payments".into()),
        method: None,
    });
    let lost = yk(&fake, "POST", "/payments", Some("k1"), Some(payment_body("10.00", true))).await;
    assert_yk_error(&lost, 500, "internal_server_error", None);
    assert_eq!(fake.payments().len(), 1, "the payment was created although the answer was a 500");
    let retry = yk(&fake, "POST", "/payments", Some("k1"), Some(payment_body("10.00", true))).await;
    assert_eq!(retry.0, 200);
    assert_eq!(retry.1["id"], fake.payments()[0]["id"], "a retry with the same key gets the same payment");
    assert_eq!(fake.payments().len(), 1);

    let (status, _) =
        post_json(&format!("{}/_fake/faults", fake.base_url()), &json!({"kind": "202", "count": 1})).await;
    assert_eq!(status, 200);
    let processing = yk(&fake, "POST", "/payments", Some("k2"), Some(payment_body("10.00", true))).await;
    assert_eq!((processing.0, processing.1["type"].as_str()), (202, Some("processing")));
    assert_eq!(fake.payments().len(), 1);

    fake.inject_fault(ApiFault {
        kind: ApiFaultKind::Timeout,
        count: 1,
        processed: false,
        path: None,
        method: None,
    });
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let timed_out = quick
        .get(format!("{}/payments/{}", fake.api_url(), retry.1["id"].as_str().expect("id")))
        .basic_auth(fake.shop_id(), Some(fake.secret_key()))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
}
