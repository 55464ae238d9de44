//! The web chat's JSON API: a simulated user acts (text, command, photos, a button, paying
//! an invoice), the operator adds users, grants credits or flips the fakes' switches. Every
//! action goes through the fakes exactly as a Telegram client would; bad input is a 400 or 404
//! with a reason and changes nothing.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fakes::gemini::Behaviour;
use fakes::telegram::users::{self, ActionError, ImageSpec, UserProfile};
use fakes::telegram::{Fault, FaultKind};
use fakes::yookassa::NotifyMode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{view, SimUser, World};
use crate::db::users as db_users;
use crate::domain::Credits;
use crate::ledger::{self, Adjustment, Direction, Reason};

type Shared = State<Arc<World>>;

pub fn router() -> Router<Arc<World>> {
    Router::new()
        .route("/state", get(state))
        .route("/users", post(add_user))
        .route("/users/{id}/text", post(text))
        .route("/users/{id}/photos", post(photos))
        .route("/users/{id}/press", post(press))
        .route("/users/{id}/pay", post(pay))
        .route("/users/{id}/block", post(block))
        .route("/users/{id}/grant", post(grant))
        .route("/gemini/latency", post(gemini_latency))
        .route("/gemini/queue", post(gemini_queue).delete(gemini_clear))
        .route("/gemini/model", post(gemini_model))
        .route("/gemini/shrink", post(gemini_shrink))
        .route("/telegram/faults", post(telegram_fault).delete(telegram_clear))
        .route("/telegram/pace", post(telegram_pace))
        .route("/yookassa/notifications", post(yookassa_mode))
        .route("/yookassa/release", post(yookassa_release))
}

/// A refused request: the status and the reason shown to the operator.
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(reason: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, reason.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let status = match e {
            ActionError::NoSuchMessage(..) | ActionError::NoSuchButton(..) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(status, e.to_string())
    }
}

type Answer = Result<Json<Value>, ApiError>;

fn done(value: impl serde::Serialize) -> Answer {
    Ok(Json(
        serde_json::to_value(value)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    ))
}

/// The simulated user `id` as a Telegram client profile; 404 for an unknown one.
fn profile(world: &World, id: i64) -> Result<UserProfile, ApiError> {
    let user =
        world.user(id).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no simulated user {id}")))?;
    Ok(UserProfile {
        first_name: Some(user.first_name),
        username: None,
        language_code: Some(user.language_code),
    })
}

#[derive(Deserialize)]
struct Who {
    user: i64,
}

async fn state(State(world): Shared, Query(who): Query<Who>) -> Answer {
    profile(&world, who.user)?;
    match view::state(&world, who.user).await {
        Ok(state) => Ok(Json(state)),
        Err(e) => {
            tracing::error!(error = %e, "sandbox state");
            Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "could not read the state".into()))
        }
    }
}

#[derive(Deserialize)]
struct NewUser {
    first_name: String,
    language_code: String,
}

async fn add_user(State(world): Shared, Json(new): Json<NewUser>) -> Answer {
    let name = new.first_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad("a name of 1 to 64 characters"));
    }
    if !matches!(new.language_code.as_str(), "en" | "ru") {
        return Err(ApiError::bad("language_code is en or ru"));
    }
    let mut users = world.users.lock().unwrap_or_else(|p| p.into_inner());
    if users.len() >= 50 {
        return Err(ApiError::bad("50 simulated users at most"));
    }
    let id = users.iter().map(|u| u.id).max().unwrap_or(1000) + 1;
    let user = SimUser { id, first_name: name.to_owned(), language_code: new.language_code };
    users.push(user.clone());
    done(user)
}

#[derive(Deserialize)]
struct Text {
    text: String,
    /// A reply to this bot message (a reply to a picture edits it).
    #[serde(default)]
    reply_to_message_id: Option<i64>,
}

