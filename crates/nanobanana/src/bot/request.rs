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
use crate::ledger;
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

/// What a request adds to the user's words (DESIGN §10): the picture it edits, a style preset,
/// how many variants. The defaults: none, the user's default style, their variants setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    pub parent: Option<Uuid>,
    pub style: Option<&'a str>,
    pub variants: Option<u8>,
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

/// `generation` with `extras`, with the user's settings (`fixed: None`) or `fixed` ones.
#[allow(clippy::too_many_arguments)]
pub async fn generation_extra(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
    fixed: Option<&Settings>,
    extras: &Extras<'_>,
) -> Result<Option<Uuid>, BotError> {
    generation_as(conn, config, lang, banned, ask, fixed, fixed.is_none(), extras).await
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
    generation_as(conn, config, lang, banned, ask, own, true, &Extras::default()).await
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
    generation_as(conn, config, lang, banned, ask, Some(fixed), false, &Extras::default()).await
}

#[allow(clippy::too_many_arguments)]
async fn generation_as(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    banned: bool,
    ask: &Ask<'_>,
    fixed: Option<&Settings>,
    own: bool,
    extras: &Extras<'_>,
) -> Result<Option<Uuid>, BotError> {
    let chosen = match fixed {
        Some(fixed) => fixed.clone(),
        None => settings::load(conn, ask.user).await?,
    };
    let (chosen, shape) = super::variants::shape(chosen, own, extras);
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
    if let Err(refusal) = rules::check_caps_for(&load, available, cost, shape.variants, &limits) {
        return refuse(conn, config, lang, ask.chat, &refusal, "").await;
    }
    let deadline = std::time::Duration::from_secs(u64::from(config.limits.generation_deadline_secs));
    let queued = Queued { choice: &choice, cost, deadline };
    match super::variants::queue(conn, ask, &queued, &shape).await? {
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
pub(super) struct Queued<'a> {
    pub choice: &'a Choice<'a>,
    pub cost: Credits,
    pub deadline: std::time::Duration,
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
