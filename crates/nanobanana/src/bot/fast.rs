//! The intake's common paths at the speed of the database (issue #16): a prompt, `/start` and
//! `/help` of a known user are one read and one call of a server-side function (migration
//! `…221_intake`) that is the update's whole transaction — the claim, the sender touched, for a
//! prompt the caps under the balance lock, the reserve by the ledger's own SQL, the status
//! message and the generation. 2 round trips instead of 9–10.
//!
//! Nothing is decided here that the full path (`inbox::Bot::handle`) would decide otherwise:
//! whatever is not plain — a new, banned or deleted user, a conversation state, a deep link, a
//! model no longer offered, a refusal of any kind, an update id already known — goes to the full
//! path, either before anything is written or by the function raising `NB001`, which rolls its
//! writes back. The full path then handles the update exactly as it always did.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::welcome;
use super::BotError;
use crate::config::Config;
use crate::domain::request::{self as rules, Limits};
use crate::domain::Settings;
use crate::telegram::update::{Content, Incoming, Message};
use crate::texts::Lang;

/// What the fast path did with an update.
#[derive(Debug)]
pub enum Fast {
    /// Handled and committed; the generation it queued, if any.
    Handled { generation: Option<Uuid> },
    /// For the full path. `budget`: the reply budget was already asked for this delivery, and
    /// this was its answer (it must not be spent twice).
    Full { budget: Option<bool> },
}

/// What an update asks that the fast path can answer.
enum Ask<'a> {
    Prompt(&'a str),
    /// `/start` without a deep link, or `/help`.
    Reply(&'a str),
}

/// The SQLSTATE the intake functions raise for "the full path handles this".
const FULL_PATH: &str = "NB001";

/// The user as the one read finds them; `None` for anyone the fast path leaves alone.
#[derive(sqlx::FromRow)]
struct Known {
    language: String,
    settings: Value,
    plain: bool,
    available: i64,
}

/// Tries the fast path for one update.
pub async fn handle(
    pool: &PgPool,
    config: &Config,
    replies: &super::budget::ReplyBudget,
    update_id: i64,
    kind: &str,
    raw: &Value,
    incoming: &Incoming,
) -> Result<Fast, BotError> {
    let Incoming::Message(message) = incoming else { return Ok(Fast::Full { budget: None }) };
    if !config.limits.intake_fast_path {
        return Ok(Fast::Full { budget: None });
    }
    let Some(ask) = ask(message) else { return Ok(Fast::Full { budget: None }) };
    let user = message.from.id;
    // The one read, without locks: the sender, their balance (for `/start`'s welcome), and
    // whether the update id is known (a redelivery is the full path's, and spends no budget).
    let known: Option<Known> = sqlx::query_as(
        "SELECT u.language, u.settings,
                NOT u.is_banned AND u.deleted_at IS NULL
                    AND (u.awaiting IS NULL OR u.awaiting_until <= now())
                    AND NOT EXISTS (SELECT 1 FROM telegram_updates WHERE update_id = $2) AS plain,
                COALESCE(b.credits_available, 0) AS available
         FROM users u LEFT JOIN balances b ON b.user_id = u.telegram_id
         WHERE u.telegram_id = $1",
    )
    .bind(user)
    .bind(update_id)
    .fetch_optional(pool)
    .await?;
    let Some(known) = known.filter(|k| k.plain) else { return Ok(Fast::Full { budget: None }) };
    let Some(lang) = Lang::parse(&known.language) else { return Ok(Fast::Full { budget: None }) };
    let settings = Settings::from_json(&known.settings);
    // Spent before the one call: a muted user's update is recorded by the full path, unanswered.
    if !replies.spend(user).await {
        return Ok(Fast::Full { budget: Some(false) });
    }
    let spent = Fast::Full { budget: Some(true) };
    let sender = Sender { update_id, kind, raw, message, lang, settings: &known.settings };
    let outcome = match ask {
        Ask::Prompt(prompt) => {
            let Some(generation) = prompt_call(pool, config, &sender, &settings, prompt).await? else {
                return Ok(spent);
            };
            call(generation.0).await.map(|done| done.then_some(Some(generation.1)))
        }
        Ask::Reply(name) => {
            let available = known.available;
            let Some(text) = welcome::plain_reply(name, lang, config, available) else { return Ok(spent) };
            let keyboard = welcome::plain_keyboard(lang, config);
            call(reply_call(pool, &sender, &text, keyboard)).await.map(|done| done.then_some(None))
        }
    };
    match outcome {
        Ok(Some(generation)) => Ok(Fast::Handled { generation }),
        Ok(None) => Ok(spent),
        Err(e) => Err(e),
    }
}

/// The update's message as something the fast path answers, if it is.
fn ask(message: &Message) -> Option<Ask<'_>> {
    if !message.private {
        return None;
    }
    match &message.content {
        // A reply may edit a picture (issue 18): the full path's.
        Content::Text(text) if message.reply_to.is_none() => Some(Ask::Prompt(text)),
        Content::Command { name, args } if args.is_empty() && welcome::PLAIN.contains(&name.as_str()) => {
            Some(Ask::Reply(name))
        }
        _ => None,
    }
}

