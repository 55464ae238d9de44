//! Amounts as YooKassa writes them: `{"value": "100.00", "currency": "RUB"}`, kept in kopecks.

use serde_json::{json, Value};

use super::error::YkError;

const CURRENCIES: [&str; 7] = ["RUB", "USD", "EUR", "BYN", "KZT", "UAH", "CNY"];

/// Parses `"100"`, `"100.5"` or `"100.00"` into hundredths; at most two decimals.
pub fn parse_value(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.len() > 2 || (!frac.is_empty() && !digits(frac)) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

pub fn format_value(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub fn amount(cents: i64, currency: &str) -> Value {
    json!({"value": format_value(cents), "currency": currency})
}

/// Reads an amount object at `parameter` (e.g. "amount"): positive value, known currency.
pub fn parse_amount(value: Option<&Value>, parameter: &str) -> Result<(i64, String), YkError> {
    let object = value
        .and_then(Value::as_object)
        .ok_or_else(|| YkError::invalid(format!("Parameter {parameter} is required"), parameter))?;
    let raw = match object.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(YkError::invalid(
                format!("Parameter {parameter}.value is required"),
                &format!("{parameter}.value"),
            ))
        }
    };
    let cents = parse_value(&raw).filter(|c| *c > 0).ok_or_else(|| {
        YkError::invalid(format!("Invalid {parameter}.value"), &format!("{parameter}.value"))
    })?;
    let currency = object.get("currency").and_then(Value::as_str).unwrap_or("");
    if !CURRENCIES.contains(&currency) {
        return Err(YkError::invalid(
            format!("Invalid {parameter}.currency"),
            &format!("{parameter}.currency"),
        ));
    }
    Ok((cents, currency.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_parsed_in_kopecks() {
        assert_eq!(parse_value("100.00"), Some(10000));
        assert_eq!(parse_value("100.5"), Some(10050));
        assert_eq!(parse_value("7"), Some(700));
        assert_eq!(parse_value("1.234"), None);
        assert_eq!(parse_value("-1"), None);
        assert_eq!(parse_value("abc"), None);
        assert_eq!(format_value(10050), "100.50");
    }
}
