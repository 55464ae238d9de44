//! How a generation ends, each in one transaction: `ledger::settle` plus what the user (and the
//! generation row) must get with it — "done" in the status message and the photo (and the
//! original) after it on success, the reason and "credits returned" on failure. `Stale` from the ledger means this holder lost the job:
//! the transaction rolls back and nothing at all changes.

use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::repo::{self, Job};
use crate::domain::{Button, CatalogModel, Credits, Delivery, ImageSize, ResultAction};
use crate::jobs::Produced;
use crate::ledger::{self, Settled, Settlement};
use crate::outbox;
use crate::outbox::alerts::{tell_admins_once, Alert};
use crate::texts::{render, Lang};

/// The prompt shown in a caption is cut to this many characters.
const CAPTION_PROMPT_CHARS: usize = 200;

/// Whether a settlement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Now,
    /// The lease was gone: nothing changed.
    Stale,
}

/// What a delivered picture is charged: its model, the size bought and the size delivered
/// (measured from its pixels).
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    pub model: &'a CatalogModel,
    pub bought: ImageSize,
    /// `None`: smaller than 1K.
    pub delivered: Option<ImageSize>,
}

impl Charge<'_> {
    /// A picture smaller than bought: the price of the size delivered and that size.
    fn smaller(&self) -> Option<(Credits, ImageSize)> {
        let (charged, got) = self.model.charge(self.bought, self.delivered);
        (charged.get() < self.model.price(self.bought).get() || got < self.bought).then_some((charged, got))
    }
}

/// Commits the credits of a stored result and queues its delivery. A picture smaller than the
/// size bought is charged the price of the size delivered in the same one settlement (the rest
/// goes back), and its user is told.
pub async fn succeed(
    pool: &PgPool,
    id: Uuid,
    epoch: i64,
    user_id: i64,
    job: &Job,
    charge: &Charge<'_>,
    produced: &Produced<'_>,
) -> anyhow::Result<Ended> {
    let smaller = charge.smaller();
    let settlement = match smaller {
        Some((charged, delivered)) => Settlement::CommitSmaller { charged, delivered },
        None => Settlement::Commit,
    };
    let mut tx = pool.begin().await?;
    let Settled::Now(entry) = ledger::settle(&mut tx, id, epoch, settlement).await? else {
        tx.rollback().await?;
        return Ok(Ended::Stale);
    };
    crate::jobs::record_result(&mut tx, id, produced).await?;
    // "Done" in the status message, queued before the photo so it never arrives after it.
    if job.status_message {
        crate::outbox::status::touch(&mut tx, id, true).await?;
    }
    let photo = json!({ "storage_key": produced.preview_key, "generation_id": id });
    let params = json!({
        "chat_id": user_id,
        "photo": photo,
        "caption": caption(job, charge),
        "parse_mode": "HTML",
        "reply_markup": buttons(job.lang, id),
    });
    outbox::enqueue_delivery(&mut tx, user_id, "sendPhoto", params, id).await?;
    if job.delivery == Delivery::PhotoAndFile {
        let document = json!({ "storage_key": produced.result_key, "generation_id": id });
        let params = json!({ "chat_id": user_id, "document": document });
        outbox::enqueue_delivery(&mut tx, user_id, "sendDocument", params, id).await?;
    }
    if let Some((charged, got)) = smaller {
        let back = entry.amount - charged.get();
        let text = render(
            job.lang,
            "smaller_delivered",
            &[
                ("got", got.as_str()),
                ("bought", charge.bought.as_str()),
                ("charged", &charged.to_string()),
                ("cost", &entry.amount.to_string()),
                ("back", &back.to_string()),
            ],
        );
        outbox::send_text(&mut tx, user_id, &text, None).await?;
        tracing::warn!(generation_id = %id, user_id, bought = %charge.bought, delivered = %got,
            charged = charged.get(), cost = entry.amount, "picture smaller than bought: charged as delivered");
    }
    tx.commit().await?;
    tracing::info!(generation_id = %id, user_id, cost = entry.amount, "credits committed; delivery queued");
    Ok(Ended::Now)
}

/// How long after its commit a picture with no delivery in sight is re-queued.
pub const REDELIVER_AFTER: std::time::Duration = std::time::Duration::from_secs(120);
/// Delivery rows one generation may get from the reconciler before it stops trying.
const REDELIVER_TRIES: i64 = 3;

