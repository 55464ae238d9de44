//! What the web chat shows, read from the fakes' records and the balances: the user's chat
//! as Telegram `Message` objects (the user's and the bot's, in message-id order), the bot's
//! menu, the last callback toast, and the switches' current settings. Read-only.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::World;

/// At most this many of the latest messages are shown.
const SHOWN: usize = 150;

/// The whole screen for `user`.
pub async fn state(world: &World, user: i64) -> anyhow::Result<Value> {
    let users = world.users();
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let balances: HashMap<i64, (i64, i64)> = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT user_id, credits_available, credits_reserved FROM balances WHERE user_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&world.pool)
    .await?
    .into_iter()
    .map(|(id, available, reserved)| (id, (available, reserved)))
    .collect();
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            let (available, reserved) = balances.get(&u.id).copied().unwrap_or((0, 0));
            json!({"id": u.id, "first_name": u.first_name, "language_code": u.language_code,
                   "available": available, "reserved": reserved})
        })
        .collect();
    let lang = world.user(user).map(|u| u.language_code).unwrap_or_default();
    Ok(json!({
        "user": user,
        "admin": super::admin_id(),
        "users": users,
        "chat": chat(world, user),
        "commands": commands(world, &lang),
        "switches": switches(world),
    }))
}

/// The chat's messages, the user's and the bot's, oldest first.
fn chat(world: &World, user: i64) -> Value {
    let inner = world.tg.state().lock();
    let Some(chat) = inner.chats.get(&user) else {
        return json!({"messages": [], "toasts": 0, "toast": null, "blocked": false});
    };
    let mut messages: Vec<(i64, Value)> = chat
        .user_messages
        .iter()
        .map(|(id, message)| (*id, json!({"from": "user", "message": message, "edits": 0})))
        .collect();
    messages.extend(chat.messages.values().filter(|m| !m.deleted).map(|m| {
        (
            m.message_id,
            json!({"from": "bot", "kind": m.kind, "message": m.message, "edits": m.edits.len(),
                   "file": m.file}),
        )
    }));
    messages.sort_by_key(|(id, _)| *id);
    let skip = messages.len().saturating_sub(SHOWN);
    let messages: Vec<Value> = messages.into_iter().skip(skip).map(|(_, m)| m).collect();
    let toasts: Vec<&Value> =
        chat.events.iter().filter(|e| e.method == "answerCallbackQuery").map(|e| &e.detail).collect();
    let toast = toasts.last().and_then(|d| d.get("text")).cloned().unwrap_or(Value::Null);
    json!({"messages": messages, "toasts": toasts.len(), "toast": toast, "blocked": chat.blocked})
}

/// The bot's command menu in `lang`, else its default one.
fn commands(world: &World, lang: &str) -> Value {
    let inner = world.tg.state().lock();
    let by_key = &inner.commands;
    by_key
        .get(format!("default|{lang}"))
        .or_else(|| by_key.get("default|"))
        .cloned()
        .unwrap_or_else(|| json!([]))
}

fn switches(world: &World) -> Value {
    let gemini: Vec<String> = world.gemini.queued().iter().map(|b| b.marker()).collect();
    let (faults, strict) = {
        let inner = world.tg.state().lock();
        (serde_json::to_value(&inner.faults).unwrap_or_default(), inner.pace.strict)
    };
    json!({
        "gemini": {"latency_ms": world.gemini.latency().as_millis() as u64, "queued": gemini},
        "telegram": {"faults": faults, "strict_pace": strict},
        "yookassa": {"mode": world.yk.notify_mode(), "held": world.yk.held_notifications()},
    })
}
