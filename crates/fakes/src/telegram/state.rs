//! The fake Telegram's memory: chats and what the bot sent to them, the update queue, files,
//! pending queries and payments, the webhook setting. Everything sits behind one mutex that is
//! never held across an await; watchers learn about changes through version counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::config::TelegramConfig;
use super::faults::{Fault, Pace};
pub use super::records::{BotMessage, ChatEvent, ChatRecord, DeliveryRecord, FileRecord, PaymentRecord};
use crate::common::server::Shutdown;

/// Shared state of one fake Telegram.
#[derive(Debug)]
pub struct TgState {
    pub config: TelegramConfig,
    pub inner: Mutex<Inner>,
    /// Bumped whenever the update queue changes (long polls and the webhook sender wait on it).
    pub updates_version: watch::Sender<u64>,
    /// Bumped whenever the bot does something visible in a chat (tests wait on it).
    pub chats_version: watch::Sender<u64>,
    pub shutdown: Shutdown,
    /// Downloads files sent by URL (follows redirects).
    pub http: reqwest::Client,
    /// Webhook deliveries: a redirect is a non-2xx answer, not something to follow.
    pub webhook_client: reqwest::Client,
}

impl TgState {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops expired updates and tells the waiters if any went.
    pub fn expire_updates(&self) {
        let expired = self.lock().expire_updates(self.config.update_ttl);
        if expired > 0 {
            tracing::info!(expired, "updates older than the TTL were dropped");
            self.updates_changed();
        }
    }

    pub fn updates_changed(&self) {
        self.updates_version.send_modify(|v| *v += 1);
    }

    pub fn chats_changed(&self) {
        self.chats_version.send_modify(|v| *v += 1);
    }

    pub fn bot_id(&self) -> i64 {
        self.config.token.split(':').next().and_then(|id| id.parse().ok()).unwrap_or(0)
    }

    pub fn bot_user(&self) -> Value {
        json!({
            "id": self.bot_id(),
            "is_bot": true,
            "first_name": self.config.bot_first_name,
            "username": self.config.bot_username,
        })
    }
}

/// An update waiting to be fetched with getUpdates or delivered to the webhook.
#[derive(Debug, Clone)]
pub struct PendingUpdate {
    pub update_id: i64,
    /// Updates with the same key are delivered one at a time, in order.
    pub chat_key: i64,
    pub body: Value,
    pub attempts: u32,
    pub in_flight: bool,
    pub not_before: Instant,
    /// When the update was queued; Telegram keeps updates at most 24 h.
    pub created: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct Webhook {
    pub url: String,
    pub secret_token: Option<String>,
    pub max_connections: usize,
    pub last_error_date: Option<i64>,
    pub last_error_message: Option<String>,
}

/// A file Telegram stores: uploaded by the bot or sent by a user.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub file_id: String,
    pub file_unique_id: String,
    pub file_path: String,
    pub kind: FileKind,
    pub bytes: axum::body::Bytes,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub width: u32,
    pub height: u32,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Photo,
    Document,
}

/// A private chat with one user.
#[derive(Debug, Clone)]
pub struct Chat {
    pub user: Value,
    pub blocked: bool,
    pub next_message_id: i64,
    pub messages: BTreeMap<i64, BotMessage>,
    /// Messages the user sent (kept so callback buttons and invoices can refer to ids).
    pub user_messages: BTreeMap<i64, Value>,
    pub events: Vec<ChatEvent>,
}

#[derive(Debug, Clone)]
pub struct CallbackQuery {
    pub chat_id: i64,
    pub answered: bool,
}

#[derive(Debug, Clone)]
pub struct PreCheckout {
    pub user_id: i64,
    pub currency: String,
    pub total_amount: i64,
    pub payload: String,
    pub created: Instant,
    pub answered: bool,
}

pub const MAX_RECORDS: usize = 10_000;
/// Open callback and pre-checkout queries, invoices and payments kept at most.
pub const MAX_OPEN: usize = 100_000;

#[derive(Debug, Default)]
pub struct Inner {
    pub next_update_id: i64,
    pub poll_generation: u64,
    /// getUpdates calls currently running.
    pub waiting_polls: usize,
    pub invoices: BTreeMap<(i64, i64), Invoice>,
    pub updates: VecDeque<PendingUpdate>,
    pub webhook: Option<Webhook>,
    pub allowed_updates: Option<Vec<String>>,
    pub chats: BTreeMap<i64, Chat>,
    pub files: HashMap<String, StoredFile>,
    pub file_paths: HashMap<String, String>,
    pub file_bytes: usize,
    pub next_serial: u64,
    pub callback_queries: HashMap<String, CallbackQuery>,
    pub pre_checkouts: HashMap<String, PreCheckout>,
    pub payments: Vec<PaymentRecord>,
    pub commands: Value,
    pub faults: Vec<Fault>,
    pub pace: Pace,
    pub deliveries: VecDeque<DeliveryRecord>,
}

