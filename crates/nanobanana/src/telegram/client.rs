//! A thin Bot API client: `call(method, params)` with Telegram's envelope and errors.
//! The token lives in the request URL, so errors are stripped of their URL before they can
//! reach a log.

use std::time::Duration;

use serde_json::Value;

use crate::config::TelegramConfig;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Telegram answered `ok: false`.
    #[error("Telegram refused {method}: {code} {description}")]
    Refused { method: String, code: i64, description: String, retry_after: Option<u64> },
    /// No answer we could read: connection, timeout, or a body that is not Telegram's envelope.
    #[error("Telegram unreachable for {method}: {reason}")]
    Transport { method: String, reason: String },
}

impl ApiError {
    pub fn code(&self) -> Option<i64> {
        match self {
            ApiError::Refused { code, .. } => Some(*code),
            ApiError::Transport { .. } => None,
        }
    }
}

/// `Debug` shows no URL: both carry the token.
#[derive(Debug, Clone)]
pub struct BotApi {
    http: reqwest::Client,
    /// `{api_url}/bot{token}/`: secret, never logged.
    base: Secret<String>,
    /// `{api_url}/file/bot{token}/`, where `getFile` paths are downloaded from: secret too.
    files: Secret<String>,
}

/// Telegram serves bots files up to 20 MB; anything larger is refused before reading it.
pub const MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;

impl BotApi {
    pub fn new(config: &TelegramConfig) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(proxy) = &config.proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.expose().as_str())?);
        }
        let api = config.api_url.as_str().trim_end_matches('/');
        let token = config.bot_token.expose();
        Ok(Self {
            http: builder.build()?,
            base: Secret::new(format!("{api}/bot{token}/")),
            files: Secret::new(format!("{api}/file/bot{token}/")),
        })
    }

    /// Calls `method` with JSON `params`; the `result` on success.
    pub async fn call(&self, method: &str, params: &Value) -> Result<Value, ApiError> {
        let request = self.http.post(format!("{}{method}", self.base.expose())).json(params);
        self.send(method, request).await
    }

    /// Calls `method` as multipart with `file` uploaded as the parameter `field`; the other
    /// `params` go as form fields (strings as they are, anything else as JSON text).
    pub async fn call_with_file(
        &self,
        method: &str,
        params: &Value,
        file: Upload,
    ) -> Result<Value, ApiError> {
        let mut form = reqwest::multipart::Form::new();
        if let Some(fields) = params.as_object() {
            for (name, value) in fields.iter().filter(|(name, _)| *name != file.field) {
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                form = form.text(name.clone(), text);
            }
        }
        let part = reqwest::multipart::Part::bytes(file.bytes).file_name(file.file_name);
        let part = part.mime_str(file.mime_type).map_err(|e| ApiError::Transport {
            method: method.to_owned(),
            reason: e.without_url().to_string(),
        })?;
        let form = form.part(file.field.to_owned(), part);
        let request = self.http.post(format!("{}{method}", self.base.expose())).multipart(form);
        self.send(method, request).await
    }

    /// Downloads a file the bot received: `getFile`, then its `file_path`. Returns the bytes and
    /// the path (whose extension hints at the format).
    pub async fn download(&self, file_id: &str) -> Result<(Vec<u8>, String), ApiError> {
        let file = self.call("getFile", &serde_json::json!({ "file_id": file_id })).await?;
        let failed = |reason: String| ApiError::Transport { method: "download".to_owned(), reason };
        let path =
            file.get("file_path").and_then(Value::as_str).ok_or_else(|| failed("no file_path".to_owned()))?;
        if file.get("file_size").and_then(Value::as_u64).is_some_and(|size| size > MAX_DOWNLOAD) {
            return Err(failed(format!("file over {MAX_DOWNLOAD} bytes")));
        }
        let response = self
            .http
            .get(format!("{}{path}", self.files.expose()))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| failed(e.without_url().to_string()))?;
        if response.content_length().is_some_and(|size| size > MAX_DOWNLOAD) {
            return Err(failed(format!("file over {MAX_DOWNLOAD} bytes")));
        }
        let bytes = response.bytes().await.map_err(|e| failed(e.without_url().to_string()))?;
        if bytes.len() as u64 > MAX_DOWNLOAD {
            return Err(failed(format!("file over {MAX_DOWNLOAD} bytes")));
        }
        Ok((bytes.to_vec(), path.to_owned()))
    }

    async fn send(&self, method: &str, request: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let transport = |e: reqwest::Error| ApiError::Transport {
            method: method.to_owned(),
            reason: e.without_url().to_string(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(transport)?;
        if body.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(body.get("result").cloned().unwrap_or(Value::Null));
        }
        Err(ApiError::Refused {
            method: method.to_owned(),
            code: body.get("error_code").and_then(Value::as_i64).unwrap_or(i64::from(status.as_u16())),
            description: body.get("description").and_then(Value::as_str).unwrap_or("").to_owned(),
            retry_after: body.pointer("/parameters/retry_after").and_then(Value::as_u64),
        })
    }
}

/// A file to upload with a call.
#[derive(Debug)]
pub struct Upload {
    /// The parameter that carries it: `photo`, `document`.
    pub field: &'static str,
    pub file_name: String,
    pub mime_type: &'static str,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TelegramMode;

    #[test]
    fn debug_shows_neither_the_token_nor_the_proxy_password() {
        let config = TelegramConfig {
            bot_token: Secret::new("123456:TOKEN-never-printed".to_owned()),
            webhook_secret: None,
            mode: TelegramMode::Webhook,
            public_base_url: None,
            api_url: url::Url::parse("https://api.telegram.org").expect("url"),
            proxy: Some(Secret::new(url::Url::parse("http://user:hunter2pass@proxy:3128").expect("url"))),
            trusted_networks: Vec::new(),
            trusted_proxies: Vec::new(),
        };
        let api = BotApi::new(&config).expect("client");
        let printed = format!("{api:?} {config:?}");
        assert!(!printed.contains("TOKEN-never-printed"), "{printed}");
        assert!(!printed.contains("hunter2pass"), "{printed}");
    }
}
