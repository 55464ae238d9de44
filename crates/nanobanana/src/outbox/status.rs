//! The status message of a generation (DESIGN §4 "Outbox sender"): queued (with the place in the queue) → generating (elapsed time) → done, or failed
//! with the reason and "credits returned", in the user's language.
//!
//! The message is one outbox row (`status_of` = the generation) whose text is rendered from the
//! generation's current state when the sender sends it; later changes are edits of that
//! message, coalesced to at most one pending row per generation (a unique index), so however
//! often the state changes, Telegram sees one send and few edits. An edit of a message not yet
//! sent is folded into the send. A final state's edit is due at once and, being written in
//! the settling transaction before the photo, is always sent before the photo (per-chat FIFO).
//! This module writes outbox rows and renders texts (what the message showed is kept on the
//! generation through `jobs`); it never calls Telegram.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Catalog, GenerationStatus, ImageSize};
use crate::texts::{render, Lang};

/// Progress edits of one message are at least this far apart (a final state's is not held).
pub const MIN_EDIT_SPACING: Duration = Duration::from_secs(2);
/// A message showing "generating" is refreshed (elapsed time) this often, capacity allowing.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// The prompt shown in the status message is cut to this many characters.
const PROMPT_CHARS: usize = 100;

/// Queues the status message of generation `generation` (its text is rendered when it is
/// sent); the row's id, which the generation is inserted with (`jobs::new::insert_requested`)
/// in the same transaction, right after (the row's reference to it is checked at commit).
pub async fn open(conn: &mut PgConnection, chat_id: i64, generation: Uuid) -> sqlx::Result<i64> {
    // `outbox_status_open`, shared with the intake's server-side paths.
    sqlx::query_scalar("SELECT outbox_status_open($1, $2)")
        .bind(chat_id)
        .bind(generation)
        .fetch_one(&mut *conn)
        .await
}

/// The generation's state changed: its status message needs an edit (the message of its
/// request, when it is one of several variants: they share the first one's). Folds into the pending
/// status row if there is one (taking its row lock, so a sender marking it sent waits for this
/// transaction and then sees the change). `final_state`: due at once, and never skipped by the
/// sender, so it goes before anything queued after it in the chat (the photo). Without a
/// status message (generations not made through the bot) nothing happens.
pub async fn touch(conn: &mut PgConnection, generation: Uuid, final_state: bool) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (chat_id, method, params, edits, status_of, next_attempt_at, class)
         SELECT o.chat_id, 'editMessageText',
                jsonb_build_object('chat_id', o.chat_id, 'parse_mode', 'HTML', 'final', $2),
                o.id, COALESCE(o.status_of, g.id),
                CASE WHEN $2 THEN now()
                     ELSE GREATEST(now(), g.status_shown_at + $3::interval) END,
                2
         FROM generations g JOIN outbox o ON o.id = g.status_outbox_id
         WHERE g.id = $1
         ON CONFLICT (status_of) WHERE state = 'pending' AND status_of IS NOT NULL
         DO UPDATE SET next_attempt_at = LEAST(outbox.next_attempt_at, EXCLUDED.next_attempt_at),
                       params = CASE WHEN $2 THEN outbox.params || '{\"final\": true}' ELSE outbox.params END",
    )
    .bind(generation)
    .bind(final_state)
    .bind(MIN_EDIT_SPACING)
    .execute(conn)
    .await?;
    Ok(())
}

/// A status text as rendered now, and the generation status it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub phase: GenerationStatus,
    /// What the message shows already (an edit to the same text is skipped).
    pub shown: Option<String>,
    /// ❌ while something of the request has not started.
    pub keyboard: Option<serde_json::Value>,
    /// A request of several variants: where it stood when rendered.
    pub progress: Option<super::group::Progress>,
}

type StateRow = (
    GenerationStatus,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<String>,
);