/// A text; one starting with `/` is a command (with its arguments), as Telegram marks it.
async fn text(State(world): Shared, Path(id): Path<i64>, Json(body): Json<Text>) -> Answer {
    let profile = profile(&world, id)?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::bad("the message is empty"));
    }
    if text.chars().count() > 4096 {
        return Err(ApiError::bad("a message has at most 4096 characters"));
    }
    let state = world.tg.state();
    let sent = match text.strip_prefix('/') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphanumeric()) => {
            let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let name = head.split('@').next().unwrap_or(head);
            users::command(state, id, &profile, name, Some(args.trim()))?
        }
        _ => match body.reply_to_message_id {
            Some(reply_to) => users::reply(state, id, &profile, text, reply_to)?,
            None => users::text(state, id, &profile, text)?,
        },
    };
    done(sent)
}

#[derive(Deserialize)]
struct Photos {
    /// Each with `data_base64`; the first one's `caption` is the album's.
    items: Vec<ImageSpec>,
}

/// One photo, or an album of 2 to 10 (several chosen at once).
async fn photos(State(world): Shared, Path(id): Path<i64>, Json(body): Json<Photos>) -> Answer {
    let profile = profile(&world, id)?;
    if body.items.iter().any(|i| i.data_base64.is_none()) {
        return Err(ApiError::bad("every photo needs data_base64"));
    }
    let state = world.tg.state();
    match body.items.as_slice() {
        [] => Err(ApiError::bad("no photo")),
        [one] => done(users::photo(state, id, &profile, one, None)?),
        items if items.len() <= 10 => done(users::album(state, id, &profile, items, false)?),
        _ => Err(ApiError::bad("an album has at most 10 photos")),
    }
}

#[derive(Deserialize)]
struct Press {
    message_id: i64,
    data: String,
}

async fn press(State(world): Shared, Path(id): Path<i64>, Json(body): Json<Press>) -> Answer {
    let profile = profile(&world, id)?;
    done(users::press_button(world.tg.state(), id, &profile, body.message_id, &body.data)?)
}

#[derive(Deserialize)]
struct Pay {
    message_id: i64,
}

/// Pays a Stars invoice in place: the bot gets the pre-checkout query, then the payment.
async fn pay(State(world): Shared, Path(id): Path<i64>, Json(body): Json<Pay>) -> Answer {
    let profile = profile(&world, id)?;
    done(users::pay_invoice(world.tg.state(), id, &profile, body.message_id)?)
}

#[derive(Deserialize)]
struct Block {
    blocked: bool,
}

async fn block(State(world): Shared, Path(id): Path<i64>, Json(body): Json<Block>) -> Answer {
    let profile = profile(&world, id)?;
    done(users::set_blocked(world.tg.state(), id, &profile, body.blocked)?)
}

#[derive(Deserialize)]
struct Grant {
    credits: i64,
}