/// The delivery reconciler (DESIGN §10 "Delivery is part of the sale"): a succeeded
/// generation whose picture has no `file_id` and no delivery pending, parked or sent (a row
/// dropped on a permanent error, or lost) gets its stored preview queued again, and the admins
/// (`admins`) are told, once per generation. How many.
pub async fn redeliver_lost(
    pool: &PgPool,
    age: std::time::Duration,
    admins: &[i64],
) -> anyhow::Result<usize> {
    let mut conn = pool.acquire().await?;
    let lost = outbox::undelivered(&mut conn, age, REDELIVER_TRIES, 100).await?;
    for (id, user_id, preview_key, before) in &lost {
        // The caption and buttons its first delivery had; without one, the buttons alone.
        let mut params = match before {
            Some(before) if before.get("photo").is_some() => before.clone(),
            _ => {
                let lang = repo::load(&mut conn, *id).await?.map_or(Lang::Ru, |job| job.lang);
                json!({ "reply_markup": buttons(lang, *id) })
            }
        };
        params["chat_id"] = json!(user_id);
        params["photo"] = json!({ "storage_key": preview_key, "generation_id": id });
        let mut tx = conn.begin().await?;
        outbox::enqueue_delivery(&mut tx, *user_id, "sendPhoto", params, *id).await?;
        let (generation, user) = (id.to_string(), user_id.to_string());
        let args = [("generation", generation.as_str()), ("user", user.as_str())];
        tell_admins_once(&mut tx, admins, Alert::Redelivered, &generation, &args).await?;
        tx.commit().await?;
        tracing::warn!(generation_id = %id, user_id, "paid picture had no delivery in sight: queued again");
    }
    Ok(lost.len())
}

/// Why a generation failed, as the user is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Blocked,
    Refused,
    NoImage,
    Invalid,
    RetriesExhausted,
    Deadline,
    /// The model is gone (the probe, a 404, or a key the catalog no longer has).
    ModelUnavailable,
    /// Gemini answered twice with image data that is not a picture.
    NotAPicture,
}

impl Failure {
    fn text_key(self) -> &'static str {
        match self {
            Failure::Blocked => "failed_blocked",
            Failure::Refused => "failed_refused",
            Failure::NoImage => "failed_no_image",
            Failure::Invalid => "failed_invalid",
            Failure::RetriesExhausted => "failed_retries",
            Failure::Deadline => "failed_deadline",
            Failure::ModelUnavailable => "failed_model_unavailable",
            Failure::NotAPicture => "failed_not_a_picture",
        }
    }
}

/// Releases the credits of a failed generation and tells its user why. `error` is recorded on
/// the generation (for the operator, never shown).
pub async fn fail(
    pool: &PgPool,
    id: Uuid,
    epoch: i64,
    user_id: i64,
    lang: Lang,
    failure: Failure,
    error: &str,
) -> anyhow::Result<Ended> {
    let mut tx = pool.begin().await?;
    let Settled::Now(entry) = ledger::settle(&mut tx, id, epoch, Settlement::Release { error }).await? else {
        tx.rollback().await?;
        return Ok(Ended::Stale);
    };
    explain(&mut tx, id, user_id, lang, failure, entry.amount).await?;
    tx.commit().await?;
    tracing::info!(generation_id = %id, user_id, amount = entry.amount, error, "generation failed; credits released");
    Ok(Ended::Now)
}

/// The status message (if the generation has one) now says why it failed and that the
/// credits came back; without one, a message says so.
async fn explain(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    user_id: i64,
    lang: Lang,
    failure: Failure,
    credits: i64,
) -> sqlx::Result<()> {
    if crate::jobs::set_failure(conn, id, failure.text_key()).await? == Some(true) {
        crate::outbox::status::touch(conn, id, true).await
    } else {
        outbox::send_text(conn, user_id, &failure_text(lang, failure, credits), None).await.map(drop)
    }
}

pub fn failure_text(lang: Lang, failure: Failure, credits: i64) -> String {
    let reason = render(lang, failure.text_key(), &[]);
    render(lang, "generation_failed", &[("reason", &reason), ("credits", &credits.to_string())])
}

fn caption(job: &Job, charge: &Charge<'_>) -> String {
    let mut prompt: String = job.prompt.chars().take(CAPTION_PROMPT_CHARS).collect();
    if prompt.chars().count() < job.prompt.chars().count() {
        prompt.push('…');
    }
    let size = charge.smaller().map_or(charge.bought, |(_, got)| got);
    let model = charge.model.label(job.lang == Lang::En, size);
    render(
        job.lang,
        "result_caption",
        &[("prompt", &prompt), ("model", &model), ("aspect", &job.aspect_ratio)],
    )
}

/// 🔁 regenerate, ✏️ edit, 📎 original, ×4 variants (`Button::Result`).
pub(crate) fn buttons(lang: Lang, id: Uuid) -> Value {
    let button = |key: &str, action: ResultAction| {
        let data = Button::Result { action, generation: id }.encode();
        json!({ "text": render(lang, key, &[]), "callback_data": data })
    };
    json!({ "inline_keyboard": [[
        button("button_regenerate", ResultAction::Regenerate),
        button("button_edit", ResultAction::Edit),
        button("button_original", ResultAction::Original),
        button("button_variants4", ResultAction::Variants4),
    ]] })
}

