//! A thin YooKassa API v3 client (external-apis.md): Basic auth, `Idempotence-Key` on every
//! POST, retries of outcome-unknown answers (500, 202, timeouts) with the same key and the same
//! body. It decides nothing about money; `payments` does. The secret key is never logged.

mod types;

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::YooKassaConfig;
use crate::secret::Secret;

pub use types::{Amount, CancellationDetails, Contact, CreatePayment, Notification, Payment, Refund};

/// How many times one call is tried when the outcome is unknown.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// YooKassa limits `description` to 128 characters.
const MAX_DESCRIPTION: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum YkError {
    /// YooKassa answered with its error object; the request did nothing (4xx).
    #[error("YooKassa {status} {code}: {description}")]
    Rejected { status: u16, code: String, description: String },
    /// No final answer after every attempt (5xx, 202 or transport): the outcome is unknown,
    /// so the caller repeats with the same key later.
    #[error("YooKassa outcome unknown after {attempts} attempts: {last}")]
    Unknown { attempts: u32, last: String },
    /// A 2xx whose body is not the documented object.
    #[error("YooKassa answered an unreadable body: {0}")]
    Malformed(String),
}

impl YkError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, YkError::Rejected { status: 404, .. })
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    shop_id: String,
    secret: Secret<String>,
    receipt: Option<crate::config::ReceiptConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("shop_id", &self.shop_id).finish()
    }
}

enum Attempt {
    Done(Value),
    Final(YkError),
    Retry(String),
}