/// Default update types: everything except the ones Telegram sends only when asked.
const NOT_DEFAULT: [&str; 3] = ["chat_member", "message_reaction", "message_reaction_count"];

impl Inner {
    pub fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    fn allows(&self, kind: &str) -> bool {
        match &self.allowed_updates {
            Some(list) if !list.is_empty() => list.iter().any(|k| k == kind),
            _ => !NOT_DEFAULT.contains(&kind),
        }
    }

    /// Queues `{"update_id":…, kind: payload}`; `None` when filtered out by `allowed_updates`
    /// or when the queue is full (Telegram drops what it cannot keep too).
    pub fn enqueue(&mut self, kind: &str, chat_key: i64, payload: Value, max: usize) -> Option<i64> {
        if !self.allows(kind) || self.updates.len() >= max {
            return None;
        }
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        let body = json!({ "update_id": update_id, kind: payload });
        self.push_raw(update_id, chat_key, body);
        Some(update_id)
    }

    pub fn push_raw(&mut self, update_id: i64, chat_key: i64, body: Value) {
        let now = Instant::now();
        let update = PendingUpdate {
            update_id,
            chat_key,
            body,
            attempts: 0,
            in_flight: false,
            not_before: now,
            created: now,
        };
        self.updates.push_back(update);
    }

    /// Keeps the query, invoice and payment stores bounded: answered queries go first, then
    /// the oldest entries (a query dropped this way answers "query is too old", as Telegram's
    /// expired queries do).
    pub fn make_room(&mut self) {
        if self.callback_queries.len() >= MAX_OPEN {
            self.callback_queries.retain(|_, q| !q.answered);
            if self.callback_queries.len() >= MAX_OPEN {
                self.callback_queries.clear();
            }
        }
        if self.pre_checkouts.len() >= MAX_OPEN {
            self.pre_checkouts.retain(|_, q| !q.answered);
            if self.pre_checkouts.len() >= MAX_OPEN {
                self.pre_checkouts.clear();
            }
        }
        while self.invoices.len() >= MAX_OPEN {
            self.invoices.pop_first();
        }
        if self.payments.len() >= MAX_OPEN {
            self.payments.drain(..MAX_OPEN / 10);
        }
    }

    /// Forgets updates older than `ttl` that are not being delivered right now; returns how
    /// many went (the caller tells the waiters).
    pub fn expire_updates(&mut self, ttl: std::time::Duration) -> usize {
        let now = Instant::now();
        let before = self.updates.len();
        self.updates.retain(|u| u.in_flight || now.duration_since(u.created) < ttl);
        before - self.updates.len()
    }

    pub fn chat(&mut self, chat_id: i64) -> Option<&mut Chat> {
        self.chats.get_mut(&chat_id)
    }

    /// Creates the private chat of a user on first contact.
    pub fn ensure_user(&mut self, user: Value) -> &mut Chat {
        let id = user.get("id").and_then(Value::as_i64).unwrap_or(0);
        self.chats.entry(id).or_insert_with(|| Chat {
            user,
            blocked: false,
            next_message_id: 1,
            messages: BTreeMap::new(),
            user_messages: BTreeMap::new(),
            events: Vec::new(),
        })
    }

    pub fn record(&self, chat_id: i64) -> Option<ChatRecord> {
        let chat = self.chats.get(&chat_id)?;
        let chat_actions = chat
            .events
            .iter()
            .filter(|e| e.method == "sendChatAction")
            .filter_map(|e| e.detail.get("action").and_then(Value::as_str).map(str::to_string))
            .collect();
        Some(ChatRecord {
            chat_id,
            blocked: chat.blocked,
            messages: chat.messages.values().cloned().collect(),
            chat_actions,
            events: chat.events.clone(),
        })
    }
}

impl Chat {
    pub fn take_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    pub fn chat_object(&self) -> Value {
        let mut chat =
            json!({"id": self.user["id"], "type": "private", "first_name": self.user["first_name"]});
        if let Some(username) = self.user.get("username") {
            chat["username"] = username.clone();
        }
        chat
    }

    pub fn push_event(&mut self, method: &str, detail: Value) {
        if self.events.len() >= MAX_RECORDS {
            self.events.remove(0);
        }
        self.events.push(ChatEvent { method: method.to_string(), detail });
    }
}

/// What the fake remembers about an invoice the bot sent (the `Message` hides the payload).
#[derive(Debug, Clone)]
pub struct Invoice {
    pub currency: String,
    pub total_amount: i64,
    pub payload: String,
}
