//! The one active sender of the outbox's rows — per chat in order, about one message a
//! second per chat and at most 30 a second overall, waiting out 429s, dropping what Telegram
//! rejects and the queue of users who blocked the bot. A row is marked sent, with the
//! `message_id` Telegram returned, right after Telegram accepts it. Delivery is at least once:
//! the Bot API has no idempotency key, so if the process dies between Telegram's answer and that
//! mark, the row is sent again after the restart. Rows go out one at a time, so a crash repeats
//! at most one message — never an edit of the wrong message, never a lost one.
//!
//! Status messages (`status`): a row with `status_of` set is rendered from its generation's
//! current state when it is sent, so an edit of a message not yet sent is folded into the send;
//! an edit to the text already shown is skipped; progress edits not due yet let the chat's
//! other rows pass, and every status edit waits behind deliveries of other chats. Once a
//! second, with the capacity left, the sender refreshes "generating" messages and sends the
//! `upload_photo` chat action to chats waiting for a picture.
//!
//! Priority classes (DESIGN §10): chats are served in the order of the best class they have
//! queued, and a paid delivery queued while lower classes are being sent interrupts the pass
//! after the send in progress, so a backlog never delays it by more than one send slot. A paid
//! delivery is never dropped for a transient failure (backoff capped at `retry_cap`, no
//! attempt limit) and a 403 parks it until the user writes again.
//!
//! A row may carry a stored file instead of a Telegram file reference (`attachment`). The
//! sender's SQL is `rows`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgPool};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::attachment::Attachment;
use super::rows::{self, Row};
use super::status::{self, Rendered};
use crate::storage::Storage;
use crate::telegram::client::{ApiError, BotApi};

/// Advisory lock key held by the active sender.
const LEADER_LOCK: i64 = 0x6e62_6f75_7462_6f78; // "nboutbox"
const PER_CHAT_INTERVAL: Duration = Duration::from_millis(1000);
const GLOBAL_PER_SECOND: usize = 30;
const BATCH: i64 = 100;
const MAX_ATTEMPTS: i32 = 10;
/// The longest wait between tries of a failed send, unless `with_retry_cap` says otherwise.
pub const RETRY_CAP: Duration = Duration::from_secs(60);
/// How often progress edits and chat actions are considered.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Telegram shows a chat action for about 5 s.
const CHAT_ACTION_EVERY: Duration = Duration::from_secs(4);

/// What happened to one row.
enum Sent {
    Done,
    /// Nothing to send (an edit to the text the message shows already).
    Skipped,
    /// Not yet: the message it edits has not been sent.
    Waiting,
    Retry(Duration),
    /// Telegram said slow down: everyone waits.
    Pause(Duration),
    Blocked,
    Dropped(String),
}

pub struct Sender {
    pool: PgPool,
    api: BotApi,
    wake: Arc<Notify>,
    last_sent: HashMap<i64, Instant>,
    window: Vec<Instant>,
    storage: Option<Storage>,
    /// When progress was last refreshed, and each chat's last `upload_photo` action.
    last_refresh: Option<Instant>,
    last_action: HashMap<i64, Instant>,
    /// Names the models in status messages.
    catalog: Arc<crate::domain::Catalog>,
    retry_cap: Duration,
}

impl Sender {
    pub fn new(pool: PgPool, api: BotApi, wake: Arc<Notify>, catalog: Arc<crate::domain::Catalog>) -> Self {
        Self {
            catalog,
            pool,
            api,
            wake,
            last_sent: HashMap::new(),
            window: Vec::new(),
            storage: None,
            last_refresh: None,
            last_action: HashMap::new(),
            retry_cap: RETRY_CAP,
        }
    }

    /// The longest wait between tries of a failed send (`OUTBOX_RETRY_CAP_MS`).
    pub fn with_retry_cap(mut self, cap: Duration) -> Self {
        self.retry_cap = cap.max(Duration::from_millis(1));
        self
    }

