//! The fake YooKassa API v3. [`FakeYooKassa::start`] runs it on a port (0 allowed) with a
//! checkout page and a control API; the handle pays, cancels and refunds as the user or the
//! dashboard would, arms faults and reads notification attempts. See the crate README.

use std::future::ready;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{middleware, Router};
use serde_json::Value;
use tokio::sync::{watch, Semaphore};

use crate::common::logging::log_requests;
use crate::common::server::{RunningServer, Shutdown};
use crate::common::wait::{wait_until, Recheck, WaitTimeout};

mod api;
mod checkout;
mod config;
mod control;
pub mod error;
pub mod lifecycle;
pub mod money;
mod notify;
pub mod state;
pub mod validate;

pub use config::YooKassaConfig;
pub use lifecycle::ChangeError;
pub use state::{ApiFault, ApiFaultKind, NotificationRecord, NotifyMode, RequestRecord};

use state::YkState;

/// A running fake YooKassa. Dropping it stops the server and notification retries.
#[derive(Debug)]
pub struct FakeYooKassa {
    server: RunningServer,
    state: Arc<YkState>,
}

const MAX_BODY: usize = 1024 * 1024;

impl FakeYooKassa {
    pub async fn start(config: YooKassaConfig) -> anyhow::Result<Self> {
        let listener = RunningServer::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let config = YooKassaConfig { listen: addr, ..config };
        let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(source) = config.source_address {
            builder = builder.local_address(source);
        }
        let notifier = builder.build()?;
        let shutdown = Shutdown::new();
        let state = Arc::new_cyclic(|me| YkState {
            config: config.clone(),
            public_url,
            inner: Mutex::new(state::Inner::default()),
            version: watch::channel(0).0,
            shutdown: shutdown.clone(),
            notifier,
            sending: Semaphore::new(64),
            me: me.clone(),
            gate: Mutex::new(()),
        });
        let router = Router::new()
            .merge(api::router())
            .merge(checkout::router())
            .nest("/_fake", control::router())
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .layer(middleware::from_fn(|r, n| log_requests("yookassa", r, n)))
            .with_state(state.clone());
        let server = RunningServer::serve(listener, router, shutdown)?;
        tokio::spawn(expiry_sweeper(state.clone()));
        tracing::info!(url = %server.base_url(), "fake yookassa listening");
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT`: the API is at `{base_url}/v3`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn api_url(&self) -> String {
        format!("{}/v3", self.base_url())
    }

    pub fn shop_id(&self) -> &str {
        &self.state.config.shop_id
    }

    pub fn secret_key(&self) -> &str {
        &self.state.config.secret_key
    }

    pub fn payment(&self, id: &str) -> Option<Value> {
        self.state.lock().payments.get(id).map(|p| p.object.clone())
    }

    pub fn payments(&self) -> Vec<Value> {
        self.state.lock().payments.values().map(|p| p.object.clone()).collect()
    }

    /// The user pays on the checkout page.
    pub fn pay(&self, id: &str) -> Result<Value, ChangeError> {
        lifecycle::pay(&self.state, id)
    }

    /// The payment is canceled with a documented reason (e.g. "insufficient_funds").
    pub fn cancel(&self, id: &str, reason: &str) -> Result<Value, ChangeError> {
        lifecycle::cancel(&self.state, id, reason)
    }

    /// A refund made in YooKassa's dashboard (kopecks; the remaining amount when `None`).
    pub fn dashboard_refund(&self, payment_id: &str, cents: Option<i64>) -> Result<Value, error::YkError> {
        let (left, currency) = {
            let inner = self.state.lock();
            let payment = inner
                .payments
                .get(payment_id)
                .ok_or_else(|| error::YkError::not_found("Payment", "payment_id"))?;
            (payment.cents - payment.refunded_cents, payment.currency.clone())
        };
        let refund = validate::NewRefund {
            payment_id: payment_id.to_string(),
            cents: cents.unwrap_or(left),
            currency,
            description: Some("Refund from the dashboard".into()),
        };
        lifecycle::refund(&self.state, refund)
    }

    /// The next `n` refunds stay `pending` until `finish_refund`.
    pub fn hold_next_refunds(&self, n: u32) {
        self.state.lock().pending_refunds = n;
    }

    /// Finishes a pending refund: succeeded (notified), or canceled with `reason`.
    pub fn finish_refund(&self, id: &str, succeed: bool, reason: &str) -> Result<Value, ChangeError> {
        lifecycle::finish_refund(&self.state, id, succeed, reason)
    }

    pub fn inject_fault(&self, fault: ApiFault) {
        self.state.lock().faults.push(fault);
    }

    /// Every armed fault is disarmed: the API recovers.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    pub fn set_notify_mode(&self, mode: NotifyMode) {
        self.state.lock().mode = mode;
    }

    pub fn notify_mode(&self) -> NotifyMode {
        self.state.lock().mode.clone()
    }

    /// How many notifications are held (`NotifyMode::hold`) waiting for a release.
    pub fn held_notifications(&self) -> usize {
        self.state.lock().held.len()
    }

    /// Sends held notifications (reversed when asked); returns how many.
    pub async fn release_notifications(&self, reverse: bool) -> usize {
        self.state.lock().mode.hold = false;
        notify::release(self.state.clone(), reverse).await
    }

    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.state.lock().notifications.iter().cloned().collect()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// Waits until `probe` finds something in the fake (a payment, a request…), re-checking on
    /// every change.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &'static str,
        probe: impl Fn(&Self) -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        wait_until(timeout, what, Recheck::on_change(&self.state.version), || ready(probe(self))).await
    }

    /// Waits for a payment object matching `done` (e.g. the one the service just created).
    pub async fn wait_for_payment(
        &self,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, WaitTimeout> {
        self.wait_for(timeout, "a payment", |fake| fake.payments().into_iter().find(|p| done(p))).await
    }

    /// Waits until `done` holds for the notification attempts so far.
    pub async fn wait_for_notifications(
        &self,
        timeout: Duration,
        done: impl Fn(&[NotificationRecord]) -> bool,
    ) -> Result<Vec<NotificationRecord>, WaitTimeout> {
        self.wait_for(timeout, "notifications", |fake| Some(fake.notifications()).filter(|r| done(r))).await
    }
}

async fn expiry_sweeper(state: Arc<YkState>) {
    let deadline = state.config.confirmation_expiry;
    let tick = (deadline / 10).clamp(Duration::from_millis(10), Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => lifecycle::expire_overdue(&state, deadline),
            _ = state.shutdown.wait() => return,
        }
    }
}
