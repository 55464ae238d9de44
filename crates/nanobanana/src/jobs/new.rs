//! Creating generations (which are also jobs): the insert keyed to its source (a redelivered
//! update or album cannot make a second one), the load a new request is checked against, and
//! the fenced start of processing for tests and benchmarks. Settlement — the move to a
//! terminal state — is `ledger::settle`, never here.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::request::Load;
use crate::domain::{Credits, ImageSize, Model, TelegramId};

#[derive(Debug, Clone)]
pub struct NewGeneration<'a> {
    pub id: Uuid,
    pub user_id: TelegramId,
    pub prompt: &'a str,
    /// Our catalog key (stored; settings and stats name models by it).
    pub model: Model,
    /// Google's id the generation is created with, kept with it.
    pub model_id: Option<&'a str>,
    pub image_size: Option<ImageSize>,
    pub aspect_ratio: &'a str,
    pub cost: Credits,
    pub source_key: &'a str,
}

/// The lease `start` takes; the worker's claim (`jobs::claim`) chooses its own.
pub const START_LEASE: Duration = Duration::from_secs(60);

/// Inserts a queued generation, due now, with the schema's default deadline (15 minutes);
/// `false` when the same source already created one. Call it in the transaction that
/// reserves its cost (`ledger::reserve`).
pub async fn insert(conn: &mut PgConnection, generation: &NewGeneration<'_>) -> sqlx::Result<bool> {
    insert_with_deadline(conn, generation, None).await
}

/// The longest deadline `insert_with_deadline` sets (`GENERATION_DEADLINE_SECS`' maximum).
pub const MAX_DEADLINE: Duration = Duration::from_secs(86_400);

/// `insert` with the deadline `deadline` from now (`GENERATION_DEADLINE_SECS`, whole seconds,
/// at most `MAX_DEADLINE`); `None` keeps the schema's default.
pub async fn insert_with_deadline(
    conn: &mut PgConnection,
    generation: &NewGeneration<'_>,
    deadline: Option<Duration>,
) -> sqlx::Result<bool> {
    insert_requested(conn, generation, deadline, &[], None).await
}

/// `insert_with_deadline` for a request made in the chat: with the Telegram file ids of its
/// reference photos and its status message (`outbox::status::open`, queued just before in the
/// same transaction), in one statement.
pub async fn insert_requested(
    conn: &mut PgConnection,
    generation: &NewGeneration<'_>,
    deadline: Option<Duration>,
    reference_file_ids: &[String],
    status_outbox_id: Option<i64>,
) -> sqlx::Result<bool> {
    insert_linked(conn, generation, deadline, reference_file_ids, status_outbox_id, &Links::default()).await
}

/// What links a generation to others and shapes its prompt (DESIGN §10): the picture it edits,
/// the request its variants share, and the style preset applied to the user's words.
#[derive(Debug, Clone, Default)]
pub struct Links<'a> {
    pub parent: Option<Uuid>,
    pub request: Option<Uuid>,
    /// How many variants the request has (1 without `request`).
    pub variants: u8,
    pub style: Option<&'a str>,
}

/// `insert_requested` with `links`.
pub async fn insert_linked(
    conn: &mut PgConnection,
    generation: &NewGeneration<'_>,
    deadline: Option<Duration>,
    reference_file_ids: &[String],
    status_outbox_id: Option<i64>,
    links: &Links<'_>,
) -> sqlx::Result<bool> {
    // `generation_insert` (migrations `…220`, `…224`, owned by this module): the intake's
    // server-side prompt path inserts through it too.
    sqlx::query_scalar(
        "SELECT generation_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(generation.id)
    .bind(generation.user_id)
    .bind(generation.prompt)
    .bind(generation.model.as_str())
    .bind(generation.image_size.map(ImageSize::as_str))
    .bind(generation.aspect_ratio)
    .bind(generation.cost.get())
    .bind(generation.source_key)
    .bind(deadline.map(|d| Duration::from_secs(d.min(MAX_DEADLINE).as_secs())))
    .bind(reference_file_ids)
    .bind(status_outbox_id)
    .bind(generation.model_id)
    .bind(links.parent)
    .bind(links.request)
    .bind(i16::from(links.variants.clamp(1, 4)))
    .bind(links.style)
    .fetch_one(conn)
    .await
}

/// Takes this one queued generation into `processing` under a new lease epoch (which every
/// later write of this holder must present) and a lease of `START_LEASE`, as `jobs::claim`
/// would, whether or not it is due yet. `None` if it is not queued. For tests and benchmarks;
/// workers use `jobs::claim`.
pub async fn start(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE generations
         SET status = 'processing', lease_epoch = lease_epoch + 1, attempts = attempts + 1,
             locked_until = now() + $2::interval, started_at = now()
         WHERE id = $1 AND status = 'queued'
         RETURNING lease_epoch",
    )
    .bind(id)
    .bind(START_LEASE)
    .fetch_optional(conn)
    .await
}

/// What a new request of `user` for Google's `model_id` is checked against, in one round trip:
/// their generations in flight and created today, whether generation is paused for everyone,
/// whether that model is missing at Gemini, and what they owe.
/// Call it holding the user's balance lock (`ledger::lock_balance`), so the counts see every
/// request of theirs committed before it. Each count reads only what it counts (in flight:
/// `generations_active`; today: `generations_by_user`), never the user's whole history.
pub async fn load_of(conn: &mut PgConnection, user: TelegramId, model_id: &str) -> sqlx::Result<Load> {
    let (in_flight, today, paused, owed, model_missing): (i64, i64, Option<String>, i64, Option<String>) =
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM generations
                 WHERE user_id = $1 AND status IN ('queued', 'processing')),
                (SELECT COUNT(*) FROM generations
                 WHERE user_id = $1 AND created_at >= date_trunc('day', now())),
                (SELECT reason FROM service_state WHERE name = $2),
                COALESCE((SELECT owed FROM credit_debts WHERE user_id = $1), 0),
                (SELECT reason FROM unavailable_models WHERE model_id = $3)",
        )
        .bind(user)
        .bind(super::pause::NAME)
        .bind(model_id)
        .fetch_one(conn)
        .await?;
    Ok(Load { in_flight, today, paused, owed, model_missing })
}
