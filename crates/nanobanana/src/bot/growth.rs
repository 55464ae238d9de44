//! Growth in the conversation (DESIGN §10): starter credits at the first `/start`, referral
//! and promo links (`/start ref_CODE`, `/start promo_CODE`), `/invite`, `/promo CODE` and the
//! admins' `/promo new|list|disable`. Who may get what is `db::growth`; the credits are bonus
//! rows through the ledger, in the update's transaction, so a redelivered update gives nothing
//! twice.

use sqlx::PgConnection;

use super::BotError;
use crate::config::Config;
use crate::db::growth::{self, BindRefused, NewPromo, PromoRefused, ReferralTerms};
use crate::domain::growth::{PromoName, StartPayload};
use crate::domain::{Credits, TelegramId};
use crate::ledger::{self, BonusSource};
use crate::texts::{render, Lang};

/// What `/start` adds to the welcome: starter credits, a referral binding, a promo code, each a
/// paragraph to append to the welcome message. Runs before the welcome reads the balance.
pub async fn on_start(
    conn: &mut PgConnection,
    config: &Config,
    user: TelegramId,
    lang: Lang,
    args: &str,
) -> Result<String, BotError> {
    let mut notes = Vec::new();
    match StartPayload::parse(args) {
        StartPayload::Referral(code) => {
            let terms = ReferralTerms {
                bonus: config.growth.referral_bonus,
                percent: config.growth.referral_percent,
            };
            notes.push(bind(conn, user, lang, &code, terms).await?);
        }
        StartPayload::Promo(name) => notes.push(redeem(conn, user, lang, &name).await?),
        StartPayload::Other => {}
    }
    if let Some(note) = starter(conn, config, user, lang).await? {
        notes.insert(0, note);
    }
    Ok(notes.iter().map(|note| format!("\n\n{note}")).collect())
}

/// Starter credits, once per Telegram account ever (the claim outlives `/deleteme`).
async fn starter(
    conn: &mut PgConnection,
    config: &Config,
    user: TelegramId,
    lang: Lang,
) -> Result<Option<String>, BotError> {
    let Ok(credits) = Credits::new(config.growth.starter_credits) else {
        return Ok(None);
    };
    if !growth::claim_starter(conn, user).await? {
        return Ok(None);
    }
    let key = format!("starter:{user}");
    let granted =
        ledger::grant_bonus(conn, user, credits, BonusSource::Starter, &key, "starter credits").await?;
    Ok(granted.applied().map(|_| render(lang, "starter_granted", &[("credits", &credits.to_string())])))
}

async fn bind(
    conn: &mut PgConnection,
    user: TelegramId,
    lang: Lang,
    code: &str,
    terms: ReferralTerms,
) -> Result<String, BotError> {
    let key = match growth::bind_referral(conn, user, code, terms).await? {
        Ok(referrer) => {
            tracing::info!(user, referrer, "referral bound");
            "referral_bound"
        }
        Err(BindRefused::UnknownCode) => "referral_refused_unknown",
        Err(BindRefused::SelfReferral) => "referral_refused_self",
        Err(BindRefused::AlreadyBound) => "referral_refused_bound",
        Err(BindRefused::NotNew) => "referral_refused_not_new",
    };
    Ok(render(lang, key, &[]))
}

/// `/invite`: the link, who joined and paid, what it earned.
pub async fn invite(
    conn: &mut PgConnection,
    config: &Config,
    user: TelegramId,
    lang: Lang,
) -> Result<String, BotError> {
    let code = growth::referral_code(conn, user).await?;
    let stats = growth::referral_stats(conn, user).await?;
    let link = config.growth.start_link(&format!("ref_{code}"));
    Ok(render(
        lang,
        "invite",
        &[
            ("link", &link),
            ("bonus", &config.growth.referral_bonus.to_string()),
            ("percent", &config.growth.referral_percent.to_string()),
            ("joined", &stats.joined.to_string()),
            ("paid", &stats.paid.to_string()),
            ("earned", &stats.earned.to_string()),
        ],
    ))
}

/// `/promo …`: an admin's `new|list|disable`, or anyone's `CODE`.
pub async fn promo(
    conn: &mut PgConnection,
    config: &Config,
    user: TelegramId,
    lang: Lang,
    admin: bool,
    args: &str,
) -> Result<String, BotError> {
    let mut words = args.split_whitespace();
    let first = words.next().unwrap_or("");
    match first {
        "new" | "list" | "disable" if admin => {
            let rest: Vec<&str> = words.collect();
            admin_promo(conn, config, &format!("telegram:{user}"), lang, first, &rest).await
        }
        "" => Ok(render(lang, "promo_usage", &[])),
        code => match PromoName::parse(code) {
            Some(name) => redeem(conn, user, lang, &name).await,
            None => Ok(render(lang, "promo_invalid", &[])),
        },
    }
}

