//! The end of a scenario: wait until everything is drained, then check DESIGN §1 on what the
//! users, YooKassa and the database say. Each broken promise is one line in `problems`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use fakes::common::wait::{until_deadline, Recheck};
use serde_json::Value;

use nanobanana::texts::{render, Lang};

use super::system::System;

/// What the run did, for the table.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counts {
    pub updates_sent: usize,
    pub updates_handled: i64,
    pub generations_succeeded: i64,
    pub generations_failed: i64,
    pub photos_in_chats: i64,
    pub deliveries_dropped_blocked: i64,
    pub failures_explained: i64,
    pub payments_succeeded: i64,
    pub payments_canceled: i64,
    pub payments_pending: i64,
    /// Stars orders (one invoice each).
    pub stars_invoices: i64,
    /// Stars charges Telegram made (each to be credited once).
    pub stars_charges: i64,
    /// Charges beyond the first of one order (the user paid an invoice again).
    pub stars_second_charges: i64,
    /// Stars payments started but never charged (declined, expired, abandoned).
    pub stars_unpaid: i64,
    pub refunds_committed: i64,
    pub refunds_released: i64,
    pub refunds_held: i64,
    pub credits_sold: i64,
    pub credits_spent: i64,
    pub credits_refunded: i64,
    pub balances_checked: i64,
    pub outbox_sent: i64,
    pub outbox_dropped: i64,
    pub outbox_dropped_by_reason: BTreeMap<String, i64>,
}

/// Waits (polling, up to `limit`) until nothing is left in flight: Telegram has no update
/// waiting, no generation is queued or processing, no album is gathering, the outbox is empty,
/// no refund is held, and every final YooKassa payment of ours is final in the database too.
pub async fn drain(system: &System, limit: Duration) -> anyhow::Result<Result<(), String>> {
    // What the last look found left, for the report when time runs out.
    let last = std::sync::Mutex::new(Vec::new());
    let last_left = &last;
    let every = Recheck::Every(Duration::from_millis(250));
    let drained = until_deadline(tokio::time::Instant::now() + limit, every, move || async move {
        match leftovers(system).await {
            Ok(left) if left.is_empty() => Some(Ok(())),
            Ok(left) => {
                *last_left.lock().expect("last look") = left;
                None
            }
            Err(error) => Some(Err(error)),
        }
    });
    if let Some(drained) = drained.await {
        return drained.map(Ok);
    }
    let left = last.into_inner().expect("last look");
    // What the database sessions are doing, for whoever reads the failure.
    let sessions: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT state, wait_event_type || ':' || wait_event, left(query, 120) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap_or_default();
    Ok(Err(format!("{}; sessions busy: {sessions:?}", left.join("; "))))
}

async fn leftovers(system: &System) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    let pending = system.tg.pending_updates().len();
    if pending > 0 {
        left.push(format!("{pending} updates not yet accepted by the webhook"));
    }
    let unfinished = [
        ("updates not handled", "SELECT COUNT(*) FROM telegram_updates WHERE state <> 'handled'"),
        (
            "generations unfinished",
            "SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')",
        ),
        ("albums gathering", "SELECT COUNT(*) FROM album_drafts WHERE state = 'gathering'"),
        ("outbox rows pending", "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
        ("refunds held", "SELECT COUNT(*) FROM refunds WHERE status = 'held'"),
    ];
    left.extend(nonzero(system, &unfinished).await?);
    let ours = our_charges(system).await?;
    let unsettled = system
        .yk
        .payments()
        .iter()
        .filter(|p| matches!(p["status"].as_str(), Some("succeeded" | "canceled")))
        .filter(|p| {
            ours.get(p["id"].as_str().unwrap_or_default()).map(String::as_str) != p["status"].as_str()
        })
        .count();
    if unsettled > 0 {
        left.push(format!("{unsettled} final YooKassa payments not yet final in the database"));
    }
    Ok(left)
}

/// "{n} {what}" for each `(what, count query)` whose count is not zero.
async fn nonzero(system: &System, counts: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for (what, sql) in counts {
        let n = system.count(sql).await?;
        if n > 0 {
            found.push(format!("{n} {what}"));
        }
    }
    Ok(found)
}

