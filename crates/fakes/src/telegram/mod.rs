//! The fake Telegram Bot API. [`FakeTelegram::start`] runs it on a port (0 allowed); the
//! handle acts as users, injects faults and reads what the bot did. See the crate README for
//! the HTTP control API and the list of supported methods.

use std::future::ready;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use crate::common::image_info::sniff;
use crate::common::server::{RunningServer, Shutdown};
use crate::common::wait::{wait_until, Recheck, WaitTimeout};

mod config;
mod control;
mod delivery;
pub mod entities;
pub mod error;
pub mod faults;
pub mod markup;
mod methods;
pub mod params;
pub mod records;
mod routes;
pub mod state;
pub mod users;

pub use config::TelegramConfig;
pub use faults::{Fault, FaultKind};
pub use state::{BotMessage, ChatEvent, ChatRecord, DeliveryRecord, FileKind, FileRecord, PaymentRecord};
pub use users::{ActionError, ImageSpec, Sent, UserProfile};

use state::TgState;

/// A running fake Telegram. Dropping it stops the server and the webhook sender.
#[derive(Debug)]
pub struct FakeTelegram {
    server: RunningServer,
    state: Arc<TgState>,
}

impl FakeTelegram {
    pub async fn start(config: TelegramConfig) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;
        let webhook_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let listen = config.listen;
        let mut inner = state::Inner { next_update_id: 100_000_001, ..state::Inner::default() };
        inner.pace.strict = config.strict_pace;
        let state = Arc::new(TgState {
            config,
            inner: Mutex::new(inner),
            updates_version: watch::channel(0).0,
            chats_version: watch::channel(0).0,
            shutdown: shutdown.clone(),
            http,
            webhook_client,
        });
        let server = RunningServer::start(listen, routes::router(state.clone()), shutdown).await?;
        tokio::spawn(delivery::run(state.clone()));
        tracing::info!(url = %server.base_url(), "fake telegram listening");
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT`: the Bot API is at `{base_url}/bot{token}/{method}`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn token(&self) -> &str {
        &self.state.config.token
    }

    /// `{base_url}/bot{token}/{method}`.
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base_url(), self.token())
    }

    /// The shared state, for [`users`] functions that take a [`UserProfile`].
    pub fn state(&self) -> &TgState {
        &self.state
    }

    pub fn send_text(&self, user_id: i64, text: &str) -> Result<Sent, ActionError> {
        users::text(&self.state, user_id, &UserProfile::default(), text)
    }

    /// A text replying to the bot's message `reply_to` in the user's chat.
    pub fn send_reply(&self, user_id: i64, text: &str, reply_to: i64) -> Result<Sent, ActionError> {
        users::reply(&self.state, user_id, &UserProfile::default(), text, reply_to)
    }

    pub fn send_command(&self, user_id: i64, command: &str, args: Option<&str>) -> Result<Sent, ActionError> {
        users::command(&self.state, user_id, &UserProfile::default(), command, args)
    }

    pub fn send_photo(&self, user_id: i64, image: &ImageSpec) -> Result<Sent, ActionError> {
        users::photo(&self.state, user_id, &UserProfile::default(), image, None)
    }

    pub fn send_album(&self, user_id: i64, items: &[ImageSpec]) -> Result<Vec<Sent>, ActionError> {
        users::album(&self.state, user_id, &UserProfile::default(), items, false)
    }

    pub fn send_document(&self, user_id: i64, file: &ImageSpec) -> Result<Sent, ActionError> {
        users::document(&self.state, user_id, &UserProfile::default(), file, None)
    }

    pub fn press_button(&self, user_id: i64, message_id: i64, data: &str) -> Result<Sent, ActionError> {
        users::press_button(&self.state, user_id, &UserProfile::default(), message_id, data)
    }

    pub fn block(&self, user_id: i64) -> Result<Sent, ActionError> {
        users::set_blocked(&self.state, user_id, &UserProfile::default(), true)
    }

    pub fn unblock(&self, user_id: i64) -> Result<Sent, ActionError> {
        users::set_blocked(&self.state, user_id, &UserProfile::default(), false)
    }

    /// Starts paying an invoice message: the bot gets a `pre_checkout_query`.
    pub fn pay_invoice(&self, user_id: i64, message_id: i64) -> Result<Sent, ActionError> {
        users::pay_invoice(&self.state, user_id, &UserProfile::default(), message_id)
    }

    pub fn upload_file(&self, bytes: Vec<u8>, kind: FileKind) -> Result<String, ActionError> {
        upload_file(&self.state, bytes, kind, None, None)
    }

    pub fn post_update(&self, update: Value) -> Result<i64, ActionError> {
        users::raw_update(&self.state, update)
    }

    pub fn chat(&self, chat_id: i64) -> Option<ChatRecord> {
        self.state.lock().record(chat_id)
    }

    pub fn file_bytes(&self, file_id: &str) -> Option<Bytes> {
        self.state.lock().files.get(file_id).map(|f| f.bytes.clone())
    }

    pub fn payments(&self) -> Vec<PaymentRecord> {
        methods::expire_payments(&self.state);
        self.state.lock().payments.clone()
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.state.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    pub fn set_strict_pace(&self, strict: bool) {
        self.state.lock().pace.strict = strict;
    }

    pub fn pending_updates(&self) -> Vec<Value> {
        self.state.lock().updates.iter().map(|u| u.body.clone()).collect()
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.state.lock().deliveries.iter().cloned().collect()
    }

    /// Waits until `done` holds for the chat's record (the chat may not exist yet).
    pub async fn wait_for_chat(
        &self,
        chat_id: i64,
        timeout: Duration,
        done: impl Fn(&ChatRecord) -> bool,
    ) -> Result<ChatRecord, WaitTimeout> {
        wait_until(timeout, "a chat condition", Recheck::on_change(&self.state.chats_version), || {
            ready(self.chat(chat_id).filter(|r| done(r)))
        })
        .await
    }

    /// Waits until `n` getUpdates calls are running (e.g. a long poll has started).
    pub async fn wait_for_long_polls(&self, n: usize, timeout: Duration) -> Result<(), WaitTimeout> {
        wait_until(timeout, "long polls", Recheck::on_change(&self.state.updates_version), || {
            ready((self.state.lock().waiting_polls >= n).then_some(()))
        })
        .await
    }

    /// Waits until every queued update was delivered (webhook) or confirmed (getUpdates).
    pub async fn wait_until_no_pending_updates(&self, timeout: Duration) -> Result<(), WaitTimeout> {
        wait_until(timeout, "pending updates", Recheck::on_change(&self.state.updates_version), || {
            ready(self.state.lock().updates.is_empty().then_some(()))
        })
        .await
    }
}

/// Stores a file as if uploaded to Telegram earlier, so its `file_id` can be used.
pub fn upload_file(
    state: &TgState,
    bytes: Vec<u8>,
    kind: FileKind,
    mime: Option<String>,
    name: Option<String>,
) -> Result<String, ActionError> {
    let info = sniff(&bytes);
    if kind == FileKind::Photo && info.is_none() {
        return Err(ActionError::Invalid("a photo must be a PNG, JPEG, GIF or WebP image".into()));
    }
    let mime = mime.or(info.map(|i| i.mime.to_string()));
    let dims = info.map_or((0, 0), |i| (i.width, i.height));
    let mut inner = state.lock();
    let file = methods::store_file(
        &mut inner,
        state.config.max_file_bytes,
        kind,
        Bytes::from(bytes),
        mime,
        name,
        dims,
    )
    .map_err(|e| ActionError::Invalid(e.description))?;
    Ok(file.file_id)
}