/// The status text of `generation` from its current state; `None` if it is gone.
pub async fn render_now(
    conn: &mut PgConnection,
    catalog: &Catalog,
    generation: Uuid,
) -> sqlx::Result<Option<Rendered>> {
    let row: Option<StateRow> = sqlx::query_as(
        "SELECT g.status, g.prompt, g.model, g.image_size, g.cost, u.language, g.failure, g.error,
                EXTRACT(EPOCH FROM (COALESCE(g.completed_at, now())
                                    - COALESCE(g.started_at, g.created_at)))::bigint,
                CASE WHEN g.status = 'queued' THEN
                    (SELECT COUNT(*) FROM generations q
                     WHERE q.status = 'queued' AND q.run_after <= g.run_after) ELSE 0 END,
                g.status_shown
         FROM generations g JOIN users u ON u.telegram_id = g.user_id
         WHERE g.id = $1",
    )
    .bind(generation)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, prompt, model, size, cost, language, failure, error, elapsed, position, shown)) = row
    else {
        return Ok(None);
    };
    let lang = Lang::parse(&language).unwrap_or(Lang::Ru);
    let state = State {
        status,
        prompt: &prompt,
        model: catalog.label(lang == Lang::En, &model, size.and_then(|s| ImageSize::parse(&s).ok())),
        cost,
        failure: failure.as_deref().unwrap_or_else(|| failure_of(error.as_deref())),
        elapsed: elapsed.max(0),
        position: position.max(1),
    };
    let keyboard = super::group::cancel_keyboard(conn, lang, generation).await?;
    let progress = super::group::progress(conn, generation).await?;
    let (text, phase) = match &progress {
        Some(progress) => (progress.text(lang, &cut_prompt(&prompt), &state.model), progress.phase()),
        None => (text(lang, &state), status),
    };
    Ok(Some(Rendered { text, phase, shown, keyboard, progress }))
}

fn cut_prompt(prompt: &str) -> String {
    let mut cut: String = prompt.chars().take(PROMPT_CHARS).collect();
    if prompt.chars().count() > PROMPT_CHARS {
        cut.push('…');
    }
    cut
}

/// The failure text key of a generation ended without one recorded (the deadline sweep).
fn failure_of(error: Option<&str>) -> &'static str {
    match error {
        Some(crate::jobs::DEADLINE_ERROR) => "failed_deadline",
        Some(crate::jobs::availability::UNAVAILABLE_ERROR) => "failed_model_unavailable",
        _ => "failed_retries",
    }
}

/// What a status text is made of.
#[derive(Debug, Clone)]
pub struct State<'a> {
    pub status: GenerationStatus,
    pub prompt: &'a str,
    pub model: String,
    pub cost: i64,
    /// A `failed_*` text key.
    pub failure: &'a str,
    pub elapsed: i64,
    pub position: i64,
}

/// The status text of `state` in `lang`.
pub fn text(lang: Lang, state: &State<'_>) -> String {
    let prompt = cut_prompt(state.prompt);
    let (cost, elapsed) = (state.cost.to_string(), state.elapsed.to_string());
    match state.status {
        GenerationStatus::Queued => {
            let accepted =
                render(lang, "queued", &[("prompt", &prompt), ("model", &state.model), ("cost", &cost)]);
            let position = render(lang, "progress_position", &[("position", &state.position.to_string())]);
            format!("{accepted}\n{position}")
        }
        GenerationStatus::Processing => render(
            lang,
            "progress_generating",
            &[("prompt", &prompt), ("model", &state.model), ("elapsed", &elapsed)],
        ),
        GenerationStatus::Succeeded => render(
            lang,
            "progress_done",
            &[("prompt", &prompt), ("model", &state.model), ("elapsed", &elapsed)],
        ),
        GenerationStatus::Failed => {
            let reason = render(lang, state.failure, &[]);
            render(lang, "generation_failed", &[("reason", &reason), ("credits", &cost)])
        }
    }
}