/// Our charge rows: provider payment id → status.
async fn our_charges(system: &System) -> anyhow::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT payment_id, status FROM payments WHERE provider = 'yookassa'")
            .fetch_all(&system.pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// A generation with its settlements and undeliverable photos:
/// id, user, status, cost, file_id, error, commits, releases, photos dropped (or, paid ones,
/// parked until the user writes again) for a block.
type GenerationRow = (uuid::Uuid, i64, String, i64, Option<String>, Option<String>, i64, i64, i64);

/// A failed generation's status message: id, user, failure key, message id, last error.
type StatusRow = (uuid::Uuid, i64, Option<String>, Option<i64>, Option<String>);

/// Checks every promise; returns the counts and the broken ones.
pub async fn check(
    system: &System,
    updates: &BTreeSet<i64>,
    ever_blocked: &BTreeSet<i64>,
) -> anyhow::Result<(Counts, Vec<String>)> {
    let mut problems = Vec::new();
    let mut counts = Counts { updates_sent: updates.len(), ..Counts::default() };
    handled_once(system, updates, &mut counts, &mut problems).await?;
    // Money is exactly-once, refunds agree with the providers, balances with the journal.
    super::money::check(system, &mut counts, &mut problems).await?;
    let failed_per_user = generations_settled(system, ever_blocked, &mut counts, &mut problems).await?;
    failures_explained(system, ever_blocked, failed_per_user, &mut counts, &mut problems).await?;
    nothing_left_behind(system, &mut counts, &mut problems).await?;
    audit_clean(system, &mut problems).await?;
    Ok((counts, problems))
}

/// Nothing acknowledged is lost: every update the users caused was handled, once.
async fn handled_once(
    system: &System,
    updates: &BTreeSet<i64>,
    counts: &mut Counts,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let handled: Vec<i64> =
        sqlx::query_scalar("SELECT update_id FROM telegram_updates WHERE state = 'handled'")
            .fetch_all(&system.pool)
            .await?;
    counts.updates_handled = handled.len() as i64;
    let handled: BTreeSet<i64> = handled.into_iter().collect();
    let missing: Vec<_> = updates.difference(&handled).take(10).collect();
    if !missing.is_empty() {
        problems.push(format!("updates never handled: {missing:?}"));
    }
    Ok(())
}

/// Every generation ended and settled once, in agreement with its status; returns the costs
/// of the failed ones by user.
async fn generations_settled(
    system: &System,
    ever_blocked: &BTreeSet<i64>,
    counts: &mut Counts,
    problems: &mut Vec<String>,
) -> anyhow::Result<BTreeMap<i64, Vec<i64>>> {
    let generations: Vec<GenerationRow> = sqlx::query_as(
        "SELECT g.id, g.user_id, g.status, g.cost::BIGINT, g.file_id, g.error,
                    (SELECT COUNT(*) FROM transactions t WHERE t.generation_id = g.id AND t.type = 'commit'),
                    (SELECT COUNT(*) FROM transactions t WHERE t.generation_id = g.id AND t.type = 'release'),
                    (SELECT COUNT(*) FROM outbox o WHERE o.method = 'sendPhoto'
                       AND o.params->'photo'->>'generation_id' = g.id::text
                       AND o.state IN ('dropped', 'parked') AND o.last_error = 'bot blocked')
             FROM generations g",
    )
    .fetch_all(&system.pool)
    .await?;
    let photos = photos_in_chats(system);
    let mut failed_per_user: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, user, status, cost, file_id, error, commits, releases, dropped_blocked) in generations {
        match status.as_str() {
            "succeeded" => {
                counts.generations_succeeded += 1;
                if (commits, releases) != (1, 0) {
                    problems.push(format!("succeeded {id}: {commits} commits, {releases} releases"));
                }
                let shown =
                    file_id.as_ref().is_some_and(|f| photos.get(&user).is_some_and(|p| p.contains(f)));
                if shown {
                    counts.photos_in_chats += 1;
                } else if dropped_blocked > 0 && ever_blocked.contains(&user) {
                    counts.deliveries_dropped_blocked += 1;
                } else {
                    problems.push(format!("succeeded {id}: its photo is not in chat {user}"));
                }
            }
            "failed" => {
                counts.generations_failed += 1;
                if (commits, releases) != (0, 1) {
                    problems.push(format!("failed {id}: {commits} commits, {releases} releases"));
                }
                if error.is_none() {
                    problems.push(format!("failed {id}: no error recorded"));
                }
                failed_per_user.entry(user).or_default().push(cost);
            }
            other => problems.push(format!("generation {id} left {other}")),
        }
    }
    Ok(failed_per_user)
}

/// Every failure explained: in place, by the generation's status message (now showing the
/// reason), or without one by a message of its own ("credits returned"), one per failure.
async fn failures_explained(
    system: &System,
    ever_blocked: &BTreeSet<i64>,
    mut failed_per_user: BTreeMap<i64, Vec<i64>>,
    counts: &mut Counts,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let in_place: Vec<StatusRow> = sqlx::query_as(
        "SELECT g.id, g.user_id, g.failure, o.message_id, o.last_error
         FROM generations g JOIN outbox o ON o.id = g.status_outbox_id WHERE g.status = 'failed'",
    )
    .fetch_all(&system.pool)
    .await?;
    for (id, user, failure, message_id, last_error) in in_place {
        let shown = system.tg.chat(user).and_then(|chat| {
            let message = chat.messages.into_iter().find(|m| Some(m.message_id) == message_id)?;
            message.text().map(str::to_owned)
        });
        let reason = failure.as_deref().unwrap_or("failed_retries");
        let explained = shown.is_some_and(|text| {
            [Lang::Ru, Lang::En].into_iter().any(|lang| text.contains(&render(lang, reason, &[])))
        });
        let blocked = ever_blocked.contains(&user)
            && (last_error.as_deref() == Some("bot blocked") || final_edit_dropped(system, id).await?);
        if explained || blocked {
            counts.failures_explained += 1;
        } else {
            problems.push(format!("failed {id}: its status message in chat {user} does not say why"));
        }
        if let Some(costs) = failed_per_user.get_mut(&user) {
            costs.pop();
        }
    }
    for (user, costs) in failed_per_user.into_iter().filter(|(_, c)| !c.is_empty()) {
        let told = failure_messages(system, user, &costs).await?;
        counts.failures_explained += told.min(costs.len() as i64);
        if told < costs.len() as i64 {
            problems.push(format!("user {user}: {} failures, {told} explanations", costs.len()));
        }
    }
    Ok(())
}

