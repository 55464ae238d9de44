//! Checks of request bodies as YooKassa does them: description ≤ 128 chars, metadata ≤ 16 keys
//! (key ≤ 32 chars, string value ≤ 512 chars), confirmation, and 54-FZ receipts (customer
//! contact, items with description, quantity, amount, vat_code; items adding up to the amount).
//! Pure functions; never touch state.

use serde_json::{Map, Value};

use super::error::YkError;
use super::money::{parse_amount, parse_value};

/// What a valid create-payment request asks for.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub cents: i64,
    pub currency: String,
    pub capture: bool,
    pub description: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub confirmation: Option<Value>,
    /// A 54-FZ receipt was sent (the payment then reports `receipt_registration`).
    pub has_receipt: bool,
}

pub fn payment(body: &Value) -> Result<NewPayment, YkError> {
    let body =
        body.as_object().ok_or_else(|| YkError::invalid("Request body must be a JSON object", "body"))?;
    let (cents, currency) = parse_amount(body.get("amount"), "amount")?;
    let capture = match body.get("capture") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(YkError::invalid("Invalid capture value", "capture")),
    };
    let description = description(body.get("description"), "description")?;
    let metadata = metadata(body.get("metadata"))?;
    let confirmation = confirmation(body.get("confirmation"))?;
    let receipt = body.get("receipt").filter(|r| !r.is_null());
    if let Some(receipt) = receipt {
        check_receipt(receipt, cents, &currency)?;
    }
    Ok(NewPayment {
        has_receipt: receipt.is_some(),
        cents,
        currency,
        capture,
        description,
        metadata,
        confirmation,
    })
}

fn description(value: Option<&Value>, parameter: &str) -> Result<Option<String>, YkError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 128 => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(YkError::invalid(
            format!("Invalid {parameter} value. Maximum length is 128 characters"),
            parameter,
        )),
        Some(_) => Err(YkError::invalid(format!("Invalid {parameter} value"), parameter)),
    }
}

fn metadata(value: Option<&Value>) -> Result<Option<Map<String, Value>>, YkError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(YkError::invalid("Invalid metadata value", "metadata")),
    };
    if map.len() > 16 {
        return Err(YkError::invalid("Invalid metadata value. Maximum number of keys is 16", "metadata"));
    }
    for (key, value) in map {
        if key.chars().count() > 32 {
            return Err(YkError::invalid(
                "Invalid metadata value. Maximum key length is 32 characters",
                "metadata",
            ));
        }
        match value {
            Value::String(s) if s.chars().count() <= 512 => {}
            Value::String(_) => {
                return Err(YkError::invalid(
                    "Invalid metadata value. Maximum value length is 512 characters",
                    "metadata",
                ))
            }
            _ => return Err(YkError::invalid("Invalid metadata value. Values must be strings", "metadata")),
        }
    }
    Ok(Some(map.clone()))
}

fn confirmation(value: Option<&Value>) -> Result<Option<Value>, YkError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "redirect" => {
            let url = value.get("return_url").and_then(Value::as_str).unwrap_or("");
            if url.is_empty() || url.len() > 2048 || url::Url::parse(url).is_err() {
                return Err(YkError::invalid(
                    "Invalid confirmation.return_url value",
                    "confirmation.return_url",
                ));
            }
            Ok(Some(value.clone()))
        }
        "embedded" | "external" | "qr" | "mobile_application" => Ok(Some(value.clone())),
        _ => Err(YkError::invalid("Invalid confirmation.type value", "confirmation.type")),
    }
}

