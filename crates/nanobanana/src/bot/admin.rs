//! Admin commands in the chat, for `ADMIN_IDS` only: `/grant`, `/user`, `/ban`, `/unban`,
//! `/stats`, `/broadcast` (`bot::broadcast`), `/panel` (a one-time login link to the web panel). The caller checks the sender is an admin; everyone else gets "unknown command".
//! Arguments are parsed here and a bad one is answered with what is wrong; credits move only
//! through `ledger::adjust`, keyed to the update so a redelivered update cannot grant twice.

use sqlx::PgConnection;

use super::BotError;
use crate::db::users;
use crate::domain::{Credits, TelegramId};
use crate::ledger::{self, Adjustment, Direction, LedgerError, Outcome, Reason};
use crate::outbox;
use crate::texts::{render, Lang};

/// The admin commands this module answers.
pub const COMMANDS: &[&str] = &["grant", "user", "ban", "unban", "stats", "broadcast", "panel"];

/// Who is asking and in which update.
pub struct Caller {
    pub admin: TelegramId,
    pub lang: Lang,
    pub update_id: i64,
}

/// The answer to admin command `name` with `args`.
pub async fn handle(
    conn: &mut PgConnection,
    config: &crate::config::Config,
    caller: &Caller,
    name: &str,
    args: &str,
) -> Result<String, BotError> {
    let lang = caller.lang;
    match name {
        "grant" => grant(conn, caller, args).await,
        "stats" => super::stats::render_stats(conn, config, lang).await,
        "broadcast" => super::broadcast::handle(conn, config, caller.admin, lang, args, None).await,
        "panel" => panel_link(conn, config, caller).await,
        _ => {
            let Some(id) = args.split_whitespace().next() else {
                return Ok(render(lang, "admin_id_usage", &[("command", name)]));
            };
            let Ok(id) = id.parse::<TelegramId>() else {
                return Ok(render(lang, "admin_bad_user_id", &[("value", id)]));
            };
            match name {
                "ban" | "unban" => set_banned(conn, lang, id, name == "ban").await,
                _ => show(conn, lang, id).await,
            }
        }
    }
}

/// `/grant <user> <credits> <reason…>`.
async fn grant(conn: &mut PgConnection, caller: &Caller, args: &str) -> Result<String, BotError> {
    let lang = caller.lang;
    let mut parts = args.splitn(3, char::is_whitespace);
    let (Some(user), Some(credits)) = (parts.next().filter(|p| !p.is_empty()), parts.next()) else {
        return Ok(render(lang, "admin_grant_usage", &[]));
    };
    let Ok(user) = user.parse::<TelegramId>() else {
        return Ok(render(lang, "admin_bad_user_id", &[("value", user)]));
    };
    let Ok(credits) = Credits::parse(credits) else {
        return Ok(render(lang, "admin_bad_credits", &[("value", credits)]));
    };
    let Ok(reason) = Reason::parse(parts.next().unwrap_or("")) else {
        return Ok(render(lang, "admin_bad_reason", &[]));
    };
    let Some(target) = users::find(conn, user).await? else {
        return Ok(render(lang, "admin_unknown_user", &[("id", &user.to_string())]));
    };
    let actor = format!("telegram:{}", caller.admin);
    let key = format!("telegram-grant:{}:{}", caller.update_id, caller.admin);
    let adjustment = Adjustment {
        user_id: user,
        direction: Direction::Grant,
        credits,
        reason: &reason,
        actor: &actor,
        idempotency_key: &key,
    };
    let entry = match ledger::adjust(conn, &adjustment).await {
        Ok(Outcome::Applied(entry)) => entry,
        Ok(Outcome::AlreadyDone) | Err(LedgerError::KeyReused(_)) => {
            return Ok(render(lang, "admin_grant_repeat", &[]));
        }
        Err(LedgerError::UnknownUser(_)) => {
            return Ok(render(lang, "admin_unknown_user", &[("id", &user.to_string())]));
        }
        Err(other) => return Err(other.into()),
    };
    tracing::info!(admin = caller.admin, user, credits = credits.get(), "credits granted in the chat");
    let available = entry.available_after.to_string();
    let credits = credits.to_string();
    let target_lang = user_lang(conn, target.telegram_id).await?;
    let note = render(target_lang, "granted_to_user", &[("credits", &credits), ("available", &available)]);
    outbox::send_text(conn, user, &note, None).await?;
    Ok(render(
        lang,
        "admin_granted",
        &[("credits", &credits), ("id", &user.to_string()), ("available", &available)],
    ))
}