    /// Lets rows carry stored files (`{"storage_key": …}` as `photo` or `document`), uploaded
    /// from `storage` as multipart. Without it such rows are dropped.
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Runs until `shutdown` turns true: waits to become the active sender, then sends.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.lead(&mut shutdown).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "outbox sender restarting");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }

    /// Holds the leader lock on its own connection while sending; returns on shutdown.
    async fn lead(&mut self, shutdown: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut leader = self.pool.acquire().await?.detach();
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_LOCK)
                .fetch_one(&mut leader)
                .await?;
            if got {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            if *shutdown.borrow() {
                return Ok(());
            }
        }
        tracing::info!("outbox sender active");
        while !*shutdown.borrow() {
            let busy = self.tick(shutdown).await?;
            if self.last_refresh.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                self.last_refresh = Some(Instant::now());
                self.progress().await?;
            }
            if !busy {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        leader.close().await.ok();
        Ok(())
    }

    /// One pass over the chats with something due; whether anything was sent. Each chat's
    /// head is its oldest pending row, except that a progress edit not due yet lets the rows
    /// behind it pass (a final status edit never does: the photo waits for it). Deliveries go
    /// before status edits. A shutdown during the pass lets it finish (each row is marked right
    /// after Telegram's answer), but cuts a 429 pause short and ends the pass there: the rest
    /// waits for the next sender.
    async fn tick(&mut self, shutdown: &watch::Receiver<bool>) -> anyhow::Result<bool> {
        let newest_paid = rows::newest_paid(&self.pool).await?;
        let heads = rows::heads(&self.pool, BATCH).await?;
        let mut sent_any = false;
        // When a chat with a paid delivery, skipped for its pace, may send again: the pass
        // ends there, so lower classes never hold it longer than one send slot.
        let mut paid_ready: Option<Instant> = None;
        for (row, due) in heads {
            if row.class > 0 && paid_ready.is_some_and(|at| Instant::now() >= at) {
                return Ok(true);
            }
            let paced = self.last_sent.get(&row.chat_id).filter(|t| t.elapsed() < PER_CHAT_INTERVAL);
            if let (Some(last), true, 0) = (paced, due, row.best) {
                let ready = *last + PER_CHAT_INTERVAL;
                paid_ready = Some(paid_ready.map_or(ready, |at| at.min(ready)));
            }
            if !due || paced.is_some() {
                continue;
            }
            self.wait_for_global_slot().await;
            let outcome = self.send(&row).await?;
            if !matches!(outcome, Sent::Waiting | Sent::Skipped) {
                self.last_sent.insert(row.chat_id, Instant::now());
                sent_any = true;
                // A paid delivery behind this row may go once the chat's pace allows.
                if row.best == 0 && row.class > 0 {
                    let ready = Instant::now() + PER_CHAT_INTERVAL;
                    paid_ready = Some(paid_ready.map_or(ready, |at| at.min(ready)));
                }
            }
            // A paid delivery queued meanwhile goes before the rest of this pass.
            if row.class > 0 && rows::newest_paid(&self.pool).await? > newest_paid {
                return Ok(true);
            }
            if let Sent::Pause(pause) = outcome {
                tracing::warn!(?pause, "Telegram asked to slow down");
                let mut stop = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stop| *stop) => {}
                }
                if *shutdown.borrow() {
                    break;
                }
            }
        }
        self.last_sent.retain(|_, t| t.elapsed() < PER_CHAT_INTERVAL);
        Ok(sent_any)
    }

    async fn wait_for_global_slot(&mut self) {
        let second = Duration::from_secs(1);
        self.window.retain(|t| t.elapsed() < second);
        if self.window.len() >= GLOBAL_PER_SECOND {
            if let Some(oldest) = self.window.first() {
                tokio::time::sleep(second.saturating_sub(oldest.elapsed())).await;
            }
            self.window.retain(|t| t.elapsed() < second);
        }
        self.window.push(Instant::now());
    }

    async fn send(&self, row: &Row) -> anyhow::Result<Sent> {
        let (params, status) = match self.prepare(row).await? {
            Ok(prepared) => prepared,
            Err(sent) => return Ok(sent),
        };
        // A broadcast is sent at most once: it leaves 'pending' before the call, so a crash
        // between Telegram's answer and the mark cannot send it again (DESIGN §10).
        if row.class == super::Class::Broadcast as i16 && !rows::claim_once(&self.pool, row.id).await? {
            return Ok(Sent::Skipped);
        }
        let attachment = Attachment::of(&params);
        let answer = match &attachment {
            None => self.api.call(&row.method, &params).await,
            Some(attachment) => match attachment.load(self.storage.as_ref()).await {
                Ok(file) => self.api.call_with_file(&row.method, &params, file).await,
                Err(error) => Err(error),
            },
        };
        let outcome = match answer {
            Ok(result) => {
                if let Some(attachment) = &attachment {
                    attachment.record_file_id(&self.pool, &result).await?;
                }
                self.mark_sent(row.id, result.get("message_id").and_then(Value::as_i64)).await?;
                if let Some((generation, rendered)) = status {
                    self.shown(generation, &rendered).await?;
                }
                return Ok(Sent::Done);
            }
            // The message shows this text already (a repeat after a crash): done.
            Err(ApiError::Refused { code: 400, description, .. })
                if status.is_some() && description.contains("message is not modified") =>
            {
                self.mark_sent(row.id, None).await?;
                return Ok(Sent::Done);
            }
            Err(e) => classify(&e, row, self.retry_cap),
        };
        self.failed(row, outcome).await
    }

    /// The parameters to send `row` with: the message an edit targets, and a status message's
    /// text rendered from its generation now (with what it shows). `Err`: nothing to send now.
    async fn prepare(&self, row: &Row) -> anyhow::Result<Result<(Value, Option<(Uuid, Rendered)>), Sent>> {
        let mut params = row.params.clone();
        if let Some(target) = row.edits {
            match rows::edit_target(&self.pool, target).await? {
                Some((Some(id), _)) => params["message_id"] = id.into(),
                Some((None, state)) if state == "pending" => return Ok(Err(Sent::Waiting)),
                // The message it edits was never sent (dropped): there is nothing to edit.
                _ => {
                    return Ok(Err(self
                        .drop_row(row, "the message it edits was not sent".to_owned())
                        .await?))
                }
            }
        }
        let Some(generation) = row.status_of else {
            return Ok(Ok((params, None)));
        };
        let Some(rendered) =
            status::render_now(&mut *self.pool.acquire().await?, &self.catalog, generation).await?
        else {
            return Ok(Err(self.drop_row(row, "its generation is gone".to_owned()).await?));
        };
        if row.edits.is_some() && rendered.shown.as_deref() == Some(rendered.text.as_str()) {
            self.mark_sent(row.id, None).await?;
            return Ok(Err(Sent::Skipped));
        }
        params["text"] = rendered.text.clone().into();
        if let Some(keyboard) = &rendered.keyboard {
            params["reply_markup"] = keyboard.clone();
        }
        if let Some(map) = params.as_object_mut() {
            map.remove("final");
        }
        Ok(Ok((params, Some((generation, rendered)))))
    }

    /// Telegram did not take the row: tried again later, the chat's queue dropped (blocked), or
    /// the row dropped.
    async fn failed(&self, row: &Row, outcome: Sent) -> anyhow::Result<Sent> {
        match &outcome {
            Sent::Retry(after) | Sent::Pause(after) => {
                rows::retry_later(&self.pool, row.id, outcome_reason(&outcome), *after).await?;
            }
            Sent::Blocked => self.blocked(row).await?,
            Sent::Dropped(reason) => {
                return self.drop_row(row, reason.clone()).await;
            }
            Sent::Done | Sent::Skipped | Sent::Waiting => {}
        }
        Ok(outcome)
    }

    async fn mark_sent(&self, id: i64, message_id: Option<i64>) -> sqlx::Result<()> {
        rows::mark_sent(&self.pool, id, message_id).await
    }

    async fn drop_row(&self, row: &Row, reason: String) -> anyhow::Result<Sent> {
        tracing::warn!(outbox_id = row.id, chat_id = row.chat_id, method = %row.method, %reason, "outbox row dropped");
        rows::mark_dropped(&self.pool, row.id, &reason).await?;
        Ok(Sent::Dropped(reason))
    }

    /// A status text reached Telegram: remembered on the generation. If the generation moved on
    /// while it was being sent, another edit is queued (the change's own edit may have folded
    /// into the row just sent).
    async fn shown(&self, generation: Uuid, rendered: &Rendered) -> sqlx::Result<()> {
        let mut conn = self.pool.acquire().await?;
        if let Some(now) = status::shown(&mut conn, generation, rendered).await? {
            status::touch(&mut conn, generation, now.is_final()).await?;
        }
        Ok(())
    }

    /// Progress beside the queue, with what capacity is left: edits of "generating" messages
    /// (elapsed time), and the `upload_photo` chat action for chats waiting for a picture.
    async fn progress(&mut self) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let pending = status::pending(&mut conn).await?;
        let budget = i64::try_from(GLOBAL_PER_SECOND).unwrap_or(30) - pending;
        status::refresh(&mut conn, budget).await?;
        let chats =
            status::generating_chats(&mut conn, i64::try_from(GLOBAL_PER_SECOND).unwrap_or(30) * 4).await?;
        drop(conn);
        self.last_action.retain(|_, t| t.elapsed() < CHAT_ACTION_EVERY);
        let second = Duration::from_secs(1);
        for chat in chats {
            self.window.retain(|t| t.elapsed() < second);
            if self.window.len() >= GLOBAL_PER_SECOND / 2 {
                break;
            }
            if self.last_action.contains_key(&chat) {
                continue;
            }
            self.window.push(Instant::now());
            self.last_action.insert(chat, Instant::now());
            let params = serde_json::json!({ "chat_id": chat, "action": "upload_photo" });
            if let Err(error) = self.api.call("sendChatAction", &params).await {
                tracing::debug!(chat, %error, "sendChatAction failed");
            }
        }
        Ok(())
    }

    /// The user blocked the bot: mark them inactive and drop what was queued for them, except
    /// paid deliveries (this row too, if it is one), which are parked until they are back.
    async fn blocked(&self, row: &Row) -> anyhow::Result<()> {
        let chat_id = row.chat_id;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        crate::db::users::set_active(&mut tx, chat_id, false).await?;
        rows::drop_chat(&mut tx, chat_id, "bot blocked").await?;
        tx.commit().await?;
        tracing::info!(chat_id, "user blocked the bot: marked inactive; paid deliveries parked");
        Ok(())
    }
}

fn outcome_reason(outcome: &Sent) -> &'static str {
    match outcome {
        Sent::Pause(_) => "429 Too Many Requests",
        _ => "retryable failure",
    }
}

/// What a failed send means for `row`: a paid delivery is never given up on for a transient
/// failure (no attempt limit), other rows after `MAX_ATTEMPTS`; every backoff is capped at `cap`.
fn classify(error: &ApiError, row: &Row, cap: Duration) -> Sent {
    let attempts = row.attempts;
    let backoff = Duration::from_secs(2u64.saturating_pow(attempts.clamp(0, 6) as u32)).min(cap);
    let paid = row.class == 0;
    match error {
        ApiError::Refused { code: 429, retry_after, .. } => {
            Sent::Pause(Duration::from_secs(retry_after.unwrap_or(1)))
        }
        ApiError::Refused { code: 403, .. } => Sent::Blocked,
        ApiError::Refused { code: 400 | 404, description, .. } => Sent::Dropped(description.clone()),
        _ if !paid && attempts + 1 >= MAX_ATTEMPTS => {
            Sent::Dropped(format!("gave up after {MAX_ATTEMPTS} attempts: {error}"))
        }
        _ => Sent::Retry(backoff),
    }
}