impl Client {
    pub fn new(config: &YooKassaConfig, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self {
            http,
            base: config.api_url.as_str().trim_end_matches('/').to_owned(),
            shop_id: config.shop_id.clone(),
            secret: config.secret_key.clone(),
            receipt: config.receipt.clone(),
        })
    }

    /// The exact body for `payment`: the same input always gives the same JSON.
    pub fn payment_body(&self, topup_id: uuid::Uuid, payment: &CreatePayment) -> Value {
        let amount = Amount::rub(payment.amount);
        let description: String = payment.description.chars().take(MAX_DESCRIPTION).collect();
        let mut body = json!({
            "amount": amount,
            "capture": true,
            "confirmation": {"type": "redirect", "return_url": payment.return_url},
            "description": description,
            "metadata": {"topup_id": topup_id.to_string(), "user_id": payment.user_id.to_string()},
        });
        if let (Some(receipt), Some(contact)) = (&self.receipt, &payment.customer) {
            let customer = match contact {
                Contact::Email(email) => json!({"email": email}),
                Contact::Phone(phone) => json!({"phone": phone}),
            };
            let item: String = receipt.item_description.chars().take(MAX_DESCRIPTION).collect();
            body["receipt"] = json!({
                "customer": customer,
                "items": [{
                    "description": item,
                    "quantity": "1.00",
                    "amount": amount,
                    "vat_code": receipt.vat_code,
                    "payment_subject": receipt.payment_subject,
                    "payment_mode": receipt.payment_mode,
                }],
            });
        }
        body
    }

    /// `POST /payments` with `Idempotence-Key` = the topup id: however often it is called for
    /// one topup, YooKassa holds one payment.
    pub async fn create_payment(
        &self,
        topup_id: uuid::Uuid,
        payment: &CreatePayment,
    ) -> Result<Payment, YkError> {
        let body = self.payment_body(topup_id, payment);
        let key = topup_id.to_string();
        let answer = self.call(reqwest::Method::POST, "/payments", Some((&key, &body))).await?;
        Payment::from_json(answer).map_err(|e| YkError::Malformed(e.to_string()))
    }

    /// `GET /payments/{id}`: the authority for crediting.
    pub async fn get_payment(&self, id: &str) -> Result<Payment, YkError> {
        Payment::from_json(self.get_raw("payments", id).await?).map_err(|e| YkError::Malformed(e.to_string()))
    }

    /// `POST /refunds` with `Idempotence-Key` = our refund id: repeating it never refunds twice.
    pub async fn create_refund(
        &self,
        refund_id: uuid::Uuid,
        payment_id: &str,
        amount: crate::domain::Kopecks,
    ) -> Result<(Refund, Value), YkError> {
        let body = json!({"amount": Amount::rub(amount), "payment_id": payment_id});
        let key = refund_id.to_string();
        let answer = self.call(reqwest::Method::POST, "/refunds", Some((&key, &body))).await?;
        Ok((parse(answer.clone())?, answer))
    }

    /// `GET /refunds/{id}`.
    pub async fn get_refund(&self, id: &str) -> Result<Refund, YkError> {
        parse(self.get_raw("refunds", id).await?)
    }

    /// `GET /refunds?payment_id=…`: every refund of a payment (an idempotence key is forgotten
    /// after 24 h, so an old refund whose answer was lost is looked up here, never created again).
    pub async fn refunds_of(&self, payment_id: &str) -> Result<Vec<Refund>, YkError> {
        let valid = !payment_id.is_empty()
            && payment_id.len() <= 64
            && payment_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(YkError::Rejected {
                status: 404,
                code: "not_found".into(),
                description: "not a YooKassa object id".into(),
            });
        }
        let answer =
            self.call(reqwest::Method::GET, &format!("/refunds?payment_id={payment_id}"), None).await?;
        let items = answer.get("items").cloned().unwrap_or_else(|| json!([]));
        parse(items)
    }

    /// `GET /{collection}/{id}` as raw JSON (kept in `payment_events`).
    pub async fn get_raw(&self, collection: &str, id: &str) -> Result<Value, YkError> {
        let valid =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(YkError::Rejected {
                status: 404,
                code: "not_found".into(),
                description: "not a YooKassa object id".into(),
            });
        }
        self.call(reqwest::Method::GET, &format!("/{collection}/{id}"), None).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        post: Option<(&str, &Value)>,
    ) -> Result<Value, YkError> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.attempt(method.clone(), path, post).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Final(e) => return Err(e),
                Attempt::Retry(why) => {
                    tracing::warn!(path, attempt, why = %why, "YooKassa outcome unknown; retrying, same key");
                    last = why;
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(YkError::Unknown { attempts: ATTEMPTS, last })
    }

    async fn attempt(&self, method: reqwest::Method, path: &str, post: Option<(&str, &Value)>) -> Attempt {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.shop_id, Some(self.secret.expose()));
        if let Some((key, body)) = post {
            request = request.header("Idempotence-Key", key).json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Retry(format!("transport: {e}")),
        };
        let status = response.status().as_u16();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(e) if status >= 500 => return Attempt::Retry(format!("{status}, unreadable body: {e}")),
            Err(e) => return Attempt::Final(YkError::Malformed(format!("{status}: {e}"))),
        };
        match status {
            202 => Attempt::Retry("202 processing".into()),
            200..=299 => Attempt::Done(body),
            429 | 500..=599 => Attempt::Retry(format!("{status}")),
            _ => {
                let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                Attempt::Final(YkError::Rejected {
                    status,
                    code: text("code"),
                    description: text("description"),
                })
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, YkError> {
    serde_json::from_value(value).map_err(|e| YkError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(receipt: bool) -> Client {
        let config = YooKassaConfig {
            shop_id: "1".into(),
            secret_key: Secret::new("s".into()),
            api_url: url::Url::parse("http://127.0.0.1:1/v3/").expect("url"),
            return_url: None,
            trusted_networks: vec![],
            trusted_proxies: vec![],
            receipt: receipt.then(|| crate::config::ReceiptConfig {
                item_description: "Credits".into(),
                vat_code: 1,
                payment_subject: "service".into(),
                payment_mode: "full_payment".into(),
            }),
        };
        Client::new(&config, Duration::from_secs(1)).expect("client")
    }

    fn create(customer: Option<Contact>) -> CreatePayment {
        CreatePayment {
            amount: crate::domain::Kopecks::from_kopecks(10_050).expect("kopecks"),
            description: "x".repeat(200),
            user_id: 42,
            return_url: "https://t.me/bot".into(),
            customer,
        }
    }

    #[test]
    fn the_body_is_exact_and_stable() {
        let id = uuid::Uuid::nil();
        let body = client(false).payment_body(id, &create(Some(Contact::Email("a@b.c".into()))));
        assert_eq!(body["amount"], json!({"value": "100.50", "currency": "RUB"}));
        assert_eq!(body["capture"], true);
        assert_eq!(body["description"].as_str().map(|d| d.chars().count()), Some(128));
        assert_eq!(body["metadata"], json!({"topup_id": id.to_string(), "user_id": "42"}));
        assert!(body.get("receipt").is_none(), "receipts disabled");
        let c = client(true);
        let with = c.payment_body(id, &create(Some(Contact::Phone("79000000000".into()))));
        assert_eq!(with["receipt"]["customer"], json!({"phone": "79000000000"}));
        assert_eq!(with["receipt"]["items"][0]["amount"]["value"], "100.50");
        assert_eq!(with, c.payment_body(id, &create(Some(Contact::Phone("79000000000".into())))));
        assert!(c.payment_body(id, &create(None)).get("receipt").is_none(), "no contact, no receipt");
    }

    #[test]
    fn unknown_statuses_and_fields_are_tolerated() {
        let p: Payment = serde_json::from_value(json!({
            "id": "p1", "status": "something_new", "amount": {"value": "1.00", "currency": "RUB"},
            "novel": {"x": 1}
        }))
        .expect("lenient");
        assert_eq!(p.charge_status(), None);
        assert_eq!(p.amount.minor(), Ok(100));
    }
}
