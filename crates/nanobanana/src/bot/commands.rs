//! What the bot does with each incoming message, command and button, inside the update's
//! transaction: database changes and outbox rows, nothing else.

use sqlx::PgConnection;

use super::admin::{self, Caller};
use super::album;
use super::buy::{self, Buyer};
use super::request::{self, Ask};
use super::settings;
use super::BotError;
use super::{account, history, result, welcome};
use crate::config::Config;
use crate::db::users::{self, NewUser};
use crate::domain::{Awaiting, AwaitingKind, Button, Settings, TelegramId};
use crate::outbox;
use crate::telegram::update::{Content, From, Incoming, Message};
use crate::texts::{render, Lang};

/// What the update's transaction did that needs acting on after its commit.
#[derive(Debug, Default)]
pub struct Effects {
    /// The text to answer a callback query with, if it was one.
    pub callback_answer: Option<String>,
    /// A generation it queued: the workers are signalled.
    pub generation: Option<uuid::Uuid>,
    /// A pre-checkout query to answer inline: its id and the refusal (`None`: ok).
    pub pre_checkout: Option<(String, Option<String>)>,
    /// Payment work that calls the outside world, after the commit (`payments::bot`).
    pub after: Option<crate::bot::buy::After>,
}

/// The user behind an update, as one `touch` found them.
#[derive(Debug, Clone)]
pub struct Sender {
    pub lang: Lang,
    pub banned: bool,
    pub settings: Settings,
    /// Their conversation state, if one is set and has not expired.
    pub state: Option<Awaiting>,
}

impl Sender {
    /// Whether the user is in the (unexpired) conversation state of `kind`.
    pub fn awaits(&self, kind: AwaitingKind) -> bool {
        self.state.as_ref().is_some_and(|s| s.kind() == kind)
    }
}

/// Applies an update inside its transaction.
pub async fn apply(
    conn: &mut PgConnection,
    config: &Config,
    update_id: i64,
    incoming: &Incoming,
) -> Result<Effects, BotError> {
    let from = match incoming {
        Incoming::Message(message) if message.private => &message.from,
        Incoming::Callback { from, .. } | Incoming::PreCheckout { from, .. } => from,
        Incoming::Message(message) => {
            // In groups the bot answers only commands addressed to it, pointing to a private chat.
            if let Content::Command { .. } = message.content {
                let lang = Lang::from_telegram(message.from.language_code.as_deref());
                outbox::send_text(conn, message.chat_id, &render(lang, "group_hint", &[]), None).await?;
            }
            return Ok(Effects::default());
        }
        Incoming::ChatMember { from, status } => {
            let active = !matches!(status.as_str(), "kicked" | "left");
            users::set_active(conn, from.id, active).await?;
            if active {
                outbox::unpark(conn, from.id).await?;
            }
            return Ok(Effects::default());
        }
        Incoming::Other => return Ok(Effects::default()),
    };
    let sender = touch(conn, from).await?;
    // The user is back: pictures held while they had blocked the bot go out now.
    outbox::unpark(conn, from.id).await?;
    if let Some(effects) = crate::bot::buy::apply(conn, config, update_id, incoming, &sender).await? {
        return Ok(effects);
    }
    if sender.banned {
        // No replies to banned users (DESIGN §10): their messages and presses are recorded only.
        return Ok(Effects::default());
    }
    match incoming {
        Incoming::Message(message) => {
            let generation = on_message(conn, config, update_id, message, &sender).await?;
            Ok(Effects { generation, ..Effects::default() })
        }
        Incoming::Callback { from, chat_id, message_id, data, .. } => {
            let press = Pressed { user: from.id, chat_id: *chat_id, message_id: *message_id, update_id };
            on_press(conn, config, &sender, &press, data).await
        }
        Incoming::PreCheckout { .. } | Incoming::ChatMember { .. } | Incoming::Other => {
            Ok(Effects::default())
        }
    }
}

/// Where a button was pressed.
struct Pressed {
    user: TelegramId,
    chat_id: Option<i64>,
    message_id: Option<i64>,
    update_id: i64,
}

