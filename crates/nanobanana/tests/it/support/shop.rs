//! `Shop`: a `TestApp` with the fake YooKassa as the shop, terms and an admin configured, and
//! the user's steps of a purchase (`/buy`, the terms, the checkout page, a Stars invoice).
//! It also holds a YooKassa client of its own, with a 1 s timeout, for the tests that call
//! `payments` directly.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use fakes::telegram::users;
use fakes::telegram::{BotMessage, ChatRecord};
use fakes::FakeYooKassa;
use nanobanana::config::Pack;
use nanobanana::payments::{self, YooKassa};
use serde_json::Value;

use super::app::{profile, TestApp};
use super::db::credits_of;
use super::wait::WAIT;

pub const TERMS: &str = "2026-11";
pub const ADMIN: i64 = 9000;

pub struct Shop {
    pub app: TestApp,
    /// The service's YooKassa client, built from the app's configuration.
    pub client: Arc<YooKassa>,
}

impl Deref for Shop {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Shop {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_with(fakes::YooKassaConfig::default(), extra).await
    }

    /// With the fake YooKassa configured so; a timed-out call hangs 5 s.
    pub async fn start_with(yookassa: fakes::YooKassaConfig, extra: &[(&str, &str)]) -> Self {
        let admin = ADMIN.to_string();
        let mut builder = TestApp::builder()
            .yookassa_with(fakes::YooKassaConfig { hang: Duration::from_secs(5), ..yookassa })
            .env("TERMS_URL", "https://example.com/terms")
            .env("PRIVACY_URL", "https://example.com/privacy")
            .env("TERMS_VERSION", TERMS)
            .env("ADMIN_IDS", &admin)
            .env("SUPPORT_CONTACT", "@nanobanana_support");
        for (key, value) in extra {
            builder = builder.env(key, value);
        }
        let app = builder.start().await;
        let config = app.config.yookassa.clone().expect("YooKassa configured");
        let client = YooKassa::with_timeout(app.db.pool.clone(), config, None, Duration::from_secs(1));
        Self { client: Arc::new(client.expect("client").with_admins(vec![ADMIN])), app }
    }

    /// The fake YooKassa.
    pub fn yk(&self) -> &FakeYooKassa {
        self.app.yookassa()
    }

    // --- Through the bot, as the user ------------------------------------------------------

    /// `/buy`, then the pack's button.
    pub async fn choose(&self, user: i64, lang: &str, pack: &str) {
        let before = self.tg.chat(user).map_or(0, |c| c.messages.len());
        self.command(user, lang, "buy");
        let chat = self.messages(user, before + 1).await;
        let screen = &chat.messages[before];
        let data = format!("buy:{pack}");
        assert!(screen.callback_data().contains(&data), "{data} offered: {:?}", screen.callback_data());
        self.press(user, screen.message_id, &data).await;
    }

    /// Accepts the terms on the latest terms message.
    pub async fn accept_terms(&self, user: i64) {
        let terms = self
            .wait_message(user, "terms", |m| m.callback_data().iter().any(|d| d.starts_with("terms:")))
            .await;
        let data = terms.callback_data().into_iter().find(|d| d.starts_with("terms:")).expect("accept");
        assert!(data.starts_with(&format!("terms:{TERMS}:")), "{data}");
        self.press(user, terms.message_id, &data).await;
    }

    /// The URL of the latest "Pay" button, once there are `count`.
    pub async fn pay_url(&self, user: i64, count: usize) -> String {
        let chat = self.chat(user, |c| pay_buttons(c).len() >= count).await;
        pay_buttons(&chat).pop().expect("button")
    }

    /// The user presses "Pay" (or cancels) on the fake checkout page, over HTTP.
    pub async fn checkout(&self, url: &str, cancel_reason: Option<&str>) {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let response = match cancel_reason {
            None => http.post(format!("{url}/pay")).send().await,
            Some(reason) => http.post(format!("{url}/cancel")).form(&[("reason", reason)]).send().await,
        }
        .expect("checkout answers");
        assert!(
            response.status().is_redirection() || response.status().is_success(),
            "{}",
            response.status()
        );
    }

