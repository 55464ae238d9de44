//! A generation request (DESIGN §4): under the user's balance row lock — refused if banned,
//! over the in-flight cap or the daily cap, or while generation is paused; otherwise the price
//! of (model, size) is reserved, the generation inserted (keyed to its source so a redelivery
//! cannot create a second one) and its status message queued (`progress`), all in the
//! update's transaction. Short balance: nothing is reserved; the answer shows the balance.
//! The caller signals the workers after the commit.

use super::BotError;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::model_name;
use super::settings;
use crate::texts::{render, Lang};
use crate::config::Config;
use crate::jobs::new as generations;
use crate::domain::{Model, Settings};
use crate::ledger::{self, LedgerError, Outcome};
use crate::outbox;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub user: i64,
    pub chat: i64,
    pub prompt: &'a str,
    /// Telegram file ids of reference images, in the user's order.
    pub references: &'a [String],
    /// What created it (the update, or the album): a second request from it is refused by the
    /// database.
    pub source_key: String,
}

pub async fn generation(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
) -> Result<Option<Uuid>, BotError> {
    generation_with(conn, config, lang, banned, ask, None).await
}

/// `generation` with `fixed` settings instead of the user's current ones (🔁 regenerate asks
/// with the settings of the picture it repeats).
pub async fn generation_with(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
    fixed: Option<&Settings>,
) -> Result<Option<Uuid>, BotError> {
    let (user, chat) = (ask.user, ask.chat);
    let reply = |key: &str, args: &[(&str, &str)]| render(lang, key, args);
    let prompt = ask.prompt.trim();
    let length = prompt.chars().count();
    let max = config.limits.max_prompt_chars as usize;
    let chosen = match fixed {
        Some(fixed) => fixed.clone(),
        None => settings::load(conn, user).await?,
    };
    let (model, size) = (chosen.model, chosen.image_size());
    let max_references = match model {
        Model::Pro => config.limits.max_references_pro,
        Model::Flash => config.limits.max_references_flash,
    } as usize;
    let refusal = if banned {
        Some(reply("banned", &[]))
    } else if prompt.is_empty() {
        Some(reply("prompt_empty", &[]))
    } else if length > max {
        Some(reply("prompt_too_long", &[("length", &length.to_string()), ("max", &max.to_string())]))
    } else if ask.references.len() > max_references {
        let (count, max) = (ask.references.len().to_string(), max_references.to_string());
        Some(reply(
            "too_many_references",
            &[("count", &count), ("max", &max), ("model", &model_name(model, size))],
        ))
    } else {
        None
    };
    if let Some(text) = refusal {
        outbox::send_text(conn, chat, &text, None).await?;
        return Ok(None);
    }
    // Under the balance row lock, one round trip reads the rest: the caps' counts, whether
    // generation is paused, and any debt (the lock comes first, so the counts see every
    // request of this user committed before it).
    let available = ledger::lock_balance(conn, user).await?.unwrap_or(0);
    let (in_flight, today, paused, owed): (i64, i64, Option<String>, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'processing')),
                COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now())),
                (SELECT reason FROM service_state WHERE name = $2),
                COALESCE((SELECT owed FROM credit_debts WHERE user_id = $1), 0)
         FROM generations WHERE user_id = $1",
    )
    .bind(user)
    .bind(crate::jobs::pause::NAME)
    .fetch_one(&mut *conn)
    .await?;
    let refusal = if let Some(reason) = paused {
        // Generation is paused for everyone (Gemini's daily quota, an invalid key): refused
        // before any reservation.
        let why = if reason.starts_with("daily_quota") { "quota" } else { "unavailable" };
        Some(reply("progress_paused", &[("reason", &reply(&format!("progress_paused_{why}"), &[]))]))
    } else if owed > 0 {
        // A refund made outside the bot left a debt: repaid first, and it blocks until paid.
        match crate::ledger::debt::repay(conn, user).await? {
            0 => None,
            owed => Some(reply("debt_blocked", &[("owed", &owed.to_string())])),
        }
    } else {
        None
    };
    if let Some(text) = refusal {
        outbox::send_text(conn, chat, &text, None).await?;
        return Ok(None);
    }
    // After a repayment the balance is less than the lock read.
    let available = if owed > 0 { ledger::lock_balance(conn, user).await?.unwrap_or(0) } else { available };
    let cost = config.pricing.prices.get(model, size);
    let short =
        || reply("insufficient", &[("cost", &cost.to_string()), ("available", &available.to_string())]);
    let text = if in_flight >= i64::from(config.limits.max_in_flight) {
        reply("too_many_in_flight", &[("count", &in_flight.to_string())])
    } else if today >= i64::from(config.limits.daily_generations) {
        reply("daily_cap", &[("cap", &config.limits.daily_generations.to_string())])
    } else if available < cost.get() {
        // Read under the lock: the reservation would be refused; no need to ask the ledger.
        return insufficient(conn, config, lang, chat, &short()).await;
    } else {
        let id = Uuid::now_v7();
        let deadline = std::time::Duration::from_secs(u64::from(config.limits.generation_deadline_secs));
        let source_key = &ask.source_key;
        let generation = generations::NewGeneration {
            id,
            user_id: user,
            prompt,
            model,
            image_size: size,
            aspect_ratio: &chosen.aspect_ratio,
            cost,
            source_key,
        };
        let reserved = ledger::reserve(conn, user, id, cost).await;
        // The status message (rendered from the generation's state when it is sent), then the
        // generation linked to it and to its reference photos.
        let inserted = match reserved {
            Ok(Outcome::Applied(_)) => {
                let status = crate::outbox::status::open(conn, chat, id).await?;
                let references = ask.references;
                generations::insert_requested(conn, &generation, Some(deadline), references, Some(status)).await?
            }
            _ => false,
        };
        match reserved {
            Ok(Outcome::Applied(_)) if inserted => return Ok(Some(id)),
            Err(LedgerError::Insufficient { .. }) => {
                return insufficient(conn, config, lang, chat, &short()).await
            }
            Err(e) => return Err(e.into()),
            Ok(Outcome::Applied(_)) => {
                // The source already made a generation: the update's own row prevents this; if
                // it ever happens, refuse to half-write by failing the transaction.
                tracing::error!(user, source_key, "generation request could not be recorded");
                return Err(BotError::Inconsistent(format!("source {source_key} already has a generation")));
            }
            Ok(Outcome::AlreadyDone) => {
                tracing::error!(user, %id, "generation already reserved");
                return Err(BotError::Inconsistent(format!("generation {id} already reserved")));
            }
        }
    };
    outbox::send_text(conn, chat, &text, None).await?;
    Ok(None)
}

/// A short balance: what it costs and what is there, with the packs to buy as buttons.
async fn insufficient(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    chat: i64,
    text: &str,
) -> Result<Option<Uuid>, BotError> {
    let (_, packs) = crate::bot::buy::screen(lang, config);
    let has_packs = packs["inline_keyboard"].as_array().is_some_and(|rows| !rows.is_empty());
    outbox::send_text(conn, chat, text, has_packs.then_some(packs)).await?;
    Ok(None)
}
