//! The actions on a user from the panel: grant or deduct credits with a reason (`ledger::adjust`,
//! as `/grant` and `nanobanana admin grant`), ban and unban (`db::users::set_banned`, as `/ban`),
//! refund a topup in full or in part (`payments::refund::Refunder`, as `/refund` and
//! `nanobanana admin refund`), resend a result (`bot::history::send_again`, as the chat's "send
//! again" button). Each checks the CSRF token first, is keyed by its form's key (a double submit
//! does it once: `db::panel::record_action` in the same transaction, the ledger's idempotency
//! key, the refund's id) and records the admin.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use uuid::Uuid;

use super::{forms, see_other, Admin, PanelError, PanelState};
use crate::db::panel::record_action;
use crate::domain::{Credits, TelegramId};
use crate::ledger::{self, Adjustment, Direction, LedgerError, Outcome, Reason};
use crate::payments::refund::{RefundError, RefundRequest, Refunded, Refunder};
use crate::texts::{render, Lang};

/// Every action form's fields; each action reads the ones it needs.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    credits: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    banned: String,
    #[serde(default)]
    topup: String,
    #[serde(default)]
    generation: String,
}

impl ActionForm {
    /// The CSRF token checked, then the form's key.
    fn key(&self, admin: &Admin) -> Result<Uuid, PanelError> {
        forms::checked(admin, &self.csrf, &self.key)
    }
}

/// The flash message for `done=` after an action.
pub fn done_text(done: &str) -> String {
    match done {
        "granted" => "Credits granted; the user was told.",
        "deducted" => "Credits deducted.",
        "banned" => "User banned.",
        "unbanned" => "User unbanned.",
        "refunded" => "Refunded: the money is on its way back and the credits are gone.",
        "refund_held" => {
            "The provider's answer is not known yet: the credits stay held and the refund finishes by itself."
        }
        "refund_released" => "The provider refused the refund; the held credits are back on the balance.",
        "resent" => "The result was queued to the user again.",
        "repeat" => "That form was already submitted: nothing was done twice.",
        _ => "Done.",
    }
    .to_owned()
}

fn back(user: TelegramId, done: &str) -> Response {
    see_other(&format!("/panel/users/{user}?done={done}"))
}

fn back_with_error(user: TelegramId, error: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("error", error).finish();
    see_other(&format!("/panel/users/{user}?{query}"))
}

/// Grant or deduct paid credits with a reason; a grant tells the user, as `/grant` does.
pub async fn adjust(
    State(state): State<PanelState>,
    admin: Admin,
    Path(user): Path<TelegramId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = form.key(&admin)?;
    let direction = match form.direction.as_str() {
        "grant" => Direction::Grant,
        "deduct" => Direction::Deduct,
        _ => return Err(PanelError::bad_request("Choose grant or deduct.")),
    };
    let credits =
        Credits::parse(&form.credits).map_err(|e| PanelError::bad_request(format!("Credits: {e}.")))?;
    let reason = Reason::parse(&form.reason).map_err(|e| PanelError::bad_request(format!("Reason: {e}.")))?;
    let (actor, ledger_key) = (format!("panel:{}", admin.id), format!("panel:{key}"));
    let action = if direction == Direction::Grant { "grant" } else { "deduct" };
    let detail = format!("{credits} credits: {}", reason.as_str());
    let Some(mut tx) =
        forms::begin(&state, key, &admin, action, &format!("user:{user}"), Some(&detail)).await?
    else {
        return Ok(back(user, "repeat"));
    };
    let adjustment = Adjustment {
        user_id: user,
        direction,
        credits,
        reason: &reason,
        actor: &actor,
        idempotency_key: &ledger_key,
    };
    let entry = match ledger::adjust(&mut tx, &adjustment).await {
        Ok(Outcome::Applied(entry)) => entry,
        Ok(Outcome::AlreadyDone) | Err(LedgerError::KeyReused(_)) => return Ok(back(user, "repeat")),
        Err(LedgerError::Insufficient { available, needed }) => {
            let error = format!("The user has {available} credits available: cannot deduct {needed}.");
            return Ok(back_with_error(user, &error));
        }
        Err(LedgerError::UnknownUser(_)) => return Err(PanelError::not_found(format!("No user {user}."))),
        Err(LedgerError::Db(e)) => return Err(e.into()),
        Err(other) => {
            tracing::error!(error = %other, user, "panel: adjustment");
            return Ok(back_with_error(user, &other.to_string()));
        }
    };
    if direction == Direction::Grant {
        let lang = crate::db::users::language(&mut *tx, user).await?.unwrap_or(Lang::Ru);
        let (credits, available) = (credits.to_string(), entry.available_after.to_string());
        let note = render(lang, "granted_to_user", &[("credits", &credits), ("available", &available)]);
        crate::outbox::send_text(&mut tx, user, &note, None).await?;
    }
    tx.commit().await?;
    state.bot.outbox_wake.notify_one();
    tracing::info!(admin = admin.id, user, action, credits = credits.get(), "panel: credits adjusted");
    Ok(back(user, if direction == Direction::Grant { "granted" } else { "deducted" }))
}

