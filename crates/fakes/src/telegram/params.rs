//! Parameters of a Bot API call, read the way Telegram reads them: from the query string and from
//! a JSON, form-urlencoded or multipart body. In form and multipart bodies every value is a
//! string (objects such as `reply_markup` are JSON text); accessors accept both spellings.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use super::error::TgError;

/// A file part of a multipart request.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// All parameters of one call.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, Value>,
    uploads: HashMap<String, Upload>,
}

impl Params {
    /// Reads query, then body. The body format follows `Content-Type`, as Telegram does.
    pub async fn read(request: Request) -> Result<Self, TgError> {
        let mut params = Params::default();
        if let Some(query) = request.uri().query() {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
            params.values.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
        }
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            params.read_multipart(request).await?;
            return Ok(params);
        }
        let body = Bytes::from_request(request, &()).await.map_err(|_| TgError::too_large())?;
        if body.is_empty() {
            return Ok(params);
        }
        if content_type.starts_with("application/json") {
            let value: Value =
                serde_json::from_slice(&body).map_err(|_| TgError::bad_request("can't parse JSON object"))?;
            let Value::Object(map) = value else {
                return Err(TgError::bad_request("can't parse JSON object"));
            };
            params.values.extend(map);
        } else {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|_| TgError::bad_request("can't parse request parameters"))?;
            params.values.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
        }
        Ok(params)
    }

    async fn read_multipart(&mut self, request: Request) -> Result<(), TgError> {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|_| TgError::bad_request("can't parse multipart/form-data"))?;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => return Ok(()),
                Err(error) if error.status().as_u16() == 413 => return Err(TgError::too_large()),
                Err(_) => return Err(TgError::bad_request("can't parse multipart/form-data")),
            };
            let Some(name) = field.name().map(str::to_string) else {
                continue;
            };
            let file_name = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.map_err(|error| {
                if error.status().as_u16() == 413 {
                    TgError::too_large()
                } else {
                    TgError::bad_request("can't parse multipart/form-data")
                }
            })?;
            if file_name.is_some() {
                self.uploads.insert(name, Upload { file_name, content_type, bytes });
            } else {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.values.insert(name, Value::String(text));
            }
        }
    }

    #[cfg(test)]
    pub fn from_json(value: Value) -> Self {
        let mut params = Params::default();
        if let Value::Object(map) = value {
            params.values.extend(map);
        }
        params
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.uploads.contains_key(name)
    }

    /// A string parameter; numbers are accepted and printed, as Telegram does.
    pub fn str(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    pub fn i64(&self, name: &str) -> Result<Option<i64>, TgError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(name)),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid(name)),
            Some(_) => Err(invalid(name)),
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        match self.values.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
            Some(Value::String(s)) => matches!(s.as_str(), "true" | "True" | "1"),
            _ => false,
        }
    }

    /// A JSON parameter: an object/array in a JSON body, or JSON text in any body.
    pub fn json(&self, name: &str) -> Result<Option<Value>, TgError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|_| invalid(name)),
            Some(other) => Ok(Some(other.clone())),
        }
    }

    pub fn upload(&self, name: &str) -> Option<&Upload> {
        self.uploads.get(name)
    }
}

fn invalid(name: &str) -> TgError {
    TgError::bad_request(&format!("wrong parameter {name} in request"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_json_text_are_read_in_both_spellings() {
        let p = Params::from_json(json!({"a": 5, "b": "6", "m": "{\"x\":1}", "n": {"x": 2}, "t": "true"}));
        assert_eq!(p.i64("a"), Ok(Some(5)));
        assert_eq!(p.i64("b"), Ok(Some(6)));
        assert_eq!(p.json("m"), Ok(Some(json!({"x": 1}))));
        assert_eq!(p.json("n"), Ok(Some(json!({"x": 2}))));
        assert!(p.bool("t"));
        assert!(p.i64("m").is_err());
    }
}
