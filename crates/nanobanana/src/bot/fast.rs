//! The intake's common paths at the speed of the database (issue #16): a prompt, `/start`,
//! `/help` and a settings button of a known user are one read and one call of a server-side
//! function (migrations `…221_intake`, `…222_intake_setting`) that is the update's whole
//! transaction — the claim, the sender touched, for a prompt the caps under the balance lock,
//! the reserve by the ledger's own SQL, the status message and the generation. 2 round trips
//! instead of 9–10.
//!
//! Nothing is decided here that the full path (`inbox::Bot::handle`) would decide otherwise:
//! whatever is not plain — a new, banned or deleted user, a conversation state, a deep link, a
//! model no longer offered, a refusal of any kind, an update id already known — goes to the full
//! path, either before anything is written or by the function raising `NB001`, which rolls its
//! writes back. The full path then handles the update exactly as it always did.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::senders::Remembered;
pub use super::senders::Senders;
use super::settings as screen;
use super::welcome;
use super::BotError;
use crate::config::Config;
use crate::domain::request::{self as rules, Limits};
use crate::domain::{Button, SettingChange, Settings};
use crate::telegram::update::{Content, From, Incoming, Message};
use crate::texts::{render, Lang};

/// What the fast path did with an update.
#[derive(Debug)]
pub enum Fast {
    /// Handled and committed; the generation it queued, if any, and the toast of a button.
    Handled { generation: Option<Uuid>, callback_answer: Option<String> },
    /// For the full path. `budget`: the reply budget was already asked for this delivery, and
    /// this was its answer (it must not be spent twice).
    Full { budget: Option<bool> },
}

/// What an update asks that the fast path can answer.
enum Ask<'a> {
    Prompt(&'a str),
    /// `/start` without a deep link, or `/help`.
    Reply(&'a str),
    /// A settings button under the settings message `message_id`.
    Setting {
        change: SettingChange,
        message_id: i64,
    },
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
    /// Google's ids Gemini does not serve now (`jobs::availability::missing`).
    missing: Vec<String>,
    /// Whether the account has had its starter credits (a first `/start` grants them: the full
    /// path's).
    starter_claimed: bool,
}

/// What the fast path works with.
pub struct Context<'a> {
    pub pool: &'a PgPool,
    pub config: &'a Config,
    pub replies: &'a super::budget::ReplyBudget,
    pub senders: &'a Senders,
}

/// Tries the fast path for one update.
pub async fn handle(
    cx: &Context<'_>,
    update_id: i64,
    kind: &str,
    raw: &Value,
    incoming: &Incoming,
) -> Result<Fast, BotError> {
    let full = || Ok(Fast::Full { budget: None });
    if !cx.config.limits.intake_fast_path {
        return full();
    }
    let Some((from, chat, ask)) = classify(incoming) else { return full() };
    if let Ask::Prompt(prompt) = ask {
        if let Some(remembered) = cx.senders.get(from.id) {
            return prompt_remembered(cx, update_id, kind, raw, (from, chat), &remembered, prompt).await;
        }
    }
    let known = read(cx.pool, from.id, update_id).await?;
    let Some(known) = known.filter(|k| k.plain) else { return full() };
    if matches!(ask, Ask::Reply("start")) && cx.config.growth.starter_credits > 0 && !known.starter_claimed {
        return full();
    }
    let Some(lang) = Lang::parse(&known.language) else { return full() };
    cx.senders
        .remember(from.id, Remembered { language: known.language.clone(), settings: known.settings.clone() });
    let settings = Settings::from_json(&known.settings);
    let mut spent = Fast::Full { budget: None };
    if matches!(ask, Ask::Prompt(_) | Ask::Reply(_)) {
        // Spent before the one call: a muted user's update is recorded by the full path,
        // unanswered.
        if !cx.replies.spend(from.id).await {
            return Ok(Fast::Full { budget: Some(false) });
        }
        spent = Fast::Full { budget: Some(true) };
    }
    let sender = Sender { update_id, kind, raw, from, chat, lang, settings: &known.settings };
    let Some((query, generation, callback_answer)) = call_of(cx.config, &sender, &known, &settings, ask)?
    else {
        // The full path's, with the budget as spent above (a setting's: not asked).
        return Ok(spent);
    };
    Ok(match call(query.fetch_one(cx.pool)).await? {
        Called::Done => Fast::Handled { generation, callback_answer },
        // Read as not known a moment ago: a concurrent delivery of the same update.
        Called::Known => spent,
        Called::Full => {
            cx.senders.forget(from.id);
            spent
        }
    })
}

/// An ask's one call, the generation it would queue and a button's toast.
type Handling<'a> = (Call<'a>, Option<Uuid>, Option<String>);

/// The one call that handles `ask`, the generation it would queue and a button's toast; `None`
/// when the ask is not plain after all (the full path's).
fn call_of<'a>(
    config: &'a Config,
    sender: &'a Sender<'a>,
    known: &Known,
    settings: &Settings,
    ask: Ask<'a>,
) -> Result<Option<Handling<'a>>, BotError> {
    Ok(match ask {
        Ask::Prompt(prompt) => prompt_call(config, sender, settings, prompt)?
            .map(|(query, generation)| (query, Some(generation), None)),
        Ask::Reply(name) => welcome::plain_reply(name, sender.lang, config, known.available).map(|text| {
            let keyboard = welcome::plain_keyboard(sender.lang, config);
            (reply_call(sender, &text, keyboard), None, None)
        }),
        Ask::Setting { change, message_id } => {
            setting_call(config, sender, &known.missing, settings, change, message_id)
                .map(|(query, toast)| (query, None, Some(toast)))
        }
    })
}

