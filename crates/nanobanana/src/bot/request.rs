//! A generation request (DESIGN §4): under the user's balance row lock — refused if banned,
//! over the in-flight cap or the daily cap, or while generation is paused; otherwise the price
//! of (model, size) is reserved, the generation inserted (keyed to its source so a redelivery
//! cannot create a second one) and its status message queued (`outbox::status`), all in the
//! update's transaction. Short balance: nothing is reserved; the answer shows the balance.
//! The caller signals the workers after the commit.

use sqlx::PgConnection;
use uuid::Uuid;

use super::settings;
use super::BotError;
use crate::config::Config;
use crate::domain::request::{self as rules, Limits, Refusal};
use crate::domain::{CatalogModel, Choice, Credits, Settings};
use crate::jobs::new as generations;
use crate::ledger::{self, LedgerError, Outcome};
use crate::outbox;
use crate::texts::{render, Lang};

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

/// `generation` with the user's settings as already read (`None`: read them here). Settings
/// naming a model the catalog no longer has get the default, and the user is told once.
pub async fn generation_with(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
    own: Option<&Settings>,
) -> Result<Option<Uuid>, BotError> {
    generation_as(conn, config, lang, banned, ask, own, true).await
}

/// `generation` with `fixed` settings instead of the user's (🔁 regenerate asks with the
/// settings of the picture it repeats); nothing about them is saved or told.
pub async fn generation_repeating(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
    fixed: &Settings,
) -> Result<Option<Uuid>, BotError> {
    generation_as(conn, config, lang, banned, ask, Some(fixed), false).await
}

async fn generation_as(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
    fixed: Option<&Settings>,
    own: bool,
) -> Result<Option<Uuid>, BotError> {
    let chosen = match fixed {
        Some(fixed) => fixed.clone(),
        None => settings::load(conn, ask.user).await?,
    };
    let choice = chosen.choice(&config.catalog);
    if own && choice.replaced.is_some() {
        replaced(conn, lang, ask, &chosen, &choice).await?;
    }
    let (model, size) = (choice.model, choice.size);
    let label = model.label(lang == Lang::En, size);
    let limits = limits(config, model);
    if let Err(refusal) = rules::check_ask(banned, ask.prompt, ask.references.len(), &limits) {
        return refuse(conn, config, lang, ask.chat, &refusal, &label).await;
    }
    // Under the balance row lock, one round trip reads the rest: the caps' counts, whether
    // generation is paused, and any debt (the lock comes first, so the counts see every
    // request of this user committed before it).
    let mut available = ledger::lock_balance(conn, ask.user).await?.unwrap_or(0);
    let load = generations::load_of(conn, ask.user, &model.id).await?;
    if let Err(refusal) = rules::check_pause(&load) {
        // Paused for everyone (Gemini's daily quota, an invalid key), or the model is gone:
        // refused before any reservation.
        return refuse(conn, config, lang, ask.chat, &refusal, &label).await;
    }
    if load.owed > 0 {
        // A refund made outside the bot left a debt: repaid first, and it blocks until paid.
        let owed = ledger::debt::repay(conn, ask.user).await?;
        if owed > 0 {
            return refuse(conn, config, lang, ask.chat, &Refusal::Debt { owed }, "").await;
        }
        // After a repayment the balance is less than the lock read.
        available = ledger::lock_balance(conn, ask.user).await?.unwrap_or(0);
    }
    let cost = model.price(size);
    // Read under the lock: a short balance would be refused; no need to ask the ledger.
    if let Err(refusal) = rules::check_caps(&load, available, cost, &limits) {
        return refuse(conn, config, lang, ask.chat, &refusal, "").await;
    }
    let deadline = std::time::Duration::from_secs(u64::from(config.limits.generation_deadline_secs));
    let queued = Queued { choice: &choice, cost, deadline };
    match queue(conn, ask, &queued).await? {
        Ok(id) => Ok(Some(id)),
        Err(refusal) => refuse(conn, config, lang, ask.chat, &refusal, "").await,
    }
}