/// Nothing left behind; how the outbox ended.
async fn nothing_left_behind(
    system: &System,
    counts: &mut Counts,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let left = [
        ("updates not handled", "SELECT COUNT(*) FROM telegram_updates WHERE state <> 'handled'"),
        ("outbox rows pending", "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
        ("album drafts left", "SELECT COUNT(*) FROM album_drafts WHERE state = 'gathering'"),
    ];
    problems.extend(nonzero(system, &left).await?);
    counts.outbox_sent = system.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'").await?;
    counts.outbox_dropped = system.count("SELECT COUNT(*) FROM outbox WHERE state = 'dropped'").await?;
    // Drops are terminal, not left behind; deliveries and explanations are checked above, so
    // the rest are only shown (e.g. Telegram's "message is not modified" for an edit).
    counts.outbox_dropped_by_reason = sqlx::query_as::<_, (String, i64)>(
        "SELECT COALESCE(left(last_error, 60), '?'), COUNT(*) FROM outbox WHERE state = 'dropped' GROUP BY 1",
    )
    .fetch_all(&system.pool)
    .await?
    .into_iter()
    .collect();
    Ok(())
}

/// The ledger balances: the library's audit and the operator's command agree it is clean.
async fn audit_clean(system: &System, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let report = nanobanana::audit::run(&mut *system.pool.acquire().await?).await?;
    if !report.clean {
        problems.push(format!("audit: {report}"));
    }
    let audit = tokio::process::Command::new(&system.setup.binary)
        .args(["audit", "--json"])
        .env("DATABASE_URL", system.setup.database_url.as_str())
        .env("AUTO_MIGRATE", "false")
        .output()
        .await?;
    if !audit.status.success() {
        problems.push(format!(
            "`nanobanana audit` exited {}: {}",
            audit.status,
            String::from_utf8_lossy(&audit.stdout)
        ));
    }
    Ok(())
}

/// file_ids of the photos in each chat the fake Telegram keeps.
fn photos_in_chats(system: &System) -> HashMap<i64, BTreeSet<String>> {
    let mut photos: HashMap<i64, BTreeSet<String>> = HashMap::new();
    let ids: Vec<i64> = system.tg.state().lock().chats.keys().copied().collect();
    for chat_id in ids {
        let Some(chat) = system.tg.chat(chat_id) else { continue };
        for message in chat.messages.iter().filter(|m| m.kind == "photo") {
            let largest = message.message.get("photo").and_then(Value::as_array).and_then(|s| s.last());
            if let Some(file_id) = largest.and_then(|p| p.get("file_id")).and_then(Value::as_str) {
                photos.entry(chat_id).or_default().insert(file_id.to_owned());
            }
        }
    }
    photos
}

/// Whether the final edit of `generation`'s status message was dropped because of a block.
async fn final_edit_dropped(system: &System, generation: uuid::Uuid) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE status_of = $1 AND state = 'dropped' AND last_error = 'bot blocked'",
    )
    .bind(generation)
    .fetch_one(&system.pool)
    .await?;
    Ok(n > 0)
}

/// How many failure explanations were queued for `user` (sent, or dropped because of a block).
async fn failure_messages(system: &System, user: i64, costs: &[i64]) -> anyhow::Result<i64> {
    use nanobanana::worker::{failure_text, Failure};
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT params->>'text' FROM outbox WHERE chat_id = $1 AND method = 'sendMessage'
           AND (state = 'sent' OR last_error = 'bot blocked')",
    )
    .bind(user)
    .fetch_all(&system.pool)
    .await?;
    let failures = [
        Failure::Blocked,
        Failure::Refused,
        Failure::NoImage,
        Failure::Invalid,
        Failure::RetriesExhausted,
        Failure::Deadline,
    ];
    let distinct: BTreeSet<i64> = costs.iter().copied().collect();
    let expected: BTreeSet<String> = distinct
        .iter()
        .flat_map(|cost| {
            [Lang::Ru, Lang::En]
                .into_iter()
                .flat_map(move |lang| failures.map(|f| failure_text(lang, f, *cost)))
        })
        .collect();
    Ok(texts.iter().filter(|t| expected.contains(*t)).count() as i64)
}