/// A button press, parsed once and dispatched on its kind; the answer is the callback's toast.
async fn on_press(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    pressed: &Pressed,
    data: &str,
) -> Result<Effects, BotError> {
    let (lang, banned, update_id) = (sender.lang, sender.banned, pressed.update_id);
    let Some(button) = Button::parse(data) else {
        // Not a button the bot sends: answered, and nothing else.
        return Ok(Effects { callback_answer: Some(String::new()), ..Effects::default() });
    };
    let buyer = Buyer { user: pressed.user, chat: pressed.chat_id.unwrap_or(pressed.user), update_id, lang };
    let (toast, generation, after) = match button {
        Button::Buy { pack } => {
            let (toast, after) = buy::choose(conn, config, &buyer, &pack).await?;
            (toast, None, after)
        }
        Button::AcceptTerms { version, pack } => {
            let acceptance = buy::Acceptance { version: &version, pack: pack.as_deref() };
            let (toast, after) = buy::accept(conn, config, &buyer, acceptance).await?;
            (toast, None, after)
        }
        Button::Result { action, generation: id } => {
            let press = result::Press { user: pressed.user, chat_id: pressed.chat_id, update_id, banned };
            let (toast, generation) = result::press(conn, config, lang, &press, action, id).await?;
            (toast, generation, None)
        }
        Button::Again { generation: id } => {
            let again = history::Again { user: pressed.user, chat_id: pressed.chat_id, update_id, banned };
            let (toast, generation) = history::again(conn, config, lang, &again, id).await?;
            (toast, generation, None)
        }
        button @ (Button::Cancel { .. } | Button::Style { .. } | Button::Example { .. }) => {
            let (chat, message) = (pressed.chat_id, pressed.message_id);
            let place = super::presses::Place { user: pressed.user, chat, message, update_id };
            let (toast, generation) = super::presses::press(conn, config, sender, &place, button).await?;
            (toast, generation, None)
        }
        other => {
            let (chat_id, message_id) = (pressed.chat_id, pressed.message_id);
            let toast = on_button(conn, config, sender, pressed.user, chat_id, message_id, other).await?;
            return Ok(Effects { callback_answer: toast, ..Effects::default() });
        }
    };
    Ok(Effects { callback_answer: Some(toast), generation, after, ..Effects::default() })
}

/// Records that the user wrote (creating them on first contact) and reads what handling their
/// update needs: language, ban, settings, conversation state — one statement.
pub(crate) async fn touch(conn: &mut PgConnection, from: &From) -> Result<Sender, BotError> {
    let user = NewUser {
        telegram_id: from.id,
        username: from.username.as_deref(),
        first_name: from.first_name.as_deref(),
    };
    let guess = Lang::from_telegram(from.language_code.as_deref());
    let touched = users::touch(conn, &user, guess.code()).await?;
    Ok(Sender {
        lang: Lang::parse(&touched.language).unwrap_or(guess),
        banned: touched.is_banned,
        settings: Settings::from_json(&touched.settings),
        state: touched.awaiting.and_then(|name| Awaiting::parse(&name, touched.awaiting_data.as_ref())),
    })
}

/// Handles a message; the generation it queued, if any.
async fn on_message(
    conn: &mut PgConnection,
    config: &Config,
    update_id: i64,
    message: &Message,
    sender: &Sender,
) -> Result<Option<uuid::Uuid>, BotError> {
    let (user, chat, lang) = (message.from.id, message.chat_id, sender.lang);
    let ask = |prompt, references| Ask {
        user,
        chat,
        prompt,
        references,
        source_key: format!("update:{update_id}"),
    };
    let (banned, settings) = (sender.banned, Some(&sender.settings));
    match &message.content {
        Content::Command { name, args } => {
            on_command(conn, config, update_id, message, sender, name, args).await?;
            Ok(None)
        }
        Content::Text(text) => super::edit::text_prompt(conn, config, sender, message, &ask(text, &[])).await,
        Content::Image { file_id, caption, media_group_id: Some(group) } => {
            let item = album::Item {
                user,
                chat,
                media_group_id: group,
                message_id: message.message_id,
                file_id,
                caption: caption.as_deref(),
            };
            album::add_item(conn, lang, &item).await?;
            Ok(None)
        }
        Content::Image { file_id, caption: Some(caption), media_group_id: None }
            if caption.starts_with("/broadcast") && is_admin(config, user) =>
        {
            super::broadcast::from_photo(conn, config, (user, chat, lang), caption, file_id).await
        }
        Content::Image { file_id, caption, media_group_id: None } => {
            let references = [file_id.clone()];
            let prompt = caption.as_deref().unwrap_or("");
            request::generation_with(conn, config, lang, banned, &ask(prompt, &references), settings).await
        }
        Content::Unsupported(_) | Content::Paid(_) => {
            outbox::send_text(conn, chat, &render(lang, "unsupported", &[]), None).await?;
            Ok(None)
        }
    }
}