/// A prompt of a user the fast path served before: one round trip. What it remembered is
/// checked by the function (a change of language or settings, a ban, a conversation state all
/// raise `NB001`); a miss is forgotten and goes to the full path.
async fn prompt_remembered(
    cx: &Context<'_>,
    update_id: i64,
    kind: &str,
    raw: &Value,
    (from, chat): (&From, i64),
    remembered: &Remembered,
    prompt: &str,
) -> Result<Fast, BotError> {
    let Some(lang) = Lang::parse(&remembered.language) else {
        cx.senders.forget(from.id);
        return Ok(Fast::Full { budget: None });
    };
    if !cx.replies.spend(from.id).await {
        return Ok(Fast::Full { budget: Some(false) });
    }
    let spent = Fast::Full { budget: Some(true) };
    let sender = Sender { update_id, kind, raw, from, chat, lang, settings: &remembered.settings };
    let settings = Settings::from_json(&remembered.settings);
    let Some((query, generation)) = prompt_call(cx.config, &sender, &settings, prompt)? else {
        return Ok(spent);
    };
    Ok(match call(query.fetch_one(cx.pool)).await? {
        Called::Done => Fast::Handled { generation: Some(generation), callback_answer: None },
        Called::Known => {
            // A redelivery (nothing read first this time): it spends no budget.
            cx.replies.give_back(from.id).await;
            Fast::Full { budget: None }
        }
        Called::Full => {
            cx.senders.forget(from.id);
            spent
        }
    })
}

/// The sender, chat and ask of an update the fast path may answer.
fn classify(incoming: &Incoming) -> Option<(&From, i64, Ask<'_>)> {
    match incoming {
        Incoming::Message(message) => Some((&message.from, message.chat_id, ask(message)?)),
        Incoming::Callback { from, chat_id: Some(chat), message_id: Some(message_id), data, .. } => {
            match Button::parse(data)? {
                Button::Setting(change) => {
                    Some((from, *chat, Ask::Setting { change, message_id: *message_id }))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The one read, without locks: the sender, their balance (for `/start`'s welcome), the models
/// Gemini does not serve (for the settings screen), and whether the update id is known (a
/// redelivery is the full path's, and spends no budget).
async fn read(pool: &PgPool, user: i64, update_id: i64) -> sqlx::Result<Option<Known>> {
    sqlx::query_as(&format!(
        "SELECT u.language, u.settings,
                NOT u.is_banned AND u.deleted_at IS NULL
                    AND (u.awaiting IS NULL OR u.awaiting_until <= now())
                    AND NOT EXISTS (SELECT 1 FROM telegram_updates WHERE update_id = $2) AS plain,
                COALESCE(b.credits_available, 0) AS available,
                ARRAY(SELECT model_id FROM unavailable_models ORDER BY model_id) AS missing,
                {} AS starter_claimed
         FROM users u LEFT JOIN balances b ON b.user_id = u.telegram_id
         WHERE u.telegram_id = $1",
        crate::db::growth::starter_claimed_sql()
    ))
    .bind(user)
    .bind(update_id)
    .fetch_optional(pool)
    .await
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
    from: &'a From,
    chat: i64,
    lang: Lang,
    settings: &'a Value,
}

type Call<'a> = sqlx::query::QueryScalar<'a, sqlx::Postgres, String, sqlx::postgres::PgArguments>;

/// How an intake function ended.
enum Called {
    Done,
    /// The update id is known: nothing written.
    Known,
    /// It raised `NB001`: its writes rolled back, the full path decides.
    Full,
}

async fn call(query: impl std::future::Future<Output = sqlx::Result<String>>) -> Result<Called, BotError> {
    match query.await {
        Ok(outcome) if outcome == "known" => Ok(Called::Known),
        Ok(_) => Ok(Called::Done),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(FULL_PATH) => Ok(Called::Full),
        Err(e) => Err(e.into()),
    }
}

/// The shared head of every intake call: the update and its sender (`$1`–`$8`).
fn with_sender<'a>(sql: &'a str, s: &'a Sender<'a>) -> Call<'a> {
    let from = s.from;
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

fn reply_call<'a>(s: &'a Sender<'a>, text: &str, keyboard: Value) -> Call<'a> {
    let params = serde_json::json!({ "chat_id": s.chat, "text": text, "parse_mode": "HTML", "reply_markup": keyboard });
    with_sender("SELECT intake_reply($1, $2, $3, $4, $5, $6, $7, $8, $9, 'sendMessage', $10)", s)
        .bind(s.chat)
        .bind(params)
}

/// A settings button's call and its toast; `None` when the button changes nothing.
fn setting_call<'a>(
    config: &Config,
    s: &'a Sender<'a>,
    missing: &[String],
    settings: &Settings,
    change: SettingChange,
    message_id: i64,
) -> Option<(Call<'a>, String)> {
    let next = screen::changed(config, missing, settings, change)?;
    let (text, keyboard) = screen::screen(s.lang, config, missing, &next);
    let params = serde_json::json!({
        "chat_id": s.chat, "message_id": message_id, "text": text,
        "parse_mode": "HTML", "reply_markup": keyboard,
    });
    let query = with_sender("SELECT intake_setting($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", s)
        .bind(s.chat)
        .bind(next.to_json())
        .bind(params);
    Some((query, render(s.lang, "settings_saved", &[])))
}

/// The prompt's call and the id of the generation it would create; `None` when the request is
/// not plain (a replaced model, a refusal of the ask itself).
fn prompt_call<'a>(
    config: &'a Config,
    s: &'a Sender<'a>,
    settings: &Settings,
    prompt: &'a str,
) -> Result<Option<(Call<'a>, Uuid)>, BotError> {
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
    .bind(s.chat)
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
    Ok(Some((query, generation)))
}