/// A 54-FZ receipt: contact, 1–100 items, each valid, adding up to the payment amount.
pub fn check_receipt(receipt: &Value, cents: i64, currency: &str) -> Result<(), YkError> {
    let contact = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let customer = receipt.get("customer");
    let has_contact = contact(customer.and_then(|c| c.get("email")))
        || contact(customer.and_then(|c| c.get("phone")))
        || contact(receipt.get("email"))
        || contact(receipt.get("phone"));
    if !has_contact {
        return Err(YkError::invalid(
            "Receipt customer contact (email or phone) is required",
            "receipt.customer",
        ));
    }
    let items = receipt.get("items").and_then(Value::as_array).filter(|i| !i.is_empty() && i.len() <= 100);
    let items = items.ok_or_else(|| YkError::invalid("Invalid receipt.items value", "receipt.items"))?;
    let mut total: i64 = 0;
    for (index, item) in items.iter().enumerate() {
        let at = |field: &str| format!("receipt.items[{index}].{field}");
        let text = item.get("description").and_then(Value::as_str).unwrap_or("");
        if text.is_empty() || text.chars().count() > 128 {
            return Err(YkError::invalid(format!("Invalid {}", at("description")), &at("description")));
        }
        let quantity = match item.get("quantity") {
            Some(Value::String(s)) => parse_value(s),
            Some(Value::Number(n)) => parse_value(&n.to_string()),
            _ => None,
        };
        let quantity = quantity
            .filter(|q| *q > 0)
            .ok_or_else(|| YkError::invalid(format!("Invalid {}", at("quantity")), &at("quantity")))?;
        let (price, item_currency) = parse_amount(item.get("amount"), &at("amount"))?;
        if item_currency != currency {
            return Err(YkError::invalid(
                format!("Invalid {}", at("amount.currency")),
                &at("amount.currency"),
            ));
        }
        let vat = item.get("vat_code").and_then(Value::as_i64).filter(|v| (1..=12).contains(v));
        if vat.is_none() {
            return Err(YkError::invalid(format!("Invalid {}", at("vat_code")), &at("vat_code")));
        }
        total = total.saturating_add(price.saturating_mul(quantity) / 100);
    }
    if total != cents {
        return Err(YkError::invalid(
            "The sum of the items in the receipt doesn't match the payment amount",
            "receipt.items",
        ));
    }
    Ok(())
}

/// What a valid create-refund request asks for.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment_id: String,
    pub cents: i64,
    pub currency: String,
    pub description: Option<String>,
}

pub fn refund(body: &Value) -> Result<NewRefund, YkError> {
    let object =
        body.as_object().ok_or_else(|| YkError::invalid("Request body must be a JSON object", "body"))?;
    let payment_id = object.get("payment_id").and_then(Value::as_str).filter(|s| !s.is_empty());
    let payment_id =
        payment_id.ok_or_else(|| YkError::invalid("Parameter payment_id is required", "payment_id"))?;
    let (cents, currency) = parse_amount(object.get("amount"), "amount")?;
    let description = description(object.get("description"), "description")?;
    if let Some(receipt) = object.get("receipt") {
        check_receipt(receipt, cents, &currency)?;
    }
    Ok(NewRefund { payment_id: payment_id.to_string(), cents, currency, description })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"amount": {"value": "100.00", "currency": "RUB"}, "capture": true,
            "confirmation": {"type": "redirect", "return_url": "https://t.me/bot"}})
    }

    #[test]
    fn limits_on_description_and_metadata() {
        assert!(payment(&base()).is_ok());
        let mut long = base();
        long["description"] = json!("x".repeat(129));
        assert_eq!(payment(&long).map(|_| ()).map_err(|e| e.parameter), Err(Some("description".into())));
        let mut many = base();
        many["metadata"] = Value::Object((0..17).map(|i| (format!("k{i}"), json!("v"))).collect());
        assert!(payment(&many).is_err());
        let mut number = base();
        number["metadata"] = json!({"topup_id": 5});
        assert!(payment(&number).is_err());
    }

    #[test]
    fn receipts_must_add_up() {
        let mut with_receipt = base();
        with_receipt["receipt"] = json!({"customer": {"email": "a@b.c"}, "items": [{"description": "Credits",
            "quantity": "2.00", "amount": {"value": "50.00", "currency": "RUB"}, "vat_code": 1}]});
        assert!(payment(&with_receipt).is_ok());
        with_receipt["receipt"]["items"][0]["quantity"] = json!("1.00");
        assert!(payment(&with_receipt).is_err());
        with_receipt["receipt"]["items"][0]["quantity"] = json!("2.00");
        with_receipt["receipt"]["customer"] = json!({});
        assert!(payment(&with_receipt).is_err());
    }
}