/// Who sent the update, and what the function is told of them.
struct Sender<'a> {
    update_id: i64,
    kind: &'a str,
    raw: &'a Value,
    message: &'a Message,
    lang: Lang,
    settings: &'a Value,
}

type Call<'a> = sqlx::query::QueryScalar<'a, sqlx::Postgres, String, sqlx::postgres::PgArguments>;

/// Runs one intake function: `true` when it handled the update, `false` when the full path
/// must (it raised `NB001`, or the update id is known).
async fn call(query: impl std::future::Future<Output = sqlx::Result<String>>) -> Result<bool, BotError> {
    match query.await {
        Ok(outcome) => Ok(outcome != "known"),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(FULL_PATH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The shared head of every intake call: the update and its sender (`$1`–`$8`).
fn with_sender<'a>(sql: &'a str, s: &'a Sender<'a>) -> Call<'a> {
    let from = &s.message.from;
    sqlx::query_scalar(sql)
        .bind(s.update_id)
        .bind(s.kind)
        .bind(s.raw)
        .bind(from.id)
        .bind(from.username.as_deref())
        .bind(from.first_name.as_deref())
        .bind(s.lang.code())
        .bind(s.settings)
}

fn reply_call<'a>(
    pool: &'a PgPool,
    s: &'a Sender<'a>,
    text: &str,
    keyboard: Value,
) -> impl std::future::Future<Output = sqlx::Result<String>> + 'a {
    let chat = s.message.chat_id;
    let params =
        serde_json::json!({ "chat_id": chat, "text": text, "parse_mode": "HTML", "reply_markup": keyboard });
    let query = with_sender("SELECT intake_reply($1, $2, $3, $4, $5, $6, $7, $8, $9, 'sendMessage', $10)", s)
        .bind(chat)
        .bind(params);
    query.fetch_one(pool)
}

/// The prompt's call and the id of the generation it would create; `None` when the request is
/// not plain (a replaced model, a refusal of the ask itself).
async fn prompt_call<'a>(
    pool: &'a PgPool,
    config: &'a Config,
    s: &'a Sender<'a>,
    settings: &Settings,
    prompt: &'a str,
) -> Result<Option<(impl std::future::Future<Output = sqlx::Result<String>> + 'a, Uuid)>, BotError> {
    let choice = settings.choice(&config.catalog);
    // Several variants or a default style (issue 18) are the full path's.
    if choice.replaced.is_some() || settings.variants > 1 || settings.style.is_some() {
        return Ok(None);
    }
    let limits = Limits {
        max_prompt_chars: config.limits.max_prompt_chars,
        max_references: choice.model.max_references,
        max_in_flight: config.limits.max_in_flight,
        daily_generations: config.limits.daily_generations,
    };
    if rules::check_ask(false, prompt, 0, &limits).is_err() {
        return Ok(None);
    }
    let generation = Uuid::now_v7();
    let deadline = std::time::Duration::from_secs(u64::from(config.limits.generation_deadline_secs))
        .min(crate::jobs::new::MAX_DEADLINE);
    let query = with_sender(
        "SELECT intake_prompt($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                              $19, $20, $21)",
        s,
    )
    .bind(s.message.chat_id)
    .bind(generation)
    .bind(prompt.trim().to_owned())
    .bind(choice.model.key.as_str().to_owned())
    .bind(choice.model.id.clone())
    .bind(choice.size.as_str())
    .bind(choice.ratio)
    .bind(choice.model.price(choice.size).get())
    .bind(deadline)
    .bind(format!("update:{}", s.update_id))
    .bind(i64::from(limits.max_in_flight))
    .bind(i64::from(limits.daily_generations))
    .bind(crate::jobs::pause::NAME);
    Ok(Some((query.fetch_one(pool), generation)))
}
