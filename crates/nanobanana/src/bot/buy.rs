//! Payments in the chat: `/buy` with the ruble and Stars packs, the terms accepted before the
//! first payment (again after a new version), the receipt contact asked once, the Stars
//! pre-checkout and `successful_payment`, and `/refund` (the admin's; anyone else is pointed to
//! /paysupport). Runs inside the update's transaction; what needs the outside world
//! (YooKassa's create, a provider's refund) is returned as an `After` step that the handler
//! records on the update's row before calling out, so a redelivered update resumes it with the
//! same idempotence key.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::BotError;
use crate::bot::commands::{Effects, Sender};
use crate::bot::conversation;
use crate::config::{Config, Pack};
use crate::db::payments::{self as db, NewTopup, Provider};
use crate::db::users;
use crate::domain::{Awaiting, AwaitingKind, Button, Credits, Kopecks, TelegramId};
use crate::outbox;
use crate::payments::{contact, refund, stars, PaymentError, YooKassa};
use crate::telegram::client::BotApi;
use crate::telegram::update::{Content, Incoming};
use crate::texts::{render, Lang};
use crate::yookassa::YkError;

/// Work left after the update's transaction, recorded on its row (`telegram_updates.step`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum After {
    /// Create the YooKassa payment of the topup and send the "Pay" button.
    YooKassa { topup_id: Uuid, chat: i64 },
    /// An admin's refund.
    Refund { refund_id: Uuid, topup_id: Uuid, credits: Option<i64>, admin: TelegramId, chat: i64 },
}

impl After {
    /// The chat the step answers in.
    pub fn chat(&self) -> i64 {
        match self {
            After::YooKassa { chat, .. } | After::Refund { chat, .. } => *chat,
        }
    }
}

/// A message for the finishing transaction: chat, text, keyboard.
pub type Reply = (i64, String, Option<Value>);