/// The sender showed `rendered`: remembered, so an identical edit is skipped and progress
/// edits are spaced out. Waits for a transaction changing the generation to end; if it (or, for
/// a request of several variants, any variant) moved on since it was rendered, the status to
/// show now: the caller queues another edit.
pub async fn shown(
    conn: &mut PgConnection,
    generation: Uuid,
    rendered: &Rendered,
) -> sqlx::Result<Option<GenerationStatus>> {
    let now = crate::jobs::status_shown(conn, generation, &rendered.text, rendered.phase).await?;
    Ok(match rendered.progress {
        Some(then) => {
            super::group::progress(conn, generation).await?.filter(|p| *p != then).map(|p| p.phase())
        }
        None => now.filter(|now| *now != rendered.phase),
    })
}

/// Queues edits for up to `limit` generations being worked on whose message still shows an
/// earlier state or an elapsed time older than `REFRESH_EVERY`, oldest first; how many.
pub async fn refresh(conn: &mut PgConnection, limit: i64) -> sqlx::Result<u64> {
    if limit <= 0 {
        return Ok(0);
    }
    let stale: Vec<Uuid> = sqlx::query_scalar(
        "SELECT g.id FROM generations g
         WHERE g.status = 'processing' AND g.status_outbox_id IS NOT NULL
           AND g.status_shown_at IS NOT NULL
           AND (g.status_phase IS DISTINCT FROM 'processing' OR g.status_shown_at < now() - $2::interval)
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.status_of = g.id AND o.state = 'pending')
         ORDER BY g.status_shown_at
         LIMIT $1",
    )
    .bind(limit)
    .bind(REFRESH_EVERY)
    .fetch_all(&mut *conn)
    .await?;
    for id in &stale {
        touch(conn, *id, false).await?;
    }
    Ok(stale.len() as u64)
}

/// Status rows waiting to be sent (the refresh adds no more than the sender can take).
pub async fn pending(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND status_of IS NOT NULL")
        .fetch_one(conn)
        .await
}

/// Chats with a generation being worked on (for the `upload_photo` chat action).
pub async fn generating_chats(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT DISTINCT o.chat_id FROM generations g JOIN outbox o ON o.id = g.status_outbox_id
         WHERE g.status = 'processing' LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: GenerationStatus) -> State<'static> {
        State {
            status,
            prompt: "a <cat>",
            model: "Nano Banana 2".into(),
            cost: 10,
            failure: "failed_blocked",
            elapsed: 12,
            position: 3,
        }
    }

    #[test]
    fn each_state_reads_in_both_languages() {
        let queued = text(Lang::En, &state(GenerationStatus::Queued));
        assert!(queued.contains("Prompt accepted: a &lt;cat&gt;") && queued.contains("queue: 3"), "{queued}");
        let generating = text(Lang::En, &state(GenerationStatus::Processing));
        assert!(generating.contains("Generating") && generating.contains("12 s"), "{generating}");
        let done = text(Lang::Ru, &state(GenerationStatus::Succeeded));
        assert!(done.contains("Готово") && done.contains("12 с"), "{done}");
        let failed = text(Lang::Ru, &state(GenerationStatus::Failed));
        assert!(failed.contains("правилами безопасности") && failed.contains("10 кр."), "{failed}");
        let failed = text(Lang::En, &state(GenerationStatus::Failed));
        assert!(failed.contains("safety rules") && failed.contains("10 cr. returned"), "{failed}");
    }

    #[test]
    fn a_long_prompt_is_cut() {
        let long = "x".repeat(500);
        let shown = text(Lang::En, &State { prompt: &long, ..state(GenerationStatus::Processing) });
        assert!(shown.contains(&format!("{}…", "x".repeat(100))) && !shown.contains(&"x".repeat(101)));
    }

    #[test]
    fn a_failure_without_a_recorded_reason_is_read_from_its_error() {
        assert_eq!(failure_of(Some(crate::jobs::DEADLINE_ERROR)), "failed_deadline");
        assert_eq!(failure_of(Some("gave up")), "failed_retries");
        assert_eq!(failure_of(None), "failed_retries");
    }
}
