//! Update handling — synchronous, idempotent (DESIGN §4): one transaction records the
//! `update_id` and applies the update's effects with their outbox rows; a repeat of a handled
//! update changes nothing (a pre-checkout query is only answered again). Concurrent deliveries
//! of one update queue on its row.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{Connection, PgPool};
use tokio::sync::Notify;

use super::buy::{self, After, Finished};
use super::commands::{self, Effects};
use super::fast::{self, Fast};
use super::updates::{claim, record_step, Claim};
use super::BotError;
use crate::config::Config;
use crate::metrics;
use crate::outbox;
use crate::signals::Notifier;
use crate::telegram::client::BotApi;
use crate::telegram::update::{self, Content, Incoming};
use crate::texts::{render, Lang};

/// Everything handling needs.
pub struct Bot {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub api: BotApi,
    /// Wakes the outbox sender after a commit that queued messages.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the workers after a commit that queued a generation.
    pub workers: Notifier,
    /// YooKassa, when configured: `/buy` creates payments through it.
    pub yookassa: Option<Arc<crate::payments::YooKassa>>,
    /// How many of a user's messages a minute are answered.
    pub replies: super::budget::ReplyBudget,
    /// Updates the fast path (`bot::fast`) handled, for `/metrics`.
    pub fast_handled: std::sync::atomic::AtomicU64,
    /// The users the fast path remembers.
    pub senders: fast::Senders,
}

impl Bot {
    /// Runs the update's recorded external step, then closes the update with its messages in
    /// one transaction (once, however many deliveries got here). An outcome the provider left
    /// unknown is never a 5xx (DESIGN §10): the step stays recorded for the resumer
    /// (`resume_open`), the user is told once (`first`) that it is still processing, and
    /// Telegram gets its 200, so the chat's next updates are not held up.
    async fn resume(&self, update_id: i64, step: Option<String>, first: bool) -> Result<(), BotError> {
        let Some(after) = step.as_deref().and_then(|s| serde_json::from_str::<After>(s).ok()) else {
            tracing::error!(update_id, ?step, "unreadable update step; closed without it");
            return self.close(update_id, Vec::new()).await;
        };
        let yk = self.yookassa.as_deref();
        match buy::run(&self.pool, yk, &self.api, &after).await? {
            Finished::Replies(replies) => self.close(update_id, replies).await,
            Finished::Retry(why) => {
                tracing::warn!(target: "nanobanana::payments", update_id, %why, "payment step unknown; the resumer finishes it");
                self.step_unknown(update_id, after.chat(), first).await
            }
        }
    }