/// The user's settings named a model the catalog no longer has: they get the default, are told
/// once (the settings are saved with it, so the next request says nothing).
async fn replaced(
    conn: &mut PgConnection,
    lang: Lang,
    ask: &Ask<'_>,
    chosen: &Settings,
    choice: &Choice<'_>,
) -> Result<(), BotError> {
    let old = choice.replaced.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut fixed = chosen.clone();
    fixed.model = Some(choice.model.key.clone());
    fixed.size = choice.size;
    fixed.aspect_ratio = choice.ratio.to_owned();
    settings::save(conn, ask.user, &fixed).await?;
    let model = choice.model.name(lang == Lang::En);
    let text = render(lang, "model_replaced", &[("old", &old), ("model", model)]);
    outbox::send_text(conn, ask.chat, &text, None).await?;
    tracing::info!(user = ask.user, old, new = %choice.model.key, "settings named a model no longer offered");
    Ok(())
}

/// The limits of a request for `model`.
fn limits(config: &Config, model: &CatalogModel) -> Limits {
    Limits {
        max_prompt_chars: config.limits.max_prompt_chars,
        max_references: model.max_references,
        max_in_flight: config.limits.max_in_flight,
        daily_generations: config.limits.daily_generations,
    }
}

/// What a request that passed its checks is queued with.
struct Queued<'a> {
    choice: &'a Choice<'a>,
    cost: Credits,
    deadline: std::time::Duration,
}

/// Reserves the cost, queues the status message and inserts the generation linked to it and
/// to its reference photos. A short balance the ledger finds is a refusal; a second
/// generation from the same source fails the transaction rather than half-write.
async fn queue(
    conn: &mut PgConnection,
    ask: &Ask<'_>,
    queued: &Queued<'_>,
) -> Result<Result<Uuid, Refusal>, BotError> {
    let (user, id, cost) = (ask.user, Uuid::now_v7(), queued.cost);
    let source_key = &ask.source_key;
    let generation = generations::NewGeneration {
        id,
        user_id: user,
        prompt: ask.prompt.trim(),
        model: queued.choice.model.key.clone(),
        model_id: Some(&queued.choice.model.id),
        image_size: Some(queued.choice.size),
        aspect_ratio: queued.choice.ratio,
        cost,
        source_key,
    };
    match ledger::reserve(conn, user, id, cost).await {
        Ok(Outcome::Applied(_)) => {}
        Err(LedgerError::Insufficient { available, .. }) => {
            return Ok(Err(Refusal::ShortBalance { cost, available }))
        }
        Err(e) => return Err(e.into()),
        Ok(Outcome::AlreadyDone) => {
            tracing::error!(user, %id, "generation already reserved");
            return Err(BotError::Inconsistent(format!("generation {id} already reserved")));
        }
    }
    // The status message: rendered from the generation's state when it is sent.
    let status = crate::outbox::status::open(conn, ask.chat, id).await?;
    let references = ask.references;
    if !generations::insert_requested(conn, &generation, Some(queued.deadline), references, Some(status))
        .await?
    {
        // The source already made a generation: the update's own row prevents this; if it ever
        // happens, refuse to half-write by failing the transaction.
        tracing::error!(user, source_key, "generation request could not be recorded");
        return Err(BotError::Inconsistent(format!("source {source_key} already has a generation")));
    }
    Ok(Ok(id))
}

/// Tells the user why the request was refused; a short balance comes with the packs to buy.
async fn refuse(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    chat: i64,
    refusal: &Refusal,
    model: &str,
) -> Result<Option<Uuid>, BotError> {
    let reply = |args: &[(&str, &str)]| render(lang, refusal.text_key(), args);
    let text = match refusal {
        Refusal::Banned | Refusal::EmptyPrompt => reply(&[]),
        Refusal::PromptTooLong { length, max } => {
            reply(&[("length", &length.to_string()), ("max", &max.to_string())])
        }
        Refusal::TooManyReferences { count, max } => {
            reply(&[("count", &count.to_string()), ("max", &max.to_string()), ("model", model)])
        }
        Refusal::ModelUnavailable => reply(&[("model", model)]),
        Refusal::Paused { quota } => {
            let why = if *quota { "progress_paused_quota" } else { "progress_paused_unavailable" };
            reply(&[("reason", &render(lang, why, &[]))])
        }
        Refusal::Debt { owed } => reply(&[("owed", &owed.to_string())]),
        Refusal::TooManyInFlight { count } => reply(&[("count", &count.to_string())]),
        Refusal::DailyCap { cap } => reply(&[("cap", &cap.to_string())]),
        Refusal::ShortBalance { cost, available } => {
            let text = reply(&[("cost", &cost.to_string()), ("available", &available.to_string())]);
            return insufficient(conn, config, lang, chat, &text).await;
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