/// Redeems `name` for `user`: once per user, within the code's limit and dates, wrong guesses
/// rate-limited.
async fn redeem(
    conn: &mut PgConnection,
    user: TelegramId,
    lang: Lang,
    name: &PromoName,
) -> Result<String, BotError> {
    if !growth::may_guess(conn, user).await? {
        return Ok(render(lang, "promo_rate_limited", &[]));
    }
    let (code_id, credits) = match growth::redeem_promo(conn, user, name.as_str()).await? {
        Ok(taken) => taken,
        Err(refused) => {
            if refused == PromoRefused::Unknown {
                growth::wrong_guess(conn, user).await?;
            }
            return Ok(render(lang, refusal_key(refused), &[]));
        }
    };
    let Ok(amount) = Credits::new(credits) else {
        return Err(BotError::Inconsistent(format!("promo code {code_id} gives {credits} credits")));
    };
    let key = format!("promo:{code_id}:{user}");
    let reason = format!("promo code {}", name.as_str());
    ledger::grant_bonus(conn, user, amount, BonusSource::Promo, &key, &reason).await?;
    tracing::info!(user, code = name.as_str(), credits, "promo code redeemed");
    Ok(render(lang, "promo_redeemed", &[("credits", &credits.to_string())]))
}

fn refusal_key(refused: PromoRefused) -> &'static str {
    match refused {
        PromoRefused::Unknown => "promo_unknown",
        PromoRefused::Disabled => "promo_disabled",
        PromoRefused::Expired => "promo_expired",
        PromoRefused::UsedUp => "promo_used_up",
        PromoRefused::AlreadyRedeemed => "promo_already",
    }
}

/// `/promo new CODE CREDITS [uses] [days]`, `/promo list`, `/promo disable CODE` — the same
/// calls as `nanobanana admin promo`.
pub async fn admin_promo(
    conn: &mut PgConnection,
    config: &Config,
    actor: &str,
    lang: Lang,
    action: &str,
    args: &[&str],
) -> Result<String, BotError> {
    match (action, args) {
        ("new", [code, credits, rest @ ..]) if rest.len() <= 2 => {
            promo_new(conn, config, actor, lang, code, credits, rest).await
        }
        ("list", []) => promo_list(conn, lang).await,
        ("disable", [code]) => {
            let found = growth::disable_promo(conn, code).await?;
            let key = if found { "admin_promo_disabled" } else { "admin_promo_not_found" };
            Ok(render(lang, key, &[("code", &code.to_ascii_lowercase())]))
        }
        _ => Ok(render(lang, "admin_promo_usage", &[])),
    }
}

/// `/promo new CODE CREDITS [USES] [DAYS]`: the code created, or why not.
async fn promo_new(
    conn: &mut PgConnection,
    config: &Config,
    actor: &str,
    lang: Lang,
    code: &str,
    credits: &str,
    rest: &[&str],
) -> Result<String, BotError> {
    let Some(name) = PromoName::parse(code) else {
        return Ok(render(lang, "promo_invalid", &[]));
    };
    let Ok(credits) = Credits::parse(credits) else {
        return Ok(render(lang, "admin_bad_credits", &[("value", credits)]));
    };
    let number = |at: usize, default: Option<u32>| match rest.get(at) {
        None => Ok(default),
        Some(raw) => raw.parse::<u32>().ok().filter(|n| *n > 0).map(Some).ok_or(*raw),
    };
    let (uses, days) = match (number(0, Some(1)), number(1, None)) {
        (Ok(uses), Ok(days)) => (uses.unwrap_or(1), days),
        (Err(bad), _) | (_, Err(bad)) => {
            return Ok(render(lang, "admin_promo_bad_number", &[("value", bad)]));
        }
    };
    let new = NewPromo {
        code: name.as_str(),
        credits: credits.get(),
        max_uses: i64::from(uses),
        days,
        created_by: actor,
    };
    let Some(made) = growth::create_promo(conn, &new).await? else {
        return Ok(render(lang, "admin_promo_exists", &[("code", name.as_str())]));
    };
    let expiry = match made.expires_at {
        Some(at) => {
            render(lang, "admin_promo_expires", &[("at", &at.format("%Y-%m-%d %H:%M UTC").to_string())])
        }
        None => render(lang, "admin_promo_no_expiry", &[]),
    };
    let link = config.growth.start_link(&format!("promo_{}", made.code));
    Ok(render(
        lang,
        "admin_promo_created",
        &[
            ("code", &made.code),
            ("credits", &made.credits.to_string()),
            ("uses", &made.max_uses.to_string()),
            ("expiry", &expiry),
            ("link", &link),
        ],
    ))
}

/// `/promo list`: every code with its use and state.
async fn promo_list(conn: &mut PgConnection, lang: Lang) -> Result<String, BotError> {
    let codes = growth::list_promos(conn).await?;
    if codes.is_empty() {
        return Ok(render(lang, "admin_promo_list_empty", &[]));
    }
    let now = chrono::Utc::now();
    let lines: Vec<String> = codes
        .iter()
        .map(|c| {
            let state = if c.disabled {
                "admin_promo_state_disabled"
            } else if c.expires_at.is_some_and(|at| at <= now) {
                "admin_promo_state_expired"
            } else {
                "admin_promo_state_active"
            };
            render(
                lang,
                "admin_promo_item",
                &[
                    ("code", &c.code),
                    ("credits", &c.credits.to_string()),
                    ("used", &c.used.to_string()),
                    ("uses", &c.max_uses.to_string()),
                    ("state", &render(lang, state, &[])),
                ],
            )
        })
        .collect();
    Ok(lines.join("\n"))
}
