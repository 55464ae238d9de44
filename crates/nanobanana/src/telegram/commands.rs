//! What the bot does with each incoming message, command and button, inside the update's
//! transaction: database changes and outbox rows, nothing else.

use sqlx::PgConnection;

use super::request;
use super::texts::{render, render_html, Lang};
use super::update::{Content, From, Incoming, Message};
use crate::config::Config;
use crate::db::users::{self, NewUser};
use crate::domain::{ImageSize, Model, PerVariant};
use crate::outbox;

/// Applies an update; returns the text to answer a callback query with, if it was one.
pub async fn apply(
    conn: &mut PgConnection,
    config: &Config,
    update_id: i64,
    incoming: &Incoming,
) -> sqlx::Result<Option<String>> {
    match incoming {
        Incoming::Message(message) => {
            on_message(conn, config, update_id, message).await?;
            Ok(None)
        }
        Incoming::Callback { from, .. } => {
            touch(conn, from).await?;
            Ok(Some(String::new()))
        }
        Incoming::ChatMember { from, status } => {
            let active = !matches!(status.as_str(), "kicked" | "left");
            sqlx::query("UPDATE users SET is_active = $2 WHERE telegram_id = $1")
                .bind(from.id)
                .bind(active)
                .execute(&mut *conn)
                .await?;
            Ok(None)
        }
        Incoming::Other => Ok(None),
    }
}

/// The user's language and whether they are banned, creating them on first contact.
async fn touch(conn: &mut PgConnection, from: &From) -> sqlx::Result<(Lang, bool)> {
    let user = NewUser {
        telegram_id: from.id,
        username: from.username.as_deref(),
        first_name: from.first_name.as_deref(),
    };
    let guess = Lang::from_telegram(from.language_code.as_deref());
    let touched = users::touch(conn, &user, guess.code()).await?;
    Ok((Lang::parse(&touched.language).unwrap_or(guess), touched.is_banned))
}

async fn on_message(
    conn: &mut PgConnection,
    config: &Config,
    update_id: i64,
    message: &Message,
) -> sqlx::Result<()> {
    let chat = message.chat_id;
    if !message.private {
        // In groups the bot answers only commands addressed to it, pointing to a private chat.
        if let Content::Command { .. } = message.content {
            let lang = Lang::from_telegram(message.from.language_code.as_deref());
            outbox::send_text(conn, chat, &render(lang, "group_hint", &[]), None).await?;
        }
        return Ok(());
    }
    let (lang, banned) = touch(conn, &message.from).await?;
    let reply = match &message.content {
        Content::Command { name, args } => match name.as_str() {
            "start" => {
                if !args.is_empty() {
                    sqlx::query(
                        "UPDATE users SET deep_link = COALESCE(deep_link, $2) WHERE telegram_id = $1",
                    )
                    .bind(message.from.id)
                    .bind(args.chars().take(64).collect::<String>())
                    .execute(&mut *conn)
                    .await?;
                }
                let (available, _) = balance(conn, message.from.id).await?;
                let prices = price_list(lang, config);
                render_html(lang, "welcome", &[("available", &available.to_string()), ("prices", &prices)])
            }
            "help" => render_html(lang, "help", &[("prices", &price_list(lang, config))]),
            "balance" => balance_text(conn, lang, message.from.id).await?,
            "support" | "paysupport" => support(lang, config),
            _ => render(lang, "unknown_command", &[]),
        },
        Content::Text(text) => {
            return request::generation(conn, config, lang, banned, message, update_id, text).await;
        }
        Content::Unsupported(_) => render(lang, "unsupported", &[]),
    };
    outbox::send_text(conn, chat, &reply, None).await?;
    Ok(())
}

async fn balance(conn: &mut PgConnection, user: i64) -> sqlx::Result<(i64, i64)> {
    let b = users::balance(conn, user).await?;
    Ok(b.map_or((0, 0), |b| (b.credits_available, b.credits_reserved)))
}

async fn balance_text(conn: &mut PgConnection, lang: Lang, user: i64) -> sqlx::Result<String> {
    let (available, reserved) = balance(conn, user).await?;
    let mut text = render(
        lang,
        "balance",
        &[("available", &available.to_string()), ("reserved", &reserved.to_string())],
    );
    let recent: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT type, delta_available, balance_after FROM transactions WHERE user_id = $1 ORDER BY id DESC LIMIT 5",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    text.push_str("\n\n");
    if recent.is_empty() {
        text.push_str(&render(lang, "balance_history_empty", &[]));
    } else {
        text.push_str(&render(lang, "balance_history_title", &[]));
        for (kind, delta, after) in recent {
            text.push_str(&format!("\n{} {delta:+} → {after}", render(lang, &format!("kind_{kind}"), &[])));
        }
    }
    Ok(text)
}

fn support(lang: Lang, config: &Config) -> String {
    let contact = config.operator.support_contact.trim();
    if contact.is_empty() {
        render(lang, "support_missing", &[])
    } else {
        render(lang, "support", &[("contact", contact)])
    }
}

/// The model's name as users know it.
pub fn model_name(model: Model, size: Option<ImageSize>) -> String {
    match (model, size) {
        (Model::Flash, _) => "Nano Banana 2".to_owned(),
        (Model::Pro, Some(size)) => format!("Nano Banana Pro {size}"),
        (Model::Pro, None) => "Nano Banana Pro".to_owned(),
    }
}

fn price_list(lang: Lang, config: &Config) -> String {
    PerVariant::<()>::variants()
        .map(|(model, size)| {
            let credits = config.pricing.prices.get(model, size).to_string();
            render(lang, "price_item", &[("model", &model_name(model, size)), ("credits", &credits)])
        })
        .collect::<Vec<_>>()
        .join(", ")
}