/// Ban (`banned=true`) or unban.
pub async fn ban(
    State(state): State<PanelState>,
    admin: Admin,
    Path(user): Path<TelegramId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = form.key(&admin)?;
    let banned = match form.banned.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(PanelError::bad_request("Choose ban or unban.")),
    };
    let action = if banned { "ban" } else { "unban" };
    let Some(mut tx) = forms::begin(&state, key, &admin, action, &format!("user:{user}"), None).await? else {
        return Ok(back(user, "repeat"));
    };
    if !crate::db::users::set_banned(&mut tx, user, banned).await? {
        return Err(PanelError::not_found(format!("No user {user}.")));
    }
    tx.commit().await?;
    tracing::info!(admin = admin.id, user, action, "panel: ban");
    Ok(back(user, if banned { "banned" } else { "unbanned" }))
}

/// Refund a topup of this user, all of its unspent credits or `credits` of them; the form's key
/// is the refund's id, so a repeat resumes the same refund.
pub async fn refund(
    State(state): State<PanelState>,
    admin: Admin,
    Path(user): Path<TelegramId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = form.key(&admin)?;
    let topup =
        Uuid::try_parse(form.topup.trim()).map_err(|_| PanelError::bad_request("No valid topup id."))?;
    let credits = match form.credits.trim() {
        "" => None,
        some => Some(Credits::parse(some).map_err(|e| PanelError::bad_request(format!("Credits: {e}.")))?),
    };
    let owner: Option<TelegramId> = sqlx::query_scalar("SELECT user_id FROM topups WHERE id = $1")
        .bind(topup)
        .fetch_optional(state.pool())
        .await?;
    if owner != Some(user) {
        return Err(PanelError::not_found(format!("User {user} has no topup {topup}.")));
    }
    let refunder = Refunder {
        pool: state.pool(),
        yookassa: state.bot.yookassa.as_deref(),
        telegram: Some(&state.bot.api),
    };
    let request =
        RefundRequest { refund_id: key, topup_id: topup, credits, actor: format!("panel:{}", admin.id) };
    let outcome = match refunder.refund(&request).await {
        Ok(outcome) => outcome,
        Err(RefundError::Db(e)) => return Err(e.into()),
        Err(refused) => return Ok(back_with_error(user, &format!("Refund refused: {refused}."))),
    };
    let (done, detail) = match &outcome {
        Refunded::Refunded { credits, .. } => ("refunded", format!("{credits} credits of topup {topup}")),
        Refunded::Held { credits, reason, .. } => {
            ("refund_held", format!("{credits} credits held: {reason}"))
        }
        Refunded::Released { credits, reason, .. } => {
            ("refund_released", format!("{credits} credits: {reason}"))
        }
    };
    let mut conn = state.pool().acquire().await?;
    record_action(&mut conn, key, admin.id, "refund", &format!("user:{user}"), Some(&detail)).await?;
    tracing::info!(admin = admin.id, user, %topup, done, "panel: refund");
    Ok(back(user, done))
}

/// Queue a finished result to the user again.
pub async fn resend(
    State(state): State<PanelState>,
    admin: Admin,
    Path(user): Path<TelegramId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PanelError> {
    let key = form.key(&admin)?;
    let generation = Uuid::try_parse(form.generation.trim())
        .map_err(|_| PanelError::bad_request("No valid generation id."))?;
    let (target, detail) = (format!("user:{user}"), generation.to_string());
    let Some(mut tx) = forms::begin(&state, key, &admin, "resend", &target, Some(&detail)).await? else {
        return Ok(back(user, "repeat"));
    };
    let lang = crate::db::users::language(&mut *tx, user).await?.unwrap_or(Lang::Ru);
    let toast = crate::bot::history::send_again(&mut tx, lang, user, Some(user), generation).await?;
    if toast != render(lang, "history_sent", &[]) {
        return Ok(back_with_error(user, "That generation has no result to send."));
    }
    tx.commit().await?;
    state.bot.outbox_wake.notify_one();
    Ok(back(user, "resent"))
}