/// The operator grants credits (as `nanobanana admin grant` would), through the ledger.
async fn grant(State(world): Shared, Path(id): Path<i64>, Json(body): Json<Grant>) -> Answer {
    let profile = profile(&world, id)?;
    let credits = Credits::new(body.credits).map_err(|e| ApiError::bad(e.to_string()))?;
    let reason = Reason::parse("sandbox grant").map_err(|e| ApiError::bad(e.to_string()))?;
    let key = format!("sandbox:{}", uuid::Uuid::new_v4());
    let request = Adjustment {
        user_id: id,
        direction: Direction::Grant,
        credits,
        reason: &reason,
        actor: "sandbox",
        idempotency_key: &key,
    };
    let granted = async {
        let mut conn = world.pool.acquire().await?;
        let user =
            db_users::NewUser { telegram_id: id, username: None, first_name: profile.first_name.as_deref() };
        db_users::ensure(&mut conn, &user).await?;
        anyhow::Ok(ledger::adjust_alone(&mut conn, &request).await?)
    };
    match granted.await {
        Ok(result) => done(result),
        Err(e) => {
            tracing::error!(error = %e, user = id, "sandbox grant");
            Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the grant failed".into()))
        }
    }
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

async fn gemini_latency(State(world): Shared, Json(body): Json<Latency>) -> Answer {
    if body.ms > 600_000 {
        return Err(ApiError::bad("latency is at most 600000 ms"));
    }
    world.gemini.set_latency(std::time::Duration::from_millis(body.ms));
    done(true)
}

#[derive(Deserialize)]
struct Queue {
    behaviour: String,
    count: usize,
}

/// The next `count` Gemini calls behave this way (`503`, `429:5`, `blocked`, `hang`, …).
async fn gemini_queue(State(world): Shared, Json(body): Json<Queue>) -> Answer {
    let behaviour = Behaviour::parse(&body.behaviour)
        .ok_or_else(|| ApiError::bad(format!("unknown behaviour {:?}", body.behaviour)))?;
    if !(1..=100).contains(&body.count) {
        return Err(ApiError::bad("count is 1 to 100"));
    }
    world.gemini.queue(behaviour, body.count);
    done(true)
}

#[derive(Deserialize)]
struct ModelSwitch {
    /// A Google model id of the catalog.
    id: String,
    served: bool,
}

/// Removes a model at the fake Gemini (unlisted, 404 NOT_FOUND) or serves it again; the
/// worker's probe notices within `MODEL_PROBE_SECS`.
async fn gemini_model(State(world): Shared, Json(body): Json<ModelSwitch>) -> Answer {
    if fakes::gemini::models::find(&body.id).is_none() {
        return Err(ApiError::bad(format!("the fake serves no model {:?}", body.id)));
    }
    if body.served {
        world.gemini.restore_model(&body.id);
    } else {
        world.gemini.remove_model(&body.id);
    }
    done(true)
}

#[derive(Deserialize)]
struct Shrink {
    on: bool,
}

/// Every picture at 1K whatever size was bought (the worker retries once, then charges 1K).
async fn gemini_shrink(State(world): Shared, Json(body): Json<Shrink>) -> Answer {
    world.gemini.set_shrink(body.on);
    done(true)
}

async fn gemini_clear(State(world): Shared) -> Answer {
    world.gemini.clear_queue();
    done(true)
}

#[derive(Deserialize)]
struct TelegramFault {
    kind: FaultKind,
    count: u32,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    method: Option<String>,
}

/// The bot's next `count` Bot API calls fail (429 with `retry_after`, 403 or 500).
async fn telegram_fault(State(world): Shared, Json(body): Json<TelegramFault>) -> Answer {
    if !(1..=100).contains(&body.count) || body.retry_after.is_some_and(|s| s > 300) {
        return Err(ApiError::bad("count is 1 to 100, retry_after at most 300 s"));
    }
    let method = body.method.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| "*".into());
    world.tg.inject_fault(Fault {
        method,
        count: body.count,
        kind: body.kind,
        retry_after: body.retry_after,
        processed: false,
    });
    done(true)
}

async fn telegram_clear(State(world): Shared) -> Answer {
    world.tg.clear_faults();
    done(true)
}

#[derive(Deserialize)]
struct Pace {
    strict: bool,
}

async fn telegram_pace(State(world): Shared, Json(body): Json<Pace>) -> Answer {
    world.tg.set_strict_pace(body.strict);
    done(true)
}

async fn yookassa_mode(State(world): Shared, Json(mode): Json<NotifyMode>) -> Answer {
    if mode.duplicate > 10 || mode.delay_ms > 600_000 || mode.drop_next > 100 {
        return Err(ApiError::bad("duplicate ≤ 10, delay_ms ≤ 600000, drop_next ≤ 100"));
    }
    let releasing = !mode.hold && world.yk.held_notifications() > 0;
    world.yk.set_notify_mode(mode);
    if releasing {
        world.yk.release_notifications(false).await;
    }
    done(true)
}

#[derive(Deserialize)]
struct Release {
    #[serde(default)]
    reverse: bool,
}

async fn yookassa_release(State(world): Shared, Json(body): Json<Release>) -> Answer {
    done(json!({"released": world.yk.release_notifications(body.reverse).await}))
}