/// Tells every admin once that generation paused (or resumed), in the same transaction as
/// the change of the flag.
pub async fn alert_admins(
    conn: &mut sqlx::PgConnection,
    admins: &[i64],
    key: &str,
    reason: &str,
) -> sqlx::Result<()> {
    for (admin, lang) in repo::admin_languages(conn, admins).await? {
        outbox::send_text(conn, admin, &render(lang, key, &[("reason", reason)]), None).await?;
    }
    Ok(())
}

/// The deadline sweep (or the model probe) ended this generation in its own transaction: tell
/// the user why. Sent after that committed, so a crash in between loses only this message,
/// never money.
pub async fn tell_ended(
    pool: &PgPool,
    id: Uuid,
    user_id: i64,
    credits: i64,
    failure: Failure,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let lang = crate::db::users::language(&mut *conn, user_id).await?.unwrap_or(Lang::Ru);
    explain(&mut conn, id, user_id, lang, failure, credits).await?;
    tracing::info!(generation_id = %id, user_id, ?failure, "user told why the generation ended");
    Ok(())
}

/// What happened, for `last_error`, the logs and the admins; never the user's prompt.
pub(super) fn describe(outcome: &crate::gemini::Outcome) -> String {
    let text = match outcome {
        crate::gemini::Outcome::Image(_) => "image".to_owned(),
        crate::gemini::Outcome::Retryable { reason, .. }
        | crate::gemini::Outcome::DailyQuota { reason }
        | crate::gemini::Outcome::InvalidKey { reason }
        | crate::gemini::Outcome::Blocked { reason }
        | crate::gemini::Outcome::Invalid { reason }
        | crate::gemini::Outcome::ModelNotFound { reason }
        | crate::gemini::Outcome::BadImage { reason } => format!("{}: {reason}", outcome.kind()),
        crate::gemini::Outcome::TextRefusal { .. } => "text_refusal".to_owned(),
        crate::gemini::Outcome::NoImage { finish_reason } => {
            format!("no_image: {}", finish_reason.as_deref().unwrap_or("-"))
        }
    };
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    fn job(prompt: &str, lang: Lang) -> Job {
        Job {
            prompt: prompt.to_owned(),
            model: "flash".to_owned(),
            size: None,
            aspect_ratio: "16:9".to_owned(),
            lang,
            delivery: Delivery::Photo,
            reference_file_ids: Vec::new(),
            status_message: false,
            parent: None,
            style: None,
        }
    }

    #[test]
    fn captions_escape_and_cut_the_prompt() {
        let long = "<b>".repeat(100);
        let catalog = crate::domain::default_catalog();
        let model = catalog.find("flash").expect("flash is now Nano Banana 2.1");
        let charge = Charge { model, bought: ImageSize::K1, delivered: Some(ImageSize::K1) };
        let caption = caption(&job(&long, Lang::En), &charge);
        assert!(
            caption.starts_with("🍌 &lt;b&gt;") && caption.contains("…\nNano Banana 2.1 1K · 16:9"),
            "{caption}"
        );
        let pro = catalog.find("pro").expect("pro");
        let smaller = Charge { model: pro, bought: ImageSize::K4, delivered: Some(ImageSize::K1) };
        assert!(caption_of(&smaller).contains("Nano Banana Pro 1K"), "{}", caption_of(&smaller));
        assert_eq!(smaller.smaller().map(|(c, s)| (c.get(), s)), Some((20, ImageSize::K1)));
        let full = Charge { model: pro, bought: ImageSize::K2, delivered: Some(ImageSize::K4) };
        assert_eq!(full.smaller(), None);
        assert_eq!(caption.matches("&lt;b&gt;").count(), 66, "200 characters of the prompt, escaped");
    }

    fn caption_of(charge: &Charge<'_>) -> String {
        caption(&job("x", Lang::En), charge)
    }

    #[test]
    fn buttons_fit_telegrams_callback_data_limit() {
        let markup = buttons(Lang::Ru, Uuid::max());
        let row = markup["inline_keyboard"][0].as_array().expect("one row");
        assert_eq!(row.len(), 4);
        for (button, action) in row.iter().zip(ResultAction::ALL) {
            let data = button["callback_data"].as_str().expect("data");
            assert!(data.len() <= Button::MAX_BYTES, "{data}");
            assert_eq!(Button::parse(data), Some(Button::Result { action, generation: Uuid::max() }));
        }
        assert_eq!(row[2]["text"], "📎 Оригинал");
    }

    #[test]
    fn failures_say_why_and_what_came_back_in_both_languages() {
        let en = failure_text(Lang::En, Failure::Blocked, 40);
        assert!(en.contains("safety rules") && en.contains("40 cr. returned"), "{en}");
        let ru = failure_text(Lang::Ru, Failure::Deadline, 40);
        assert!(ru.contains("слишком много времени") && ru.contains("40 кр."), "{ru}");
    }
}