    /// The latest invoice in the chat.
    pub async fn invoice(&self, user: i64) -> BotMessage {
        self.wait_message(user, "invoice", |m| m.kind == "invoice").await
    }

    /// The user buys the 100-credit Stars pack (in English) and pays its invoice; the topup id.
    pub async fn paid_stars(&self, user: i64) -> String {
        self.choose(user, "en", "xtr100").await;
        self.accept_terms(user).await;
        let invoice = self.invoice(user).await;
        self.tg.pay_invoice(user, invoice.message_id).expect("pay");
        self.wait_text(user, "Balance: 100 credits").await;
        self.topup_of(user).await
    }

    /// A user who accepted the terms and bought the 100 ₽ pack, paid and credited.
    pub async fn paid_user(&self, user: i64, lang: &str) -> String {
        self.choose(user, lang, "rub100").await;
        self.accept_terms(user).await;
        let url = self.pay_url(user, 1).await;
        self.checkout(&url, None).await;
        let credited = if lang == "ru" { "начислено" } else { "credited" };
        self.wait_text(user, credited).await;
        self.topup_of(user).await
    }

    pub async fn topup_of(&self, user: i64) -> String {
        let id: uuid::Uuid =
            sqlx::query_scalar("SELECT id FROM topups WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1")
                .bind(user)
                .fetch_one(&self.db.pool)
                .await
                .expect("topup");
        id.to_string()
    }

    // --- Straight at `payments`, without the bot -------------------------------------------

    /// A user the bot knows and Telegram has a chat for, who never wrote (Russian).
    pub async fn user(&self, user: i64) {
        self.db.user(user).await;
        self.tg.state().lock().ensure_user(users::user_object(user, &profile("ru")));
    }

    pub fn pack(rubles: i64) -> Pack {
        Pack { id: format!("rub{rubles}"), price: rubles * 100, credits: credits_of(rubles) }
    }

    /// A user buys the 100 ₽ pack; returns the YooKassa payment id.
    pub async fn buy(&self, user: i64, source: &str) -> String {
        let url = payments::start_yookassa(&self.client, user, &Self::pack(100), source, None)
            .await
            .expect("payment started");
        let id = url.rsplit('/').next().expect("checkout URL ends with the id").to_owned();
        assert!(self.yk().payment(&id).is_some(), "{url} names a payment at YooKassa");
        id
    }

    /// Waits until every notification attempt so far has an answer and `n` were answered 200.
    pub async fn notified(&self, n: usize) {
        self.yk()
            .wait_for_notifications(WAIT, |r| r.iter().filter(|a| a.status == Some(200)).count() >= n)
            .await
            .unwrap_or_else(|e| panic!("{e:?}: {:?}", self.yk().notifications()));
    }

    /// The texts queued for `user`, in order.
    pub async fn outbox_texts(&self, user: i64) -> Vec<String> {
        sqlx::query_scalar("SELECT params->>'text' FROM outbox WHERE chat_id = $1 ORDER BY id")
            .bind(user)
            .fetch_all(&self.db.pool)
            .await
            .expect("outbox")
    }

    pub async fn topups_credited(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM transactions WHERE type = 'topup'").await
    }

    /// POSTs `body` to the YooKassa webhook from the local address `from`.
    pub async fn post_webhook(&self, from: &str, forwarded_for: Option<&str>, body: &Value) -> u16 {
        let local: IpAddr = from.parse().expect("ip");
        let client = reqwest::Client::builder().local_address(local).build().expect("client");
        let mut request = client.post(format!("{}/yookassa/webhook", self.url)).json(body);
        if let Some(xff) = forwarded_for {
            request = request.header("X-Forwarded-For", xff);
        }
        request.send().await.expect("webhook answers").status().as_u16()
    }

    // --- The end ---------------------------------------------------------------------------

    pub async fn finish(self) {
        self.app.finish().await
    }
}

/// The URLs of every URL button in the chat, in order.
pub fn pay_buttons(chat: &ChatRecord) -> Vec<String> {
    chat.messages
        .iter()
        .filter_map(|m| m.reply_markup())
        .flat_map(|k| k["inline_keyboard"].as_array().cloned().unwrap_or_default())
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b.get("url").and_then(Value::as_str).map(str::to_owned))
        .collect()
}
