//! The status message of a request of several variants (DESIGN §10 "Variants and cancel"):
//! one message for the request, showing how many of its N pictures are ready, how many were
//! not made and the credits returned for them; and, on any status message, the ❌ button while
//! something of the request has not started. Part of `status`; reads generations, writes
//! nothing.

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Button, GenerationStatus};
use crate::texts::{render, Lang};

/// Where a request of several variants stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub processing: i64,
    /// The credits returned for the variants that failed (or were cancelled).
    pub returned: i64,
}

impl Progress {
    /// The status the message shows: queued while nothing started, done when all ended.
    pub fn phase(&self) -> GenerationStatus {
        let ended = self.succeeded + self.failed;
        if ended >= self.total {
            if self.succeeded > 0 {
                GenerationStatus::Succeeded
            } else {
                GenerationStatus::Failed
            }
        } else if ended == 0 && self.processing == 0 {
            GenerationStatus::Queued
        } else {
            GenerationStatus::Processing
        }
    }

    pub fn text(&self, lang: Lang, prompt: &str, model: &str) -> String {
        let icon = match self.phase() {
            GenerationStatus::Queued => "⏳",
            GenerationStatus::Processing => "🎨",
            GenerationStatus::Succeeded => "✅",
            GenerationStatus::Failed => "❌",
        };
        let (n, ok) = (self.total.to_string(), self.succeeded.to_string());
        let mut text = render(
            lang,
            "variants_status",
            &[("icon", icon), ("prompt", prompt), ("model", model), ("n", &n), ("ok", &ok)],
        );
        if self.failed > 0 {
            let (failed, credits) = (self.failed.to_string(), self.returned.to_string());
            text.push('\n');
            text.push_str(&render(lang, "variants_returned", &[("failed", &failed), ("credits", &credits)]));
        }
        text
    }
}

/// The progress of the request `generation` leads (`None` when it is a single generation).
pub async fn progress(conn: &mut PgConnection, generation: Uuid) -> sqlx::Result<Option<Progress>> {
    let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE v.status = 'succeeded'),
                COUNT(*) FILTER (WHERE v.status = 'failed'),
                COUNT(*) FILTER (WHERE v.status = 'processing'),
                COALESCE(SUM(v.cost) FILTER (WHERE v.status = 'failed'), 0)::BIGINT
         FROM generations g JOIN generations v ON v.request_id = g.request_id
         WHERE g.id = $1 AND g.request_id IS NOT NULL
         HAVING COUNT(*) > 0",
    )
    .bind(generation)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(total, succeeded, failed, processing, returned)| Progress {
        total,
        succeeded,
        failed,
        processing,
        returned,
    }))
}

/// ❌ under the status message of `generation` while it, or a variant of its request, has not
/// started; `None` otherwise (an edit without it removes the button).
pub async fn cancel_keyboard(
    conn: &mut PgConnection,
    lang: Lang,
    generation: Uuid,
) -> sqlx::Result<Option<Value>> {
    let waiting: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM generations g
             JOIN generations v ON v.id = g.id OR (g.request_id IS NOT NULL AND v.request_id = g.request_id)
             WHERE g.id = $1 AND v.status = 'queued' AND v.started_at IS NULL)",
    )
    .bind(generation)
    .fetch_one(conn)
    .await?;
    Ok(waiting.then(|| cancel_markup(lang, generation)))
}

/// The ❌ keyboard of `generation`'s status message.
pub fn cancel_markup(lang: Lang, generation: Uuid) -> Value {
    let button = Button::Cancel { generation }.encode();
    json!({ "inline_keyboard": [[{ "text": render(lang, "button_cancel", &[]), "callback_data": button }]] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_follows_the_variants_and_failures_show_what_came_back() {
        let p = |succeeded, failed, processing| Progress {
            total: 4,
            succeeded,
            failed,
            processing,
            returned: failed * 10,
        };
        assert_eq!(p(0, 0, 0).phase(), GenerationStatus::Queued);
        assert_eq!(p(0, 0, 1).phase(), GenerationStatus::Processing);
        assert_eq!(p(1, 0, 0).phase(), GenerationStatus::Processing);
        assert_eq!(p(2, 2, 0).phase(), GenerationStatus::Succeeded);
        assert_eq!(p(0, 4, 0).phase(), GenerationStatus::Failed);
        let en = p(2, 2, 0).text(Lang::En, "a cat", "Nano Banana 2.1 1K");
        assert!(en.contains("2 of 4") && en.contains("20 cr. returned"), "{en}");
        let ru = p(1, 0, 2).text(Lang::Ru, "кот", "Nano Banana 2.1 1K");
        assert!(ru.contains("1 из 4") && !ru.contains("верну"), "{ru}");
    }
}
