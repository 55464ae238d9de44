//! What the worker reads beyond `jobs`: what a claimed generation asks for (with its user's
//! language and delivery setting), and the languages of the admins it alerts. Writes nothing:
//! a generation's row is written through `jobs`, its settlement through `ledger`.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Delivery, ImageSize, Settings};
use crate::texts::Lang;

/// What a claimed generation asks for, and how its user wants the answer.
#[derive(Debug, Clone)]
pub struct Job {
    pub prompt: String,
    /// The catalog key the generation was created with (as stored: a key of an earlier
    /// release, such as `flash`, is looked up through the catalog's aliases).
    pub model: String,
    /// The size bought (`None` on rows of the previous release's Flash).
    pub size: Option<ImageSize>,
    pub aspect_ratio: String,
    pub lang: Lang,
    pub delivery: Delivery,
    /// Telegram file ids of the reference photos, when the prompt came with any.
    pub reference_file_ids: Vec<String>,
    /// Whether the request queued a status message (`outbox::status`) to keep up to date.
    pub status_message: bool,
    /// The generation this one edits: its stored conversation is continued.
    pub parent: Option<Uuid>,
    /// The style preset applied to the prompt (`domain::styles`), if any.
    pub style: Option<String>,
}

type JobRow =
    (String, String, Option<String>, String, String, Value, Vec<String>, bool, Option<Uuid>, Option<String>);

/// `None` when the generation is gone. Unknown stored values fall back to defaults rather than
/// failing the job.
pub async fn load(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Job>> {
    let row: Option<JobRow> = sqlx::query_as(
        "SELECT g.prompt, g.model, g.image_size, g.aspect_ratio, u.language, u.settings,
                g.reference_file_ids, g.status_outbox_id IS NOT NULL, g.parent_id, g.style
         FROM generations g JOIN users u ON u.telegram_id = g.user_id
         WHERE g.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(
            prompt,
            model,
            size,
            aspect_ratio,
            language,
            settings,
            references,
            status_message,
            parent,
            style,
        )| Job {
            prompt,
            model,
            size: size.and_then(|s| ImageSize::parse(&s).ok()),
            aspect_ratio,
            lang: Lang::parse(&language).unwrap_or(Lang::Ru),
            delivery: Settings::from_json(&settings).delivery,
            reference_file_ids: references,
            status_message,
            parent,
            style,
        },
    ))
}

/// What an edit continues: the stored conversation of `parent` (`None` when it has none: made
/// before conversations were kept, or erased) and its original picture, if `user` owns it.
pub async fn parent_of(
    conn: &mut PgConnection,
    parent: Uuid,
    user: i64,
) -> sqlx::Result<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as("SELECT turn_key, result_key FROM generations WHERE id = $1 AND user_id = $2")
        .bind(parent)
        .bind(user)
        .fetch_optional(conn)
        .await
}

/// The language of each admin who is a known user (Russian for the others).
pub async fn admin_languages(conn: &mut PgConnection, admins: &[i64]) -> sqlx::Result<Vec<(i64, Lang)>> {
    let known = crate::db::users::languages(conn, admins).await?;
    Ok(admins
        .iter()
        .map(|id| {
            let lang = known.iter().find(|(k, _)| k == id).map(|(_, l)| *l);
            (*id, lang.unwrap_or(Lang::Ru))
        })
        .collect())
}