/// A command: answered with a message (a screen with its keyboard, or a text).
async fn on_command(
    conn: &mut PgConnection,
    config: &Config,
    update_id: i64,
    message: &Message,
    sender: &Sender,
    name: &str,
    args: &str,
) -> Result<(), BotError> {
    let (user, chat, lang) = (message.from.id, message.chat_id, sender.lang);
    let (text, keyboard) = match name {
        "start" | "help" => {
            if name == "start" && !args.is_empty() {
                let link: String = args.chars().take(64).collect();
                users::remember_deep_link(conn, user, &link).await?;
            }
            let notes = match name {
                "start" => super::growth::on_start(conn, config, user, lang, args).await?,
                _ => String::new(),
            };
            let (available, _) = super::balance::of(conn, user).await?;
            let text = welcome::plain_reply(name, lang, config, available).unwrap_or_default() + &notes;
            (text, Some(welcome::plain_keyboard(lang, config)))
        }
        "styles" => super::styles::command(lang, sender.settings.style.as_deref()),
        "balance" => (super::balance::text(conn, lang, user).await?, None),
        "invite" => (super::growth::invite(conn, config, user, lang).await?, None),
        "promo" => {
            (super::growth::promo(conn, config, user, lang, is_admin(config, user), args).await?, None)
        }
        "support" | "paysupport" => (support(lang, config), None),
        "terms" => (account::terms(lang, config), None),
        "settings" => {
            let missing = settings::missing(conn).await?;
            let (text, keyboard) = settings::screen(lang, config, &missing, &sender.settings);
            (text, Some(keyboard))
        }
        "history" => history::screen(conn, lang, &config.catalog, user).await?,
        "deleteme" => return account::ask(conn, lang, user, chat).await,
        command if admin::COMMANDS.contains(&command) && is_admin(config, user) => {
            let caller = Caller { admin: user, lang, update_id };
            (admin::handle(conn, config, &caller, command, args).await?, None)
        }
        _ => (render(lang, "unknown_command", &[]), None),
    };
    outbox::send_text(conn, chat, &text, keyboard).await?;
    Ok(())
}

/// A button press: settings and language change here (history's "send again" and the
/// `/deleteme` confirmation are passed on); the answer is the callback's toast.
async fn on_button(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    user: i64,
    chat_id: Option<i64>,
    message_id: Option<i64>,
    button: Button,
) -> Result<Option<String>, BotError> {
    let mut lang = sender.lang;
    let mut current = sender.settings.clone();
    let changed = match button {
        Button::SendAgain { generation } => {
            return Ok(Some(history::send_again(conn, sender.lang, user, chat_id, generation).await?));
        }
        Button::DeleteMe { confirmed } => {
            let toast = account::confirm(conn, sender.lang, user, chat_id, message_id, confirmed).await?;
            return Ok(Some(toast));
        }
        Button::Setting(change) => {
            match settings::changed(config, &settings::missing(conn).await?, &current, change) {
                Some(next) => {
                    current = next;
                    settings::save(conn, user, &current).await?;
                    true
                }
                None => false,
            }
        }
        // The language already set: nothing to change (an identical edit is a 400).
        Button::Language(chosen) if chosen != lang => {
            users::set_language(conn, user, chosen).await?;
            lang = chosen;
            true
        }
        Button::Language(_) => false,
        // Handled by `apply`.
        Button::Buy { .. } | Button::AcceptTerms { .. } => false,
        Button::Result { .. } | Button::Again { .. } => false,
        Button::Cancel { .. } | Button::Style { .. } | Button::Example { .. } => false,
    };
    if !changed {
        return Ok(Some(String::new()));
    }
    if let (Some(chat_id), Some(message_id)) = (chat_id, message_id) {
        let missing = settings::missing(conn).await?;
        let (text, keyboard) = settings::screen(lang, config, &missing, &current);
        let params = serde_json::json!({
            "chat_id": chat_id, "message_id": message_id, "text": text,
            "parse_mode": "HTML", "reply_markup": keyboard,
        });
        outbox::enqueue(conn, chat_id, "editMessageText", params).await?;
    }
    Ok(Some(render(lang, "settings_saved", &[])))
}

/// Admin commands are for `ADMIN_IDS` only; for everyone else they do not exist.
fn is_admin(config: &Config, user: i64) -> bool {
    config.operator.admin_ids.contains(&user)
}

fn support(lang: Lang, config: &Config) -> String {
    let contact = config.operator.support_contact.trim();
    if contact.is_empty() {
        render(lang, "support_missing", &[])
    } else {
        render(lang, "support", &[("contact", contact)])
    }
}