/// Handles the update if it is about payments; `None` leaves it to the rest of the bot. The
/// buttons (`Button::Buy`, `Button::AcceptTerms`) come through `commands`, to `choose` and
/// `accept`.
pub async fn apply(
    conn: &mut PgConnection,
    config: &Config,
    update_id: i64,
    incoming: &Incoming,
    sender: &Sender,
) -> Result<Option<Effects>, BotError> {
    let lang = sender.lang;
    match incoming {
        Incoming::PreCheckout { id, from, payment } => {
            let refusal = stars::pre_checkout(conn, lang, from.id, id, payment).await?;
            Ok(Some(Effects { pre_checkout: Some((id.clone(), refusal)), ..Effects::default() }))
        }
        Incoming::Message(m) if m.private => {
            let user = m.from.id;
            let mut awaits_contact = sender.awaits(AwaitingKind::ReceiptContact);
            let moved_on = match &m.content {
                Content::Command { .. } => true,
                Content::Text(text) => !contact::attempted(text),
                _ => false,
            };
            if awaits_contact && moved_on {
                // A command or a prompt: the question is dropped and the update handled as usual.
                conversation::take(conn, user, AwaitingKind::ReceiptContact).await?;
                awaits_contact = false;
            }
            match &m.content {
                Content::Paid(payment) => {
                    stars::paid(conn, lang, user, m.chat_id, payment).await?;
                    Ok(Some(Effects::default()))
                }
                Content::Command { name, .. } if name == "buy" => {
                    let (text, keyboard) = screen(lang, config);
                    outbox::send_text(conn, m.chat_id, &text, Some(keyboard)).await?;
                    Ok(Some(Effects::default()))
                }
                Content::Command { name, args }
                    if name == "refund" && config.operator.admin_ids.contains(&user) =>
                {
                    let after = admin_refund(conn, lang, user, m.chat_id, args).await?;
                    Ok(Some(Effects { after, ..Effects::default() }))
                }
                Content::Command { name, .. } if name == "refund" => {
                    // Everyone else asks support, who decide (and refund through the admin).
                    outbox::send_text(conn, m.chat_id, &render(lang, "refund_ask_support", &[]), None)
                        .await?;
                    Ok(Some(Effects::default()))
                }
                Content::Text(text) if awaits_contact => {
                    let buyer = Buyer { user, chat: m.chat_id, update_id, lang };
                    let after = receipt_contact(conn, config, sender, &buyer, text).await?;
                    Ok(Some(Effects { after, ..Effects::default() }))
                }
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn rubles(kopecks: i64) -> String {
    Kopecks::from_kopecks(kopecks).map(Kopecks::rubles).unwrap_or_default()
}

/// The `/buy` screen: ruble packs (when YooKassa is configured) and Stars packs as buttons.
pub fn screen(lang: Lang, config: &Config) -> (String, Value) {
    let mut rows = Vec::new();
    if config.yookassa.is_some() {
        for pack in &config.packs.rub {
            let text = render(
                lang,
                "buy_rub_button",
                &[("amount", &rubles(pack.price)), ("credits", &pack.credits.to_string())],
            );
            let data = Button::Buy { pack: pack.id.clone() }.encode();
            rows.push(json!([{ "text": text, "callback_data": data }]));
        }
    }
    for pack in &config.packs.stars {
        let text = render(
            lang,
            "buy_stars_button",
            &[("stars", &pack.price.to_string()), ("credits", &pack.credits.to_string())],
        );
        let data = Button::Buy { pack: pack.id.clone() }.encode();
        rows.push(json!([{ "text": text, "callback_data": data }]));
    }
    (render(lang, "buy_choose", &[]), json!({ "inline_keyboard": rows }))
}

fn find_pack<'a>(config: &'a Config, id: &str) -> Option<(&'a Pack, Provider)> {
    let rub = config.packs.rub.iter().find(|p| p.id == id).map(|p| (p, Provider::YooKassa));
    rub.or_else(|| config.packs.stars.iter().find(|p| p.id == id).map(|p| (p, Provider::Stars)))
}

async fn accepted(conn: &mut PgConnection, user: TelegramId, version: &str) -> Result<bool, BotError> {
    Ok(users::terms_version(conn, user).await?.as_deref() == Some(version))
}

/// The terms with an "Accept" button that goes on to `pack`.
async fn ask_terms(
    conn: &mut PgConnection,
    lang: Lang,
    config: &Config,
    chat: i64,
    pack: Option<&str>,
) -> Result<(), BotError> {
    let op = &config.operator;
    let link = |url: &Option<url::Url>| {
        url.as_ref().map_or_else(|| render(lang, "terms_not_published", &[]), |u| u.to_string())
    };
    let text = render(
        lang,
        "buy_terms_ask",
        &[
            ("version", &op.terms_version),
            ("terms", &link(&op.terms_url)),
            ("privacy", &link(&op.privacy_url)),
        ],
    );
    let keyboard = terms_keyboard(lang, &op.terms_version, pack);
    outbox::send_text(conn, chat, &text, Some(keyboard)).await?;
    Ok(())
}

/// The "Accept" button under the terms of `version` (without the pack if both do not fit).
pub(crate) fn terms_keyboard(lang: Lang, version: &str, pack: Option<&str>) -> Value {
    let data = Button::AcceptTerms { version: version.to_owned(), pack: pack.map(str::to_owned) }.encode();
    json!({ "inline_keyboard": [[{ "text": render(lang, "buy_terms_accept", &[]), "callback_data": data }]] })
}

/// What an "Accept" button (`Button::AcceptTerms`) says.
/// Who is buying, in which chat, from which update (the order is keyed to it), and in which
/// language they are answered.
#[derive(Debug, Clone, Copy)]
pub struct Buyer {
    pub user: TelegramId,
    pub chat: i64,
    pub update_id: i64,
    pub lang: Lang,
}

pub struct Acceptance<'a> {
    pub version: &'a str,
    pub pack: Option<&'a str>,
}

/// The terms of that version accepted, then the pack (if any) chosen.
pub(super) async fn accept(
    conn: &mut PgConnection,
    config: &Config,
    buyer: &Buyer,
    acceptance: Acceptance<'_>,
) -> Result<(String, Option<After>), BotError> {
    let Acceptance { version, pack } = acceptance;
    let Buyer { user, chat, lang, .. } = *buyer;
    if version != config.operator.terms_version {
        // The terms changed since this button was sent: show the new ones.
        ask_terms(conn, lang, config, chat, pack).await?;
        return Ok((render(lang, "buy_terms_changed", &[]), None));
    }
    users::accept_terms(conn, user, version).await?;
    tracing::info!(user, version, "terms accepted");
    let Some(pack) = pack else {
        return Ok((render(lang, "buy_terms_accepted", &[]), None));
    };
    let (_, after) = choose(conn, config, buyer, pack).await?;
    Ok((render(lang, "buy_terms_accepted", &[]), after))
}

/// A pack chosen: terms first, then an invoice (Stars) or, after the receipt contact when
/// receipts are on, the YooKassa topup whose payment the `After` step creates.
pub(super) async fn choose(
    conn: &mut PgConnection,
    config: &Config,
    buyer: &Buyer,
    pack_id: &str,
) -> Result<(String, Option<After>), BotError> {
    let Buyer { user, chat, update_id, lang } = *buyer;
    let Some((pack, provider)) = find_pack(config, pack_id) else {
        return Ok((render(lang, "buy_unknown_pack", &[]), None));
    };
    if !accepted(conn, user, &config.operator.terms_version).await? {
        ask_terms(conn, lang, config, chat, Some(pack_id)).await?;
        return Ok((String::new(), None));
    }
    let source_key = format!("update:{update_id}");
    if provider == Provider::Stars {
        stars::send_invoice(conn, lang, user, chat, pack, &source_key).await?;
        return Ok((String::new(), None));
    }
    let Some(yk) = &config.yookassa else {
        outbox::send_text(conn, chat, &render(lang, "buy_unavailable", &[]), None).await?;
        return Ok((String::new(), None));
    };
    if yk.receipt.is_some() && users::receipt_contact(&mut *conn, user).await?.is_none() {
        let state = Awaiting::ReceiptContact { pack: pack_id.to_owned() };
        conversation::set(conn, user, &state, conversation::DEFAULT_TTL).await?;
        outbox::send_text(conn, chat, &render(lang, "buy_receipt_ask", &[]), None).await?;
        return Ok((String::new(), None));
    }
    let topup = NewTopup::for_pack(user, Provider::YooKassa, pack, &source_key);
    let topup_id = db::create_topup(conn, &topup).await?;
    Ok((String::new(), Some(After::YooKassa { topup_id, chat })))
}

/// The text a user sent while asked for the receipt contact.
async fn receipt_contact(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    buyer: &Buyer,
    text: &str,
) -> Result<Option<After>, BotError> {
    let Buyer { user, chat, lang, .. } = *buyer;
    let Some(parsed) = contact::parse(text) else {
        // Still waiting; the state's expiry is renewed.
        let state = sender.state.clone().unwrap_or(Awaiting::ReceiptContact { pack: String::new() });
        conversation::set(conn, user, &state, conversation::DEFAULT_TTL).await?;
        outbox::send_text(conn, chat, &render(lang, "buy_receipt_invalid", &[]), None).await?;
        return Ok(None);
    };
    let Some(Awaiting::ReceiptContact { pack }) =
        conversation::take(conn, user, AwaitingKind::ReceiptContact).await?
    else {
        return Ok(None);
    };
    users::set_receipt_contact(conn, user, &contact::to_stored(&parsed)).await?;
    outbox::send_text(conn, chat, &render(lang, "buy_receipt_saved", &[]), None).await?;
    let (_, after) = choose(conn, config, buyer, &pack).await?;
    Ok(after)
}

/// `/refund <topup id> [credits]` from an admin.
async fn admin_refund(
    conn: &mut PgConnection,
    lang: Lang,
    admin: TelegramId,
    chat: i64,
    args: &str,
) -> Result<Option<After>, BotError> {
    let mut parts = args.split_whitespace();
    let topup = parts.next().and_then(|t| Uuid::parse_str(t).ok());
    let credits = parts.next().map(|c| Credits::parse(c).map(Credits::get));
    let (Some(topup_id), None | Some(Ok(_))) = (topup, &credits) else {
        outbox::send_text(conn, chat, &render(lang, "admin_refund_usage", &[]), None).await?;
        return Ok(None);
    };
    let credits = credits.and_then(Result::ok);
    Ok(Some(After::Refund { refund_id: Uuid::new_v4(), topup_id, credits, admin, chat }))
}

/// Where an `After` step stands once it ran.
pub enum Finished {
    /// Done (or refused for good): these messages close the update.
    Replies(Vec<Reply>),
    /// The outcome is unknown (the provider did not answer): the update stays open and the
    /// resumer repeats the step with the same key.
    Retry(String),
}

/// Runs an `After` step outside any transaction.
pub async fn run(
    pool: &PgPool,
    yk: Option<&YooKassa>,
    api: &BotApi,
    after: &After,
) -> Result<Finished, BotError> {
    match after {
        After::YooKassa { topup_id, chat } => pay(pool, yk, *topup_id, *chat).await,
        After::Refund { refund_id, topup_id, credits, admin, chat } => {
            let lang = language(pool, *admin).await?;
            let refunder = refund::Refunder { pool, yookassa: yk, telegram: Some(api) };
            let request = refund::RefundRequest {
                refund_id: *refund_id,
                topup_id: *topup_id,
                credits: credits.and_then(|c| Credits::new(c).ok()),
                actor: format!("telegram:{admin}"),
            };
            let text = match refunder.refund(&request).await {
                Ok(refund::Refunded::Refunded { credits, amount_minor, currency, .. }) => {
                    let amount = crate::domain::format_amount(&currency, amount_minor);
                    render(
                        lang,
                        "admin_refund_done",
                        &[("credits", &credits.to_string()), ("amount", &amount)],
                    )
                }
                Ok(refund::Refunded::Released { reason, .. }) => {
                    render(lang, "admin_refund_released", &[("reason", &reason)])
                }
                // The reconcilers finish it (Stars: against getStarTransactions); the update
                // closes now, so the chat is not held up (DESIGN §10).
                Ok(refund::Refunded::Held { reason, .. }) => {
                    render(lang, "admin_refund_held", &[("reason", &reason)])
                }
                Err(refund::RefundError::Db(e)) => return Err(e.into()),
                Err(e) => render(lang, "admin_refund_refused", &[("reason", &e.to_string())]),
            };
            Ok(Finished::Replies(vec![(*chat, text, None)]))
        }
    }
}

async fn language(pool: &PgPool, user: TelegramId) -> Result<Lang, BotError> {
    Ok(users::language(pool, user).await?.unwrap_or(Lang::Ru))
}

async fn pay(pool: &PgPool, yk: Option<&YooKassa>, topup_id: Uuid, chat: i64) -> Result<Finished, BotError> {
    let db::Order { user_id: user, amount_minor, credits, .. } =
        db::order(pool, topup_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let lang = language(pool, user).await?;
    let Some(yk) = yk else {
        return Ok(Finished::Replies(vec![(chat, render(lang, "buy_unavailable", &[]), None)]));
    };
    let customer = if yk.config.receipt.is_some() {
        let stored = users::receipt_contact(pool, user).await?;
        stored.as_deref().and_then(contact::from_stored)
    } else {
        None
    };
    match crate::payments::pay_topup(yk, topup_id, customer).await {
        Ok(url) => {
            let amount = rubles(amount_minor);
            let text =
                render(lang, "buy_pay_text", &[("amount", &amount), ("credits", &credits.to_string())]);
            let button = render(lang, "buy_pay_button", &[("amount", &amount)]);
            let keyboard = json!({ "inline_keyboard": [[{ "text": button, "url": url }]] });
            Ok(Finished::Replies(vec![(chat, text, Some(keyboard))]))
        }
        Err(PaymentError::Db(e)) => Err(e.into()),
        Err(e @ PaymentError::YooKassa(YkError::Unknown { .. })) => Ok(Finished::Retry(e.to_string())),
        Err(e) => {
            tracing::error!(%topup_id, error = %e, "YooKassa payment could not be created");
            Ok(Finished::Replies(vec![(chat, render(lang, "buy_failed", &[]), None)]))
        }
    }
}