/// `/panel`: a signed link, valid 5 minutes and once, that logs this admin into the web panel.
async fn panel_link(
    conn: &mut PgConnection,
    config: &crate::config::Config,
    caller: &Caller,
) -> Result<String, BotError> {
    let Some(panel) = &config.panel else {
        return Ok(render(caller.lang, "admin_panel_off", &[]));
    };
    let token = crate::db::panel::create_link(conn, &panel.secret, caller.admin).await?;
    let link = panel.link(&format!("login?token={token}"));
    Ok(render(caller.lang, "admin_panel_link", &[("link", &link)]))
}

async fn user_lang(conn: &mut PgConnection, user: TelegramId) -> Result<Lang, BotError> {
    Ok(users::language(conn, user).await?.unwrap_or(Lang::Ru))
}

async fn set_banned(
    conn: &mut PgConnection,
    lang: Lang,
    user: TelegramId,
    banned: bool,
) -> Result<String, BotError> {
    let found = users::set_banned(conn, user, banned).await?;
    let id = user.to_string();
    Ok(match (found, banned) {
        (false, _) => render(lang, "admin_unknown_user", &[("id", &id)]),
        (true, true) => render(lang, "admin_banned", &[("id", &id)]),
        (true, false) => render(lang, "admin_unbanned", &[("id", &id)]),
    })
}

#[derive(sqlx::FromRow)]
struct Profile {
    username: Option<String>,
    first_name: Option<String>,
    registered_at: chrono::DateTime<chrono::Utc>,
    last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    is_active: bool,
    is_banned: bool,
    deleted: bool,
}

/// `/user <id>`: who they are, their balance and recent movements.
async fn show(conn: &mut PgConnection, lang: Lang, user: TelegramId) -> Result<String, BotError> {
    let profile: Option<Profile> = sqlx::query_as(
        "SELECT username, first_name, registered_at, last_seen_at, is_active, is_banned,
                deleted_at IS NOT NULL AS deleted
         FROM users WHERE telegram_id = $1",
    )
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(p) = profile else {
        return Ok(render(lang, "admin_unknown_user", &[("id", &user.to_string())]));
    };
    let balance = crate::ledger::balance(conn, user).await?;
    let (available, reserved) = balance.map_or((0, 0), |b| (b.credits_available, b.credits_reserved));
    let status = if p.deleted {
        "admin_status_deleted"
    } else if p.is_banned {
        "admin_status_banned"
    } else if !p.is_active {
        "admin_status_inactive"
    } else {
        "admin_status_active"
    };
    let name = match (&p.username, &p.first_name) {
        (Some(username), _) => format!("@{username}"),
        (None, Some(first)) => first.clone(),
        (None, None) => String::new(),
    };
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let mut text = render(
        lang,
        "admin_user",
        &[
            ("id", &user.to_string()),
            ("name", &name),
            ("registered", &when(p.registered_at)),
            ("seen", &p.last_seen_at.map_or_else(|| render(lang, "admin_never", &[]), when)),
            ("status", &render(lang, status, &[])),
            ("available", &available.to_string()),
            ("reserved", &reserved.to_string()),
        ],
    );
    text.push_str("\n\n");
    text.push_str(&super::balance::recent_movements(conn, lang, user, 10).await?);
    Ok(text)
}