    /// The step's outcome is unknown: when it was tried is recorded, and the first time the
    /// user is told it is still processing.
    async fn step_unknown(&self, update_id: i64, chat: i64, first: bool) -> Result<(), BotError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("UPDATE telegram_updates SET step_tried_at = now() WHERE update_id = $1")
            .bind(update_id)
            .execute(&mut *tx)
            .await?;
        if first {
            let lang = crate::db::users::language(&mut *tx, chat).await?.unwrap_or(Lang::Ru);
            outbox::send_text(&mut tx, chat, &render(lang, "buy_still_processing", &[]), None).await?;
        }
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// The resumer's pass: updates whose recorded step was last tried more than `every` ago run
    /// it again, with the same idempotence key (DESIGN §10). How many were tried.
    pub async fn resume_open(&self, every: std::time::Duration, limit: i64) -> Result<usize, BotError> {
        let open: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE telegram_updates SET step_tried_at = now()
             WHERE update_id IN (
                 SELECT update_id FROM telegram_updates
                 WHERE state <> 'handled' AND step IS NOT NULL
                   AND COALESCE(step_tried_at, received_at) <= now() - make_interval(secs => $1)
                 ORDER BY update_id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING update_id, step",
        )
        .bind(every.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        for (update_id, step) in &open {
            if let Err(e) = self.resume(*update_id, Some(step.clone()), false).await {
                tracing::warn!(update_id, error = %e, "resuming an update's step failed; next pass retries");
            }
        }
        Ok(open.len())
    }

    async fn close(&self, update_id: i64, replies: Vec<buy::Reply>) -> Result<(), BotError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let state: String =
            sqlx::query_scalar("SELECT state FROM telegram_updates WHERE update_id = $1 FOR UPDATE")
                .bind(update_id)
                .fetch_one(&mut *tx)
                .await?;
        if state == "handled" {
            return Ok(());
        }
        for (chat, text, keyboard) in replies {
            outbox::send_text(&mut tx, chat, &text, keyboard).await?;
        }
        sqlx::query("UPDATE telegram_updates SET state = 'handled', handled_at = now() WHERE update_id = $1")
            .bind(update_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Handles one update exactly once, however often it is delivered.
    pub async fn handle(&self, raw: &Value) -> Result<(), BotError> {
        let (update_id, kind) = update::envelope(raw).ok_or(BotError::NotAnUpdate("no update_id"))?;
        let incoming = update::parse(raw);
        // The common paths in two round trips; anything else, and anything they leave, here.
        let Some(budget) = self.fast(update_id, &kind, raw, &incoming).await? else { return Ok(()) };
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut recorded_handled = false;
        let step = match claim(&mut tx, update_id, &kind, raw).await? {
            Claim::Handled => {
                metrics::inc(&metrics::UPDATES_REPEATED);
                tx.commit().await?;
                drop(conn);
                return self.answer_again(update_id, raw).await;
            }
            Claim::Resume(step) => Some(step),
            Claim::New { inserted } => {
                recorded_handled = inserted;
                None
            }
        };
        if let Some(step) = step {
            // A delivery after a crash between the steps: only the recorded step is left.
            tx.commit().await?;
            // The step takes connections of its own: holding this one too could exhaust the pool.
            drop(conn);
            return self.resume(update_id, Some(step), false).await;
        }
        if self.muted(&incoming, budget).await {
            if !recorded_handled {
                record_step(&mut tx, update_id, None).await?;
            }
            tx.commit().await?;
            metrics::inc(&metrics::UPDATES_HANDLED);
            tracing::debug!(update_id, "over the reply budget: recorded, not answered");
            return Ok(());
        }
        let effects = commands::apply(&mut tx, &self.config, update_id, &incoming).await?;
        let step = effects.after.as_ref().and_then(|a| serde_json::to_value(a).ok());
        if step.is_some() || !recorded_handled {
            // Recorded as handled by the claim unless there is an external step still to run.
            record_step(&mut tx, update_id, step.as_ref()).await?;
        }
        tx.commit().await?;
        // Back to the pool before the calls below: the signal and Telegram's answers need none,
        // and the payment step takes its own (holding this one too could exhaust the pool).
        drop(conn);
        metrics::inc(&metrics::UPDATES_HANDLED);
        self.after_commit(update_id, &incoming, effects).await;
        if let Some(step) = step {
            return self.resume(update_id, Some(step.to_string()), true).await;
        }
        tracing::debug!(update_id, kind, "update handled");
        Ok(())
    }

    /// Over their reply budget, a user's messages are recorded and left unanswered (a payment
    /// never is: it is money, not chatter). Spent only by a delivery that handles the update, so
    /// Telegram's redeliveries of one update never count twice; `budget`: the fast path's answer
    /// when it already asked for this delivery.
    async fn muted(&self, incoming: &Incoming, budget: Option<bool>) -> bool {
        match incoming {
            Incoming::Message(m) if !matches!(m.content, Content::Paid(_)) => match budget {
                Some(answered) => !answered,
                None => !self.replies.spend(m.from.id).await,
            },
            _ => false,
        }
    }

    /// The fast path (`bot::fast`): `None` when it handled the update; else whether the reply
    /// budget was already asked for this delivery, and its answer.
    async fn fast(
        &self,
        update_id: i64,
        kind: &str,
        raw: &Value,
        incoming: &Incoming,
    ) -> Result<Option<Option<bool>>, BotError> {
        let cx = fast::Context {
            pool: &self.pool,
            config: &self.config,
            replies: &self.replies,
            senders: &self.senders,
        };
        let fast = fast::handle(&cx, update_id, kind, raw, incoming);
        match fast.await? {
            Fast::Handled { generation, callback_answer } => {
                metrics::inc(&metrics::UPDATES_HANDLED);
                metrics::inc(&self.fast_handled);
                let effects = Effects { generation, callback_answer, ..Effects::default() };
                self.after_commit(update_id, incoming, effects).await;
                tracing::debug!(update_id, kind, "update handled (fast path)");
                Ok(None)
            }
            Fast::Full { budget } => Ok(Some(budget)),
        }
    }

    /// What the committed update asks of the outside world: the outbox woken, the workers
    /// signalled, a callback or pre-checkout query answered inline.
    async fn after_commit(&self, update_id: i64, incoming: &Incoming, effects: Effects) {
        self.outbox_wake.notify_one();
        if let Some(generation) = effects.generation {
            // A hint only: workers also poll Postgres, so a lost signal merely delays.
            if let Err(e) = self.workers.notify(generation).await {
                tracing::warn!(%generation, error = %e, "could not signal the workers");
            }
        }
        if let (Incoming::Callback { id, .. }, Some(text)) = (incoming, effects.callback_answer) {
            // Telegram wants callback queries answered within seconds, so not via the outbox.
            let params = serde_json::json!({ "callback_query_id": id, "text": text });
            if let Err(e) = self.api.call("answerCallbackQuery", &params).await {
                tracing::warn!(update_id, error = %e, "answerCallbackQuery failed");
            }
        }
        if let Some((id, refusal)) = effects.pre_checkout {
            // Within Telegram's 10 s: inline, never via the outbox.
            self.answer_pre_checkout(update_id, &pre_checkout_answer(&id, refusal)).await;
        }
    }
}

/// The `answerPreCheckoutQuery` parameters: ok, or the refusal's text.
fn pre_checkout_answer(id: &str, refusal: Option<String>) -> Value {
    match refusal {
        None => serde_json::json!({ "pre_checkout_query_id": id, "ok": true }),
        Some(reason) => {
            serde_json::json!({ "pre_checkout_query_id": id, "ok": false, "error_message": reason })
        }
    }
}

/// Tries of the pre-checkout answer: Telegram waits 10 s for it, then the payment fails.
const PRE_CHECKOUT_TRIES: u32 = 3;
/// All the tries of one pre-checkout answer, inside Telegram's 10 s.
const PRE_CHECKOUT_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

impl Bot {
    /// A repeat of a handled update changes nothing, but a pre-checkout query is answered
    /// again: the process may have died between committing it and answering, and unanswered
    /// the user's payment fails. The decision is read again (recording nothing); Telegram
    /// takes a second answer of an answered query as a harmless error.
    async fn answer_again(&self, update_id: i64, raw: &Value) -> Result<(), BotError> {
        let Incoming::PreCheckout { id, from, payment } = update::parse(raw) else {
            return Ok(());
        };
        let mut conn = self.pool.acquire().await?;
        let lang = crate::db::users::language(&mut *conn, from.id)
            .await?
            .unwrap_or_else(|| Lang::from_telegram(from.language_code.as_deref()));
        let refusal = crate::payments::stars::pre_checkout_refusal(&mut conn, from.id, &payment).await?;
        drop(conn);
        let refusal = refusal.map(|key| render(lang, key, &[]));
        tracing::info!(target: "nanobanana::payments", update_id, ok = refusal.is_none(), "pre-checkout query redelivered; answered again");
        self.answer_pre_checkout(update_id, &pre_checkout_answer(&id, refusal)).await;
        Ok(())
    }

    /// The pre-checkout answer, tried again after a Telegram 429, 5xx or no answer, all within
    /// `PRE_CHECKOUT_BUDGET` (Telegram waits 10 s; unanswered, the user's payment fails, and
    /// later tries would only hold the delivery).
    async fn answer_pre_checkout(&self, update_id: i64, params: &Value) {
        let deadline = tokio::time::Instant::now() + PRE_CHECKOUT_BUDGET;
        for attempt in 1..=PRE_CHECKOUT_TRIES {
            let call = self.api.call("answerPreCheckoutQuery", params);
            let Ok(answer) = tokio::time::timeout_at(deadline, call).await else {
                tracing::warn!(target: "nanobanana::payments", update_id, attempt, "answerPreCheckoutQuery: no answer within Telegram's wait; giving up");
                return;
            };
            let wait = match answer {
                Ok(_) => return,
                Err(crate::telegram::client::ApiError::Refused { code: 429, retry_after, .. }) => {
                    std::time::Duration::from_secs(retry_after.unwrap_or(1).min(3))
                }
                Err(crate::telegram::client::ApiError::Refused { code, .. }) if code >= 500 => {
                    std::time::Duration::from_millis(300)
                }
                Err(crate::telegram::client::ApiError::Transport { .. }) => {
                    std::time::Duration::from_millis(300)
                }
                Err(e) => {
                    tracing::warn!(target: "nanobanana::payments", update_id, error = %e, "answerPreCheckoutQuery refused");
                    return;
                }
            };
            if attempt == PRE_CHECKOUT_TRIES || tokio::time::Instant::now() + wait >= deadline {
                tracing::warn!(target: "nanobanana::payments", update_id, attempt, "answerPreCheckoutQuery failed; giving up");
                return;
            }
            tracing::warn!(target: "nanobanana::payments", update_id, attempt, ?wait, "answerPreCheckoutQuery failed; trying again");
            tokio::time::sleep(wait).await;
        }
    }
}
