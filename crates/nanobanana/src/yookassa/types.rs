//! YooKassa's objects as we read and send them. Reading is lenient: unknown fields are
//! ignored and the status is an open string, so a new field or status never breaks parsing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::ChargeStatus;
use crate::domain::{Kopecks, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub value: String,
    pub currency: String,
}

impl Amount {
    pub fn rub(kopecks: Kopecks) -> Self {
        Self { value: kopecks.to_string(), currency: "RUB".to_owned() }
    }

    /// The value in the currency's hundredths (kopecks for RUB).
    pub fn minor(&self) -> Result<i64, MoneyError> {
        Kopecks::parse_rubles(&self.value).map(Kopecks::get)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Confirmation {
    #[serde(default)]
    pub confirmation_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CancellationDetails {
    #[serde(default)]
    pub party: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A payment as `POST /payments` or `GET /payments/{id}` answered it.
#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    pub id: String,
    pub status: String,
    pub amount: Amount,
    #[serde(default)]
    pub confirmation: Option<Confirmation>,
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub cancellation_details: Option<CancellationDetails>,
    /// The whole answer as received, kept in `payment_events` and on the charge row.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

impl Payment {
    /// Reads an API answer, keeping it whole in `raw`.
    pub fn from_json(raw: serde_json::Value) -> Result<Self, serde_json::Error> {
        let mut payment: Payment = serde_json::from_value(raw.clone())?;
        payment.raw = raw;
        Ok(payment)
    }

    /// The provider's status, or `None` for one we do not know (left alone, logged).
    pub fn charge_status(&self) -> Option<ChargeStatus> {
        match self.status.as_str() {
            "pending" => Some(ChargeStatus::Pending),
            "waiting_for_capture" => Some(ChargeStatus::WaitingForCapture),
            "succeeded" => Some(ChargeStatus::Succeeded),
            "canceled" => Some(ChargeStatus::Canceled),
            _ => None,
        }
    }

    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(serde_json::Value::as_str)
    }

    pub fn confirmation_url(&self) -> Option<&str> {
        self.confirmation.as_ref().and_then(|c| c.confirmation_url.as_deref())
    }

    pub fn cancel_reason(&self) -> &str {
        self.cancellation_details.as_ref().and_then(|d| d.reason.as_deref()).unwrap_or("unknown")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub status: String,
    pub payment_id: String,
    pub amount: Amount,
}

/// A notification body: `{"type":"notification","event":…,"object":{…}}`. Only the event and
/// the object's id are read; the object itself is never trusted.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    pub event: String,
    pub object: NotificationObject,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotificationObject {
    pub id: String,
}

/// The customer's contact for a 54-FZ receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email(String),
    Phone(String),
}

/// What we ask YooKassa to create. The body is a pure function of this, so a retry with the
/// same Idempotence-Key sends the same body.
#[derive(Debug, Clone)]
pub struct CreatePayment {
    pub amount: Kopecks,
    pub description: String,
    pub user_id: i64,
    pub return_url: String,
    pub customer: Option<Contact>,
}
