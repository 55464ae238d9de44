//! Variants, styles and edits as a request sees them (DESIGN §10): what a request is shaped
//! into before its checks (`shape`: the style's template and suggested ratio, how many
//! variants), and how it is queued (`queue`): each variant its own generation — its own
//! reserve, its own single settlement — linked by a request id and sharing one status message
//! (the first variant's). The checks before (`request`) count every variant against the caps
//! and refuse the whole request when the balance does not cover them all, so a refusal never
//! leaves part of a request reserved.

use sqlx::PgConnection;
use uuid::Uuid;

use super::request::{Ask, Extras, Queued};
use super::BotError;
use crate::domain::request::Refusal;
use crate::domain::{styles, Settings};
use crate::jobs::new::{self as generations, Links};
use crate::ledger::{self, LedgerError, Outcome};

/// What a request is besides its words and settings.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub variants: u8,
    pub style: Option<String>,
    pub parent: Option<Uuid>,
}

/// The settings a request is made with, and its shape. A style applies to a new prompt (the
/// one asked for, or the user's default while `own`), never to an edit; its suggested aspect
/// ratio (and model, if it names one) replaces the user's for this request only.
pub fn shape(mut settings: Settings, own: bool, extras: &Extras<'_>) -> (Settings, Shape) {
    let default_style = if own && extras.parent.is_none() { settings.style.as_deref() } else { None };
    let style = extras.style.or(default_style).and_then(styles::style);
    if let Some(style) = style {
        settings.aspect_ratio = style.aspect_ratio.clone();
        if let Some(model) = style.model.as_deref().and_then(|m| crate::domain::Model::parse(m).ok()) {
            settings.model = Some(model);
        }
    }
    let variants = extras.variants.unwrap_or(if own { settings.variants } else { 1 });
    let variants = if crate::domain::VARIANTS.contains(&variants) { variants } else { 1 };
    let shape = Shape { variants, style: style.map(|s| s.key.clone()), parent: extras.parent };
    (settings, shape)
}

/// Reserves each variant's cost and inserts it, linked to the others and to the status
/// message (queued once, for the first). A short balance the ledger finds is a refusal (the
/// transaction is then rolled back by the caller's error path only if something was written:
/// the checks before make that impossible, as they hold the balance lock); a second
/// generation from the same source fails the transaction rather than half-write. The first
/// variant's id.
pub(super) async fn queue(
    conn: &mut PgConnection,
    ask: &Ask<'_>,
    queued: &Queued<'_>,
    shape: &Shape,
) -> Result<Result<Uuid, Refusal>, BotError> {
    let n = shape.variants.max(1);
    let request = (n > 1).then(Uuid::now_v7);
    let links = Links { parent: shape.parent, request, variants: n, style: shape.style.as_deref() };
    let mut first: Option<(Uuid, i64)> = None;
    for index in 0..n {
        let id = Uuid::now_v7();
        let source_key =
            if n == 1 { ask.source_key.clone() } else { format!("{}#{}", ask.source_key, index + 1) };
        match reserve(conn, ask.user, id, queued).await? {
            Ok(()) => {}
            Err(refusal) if first.is_none() => return Ok(Err(refusal)),
            Err(_) => {
                // Checked under the balance lock before: it cannot run short half-way.
                return Err(BotError::Inconsistent(format!("request of {n} ran short after its check")));
            }
        }
        // The status message: rendered from the request's state when it is sent.
        let status = match first {
            Some((_, row)) => row,
            None => crate::outbox::status::open(conn, ask.chat, id).await?,
        };
        first.get_or_insert((id, status));
        let generation = generations::NewGeneration {
            id,
            user_id: ask.user,
            prompt: ask.prompt.trim(),
            model: queued.choice.model.key.clone(),
            model_id: Some(&queued.choice.model.id),
            image_size: Some(queued.choice.size),
            aspect_ratio: queued.choice.ratio,
            cost: queued.cost,
            source_key: &source_key,
        };
        let deadline = Some(queued.deadline);
        if !generations::insert_linked(conn, &generation, deadline, ask.references, Some(status), &links)
            .await?
        {
            // The source already made a generation: the update's own row prevents this; if it
            // ever happens, refuse to half-write by failing the transaction.
            tracing::error!(user = ask.user, source_key, "generation request could not be recorded");
            return Err(BotError::Inconsistent(format!("source {source_key} already has a generation")));
        }
    }
    let (id, _) = first.ok_or_else(|| BotError::Inconsistent("a request of no variants".into()))?;
    if n > 1 {
        tracing::info!(user = ask.user, %id, variants = n, "request of several variants queued");
    }
    Ok(Ok(id))
}

async fn reserve(
    conn: &mut PgConnection,
    user: i64,
    id: Uuid,
    queued: &Queued<'_>,
) -> Result<Result<(), Refusal>, BotError> {
    let cost = queued.cost;
    match ledger::reserve(conn, user, id, cost).await {
        Ok(Outcome::Applied(_)) => Ok(Ok(())),
        Err(LedgerError::Insufficient { available, .. }) => {
            Ok(Err(Refusal::ShortBalance { cost, available }))
        }
        Err(e) => Err(e.into()),
        Ok(Outcome::AlreadyDone) => {
            tracing::error!(user, %id, "generation already reserved");
            Err(BotError::Inconsistent(format!("generation {id} already reserved")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_style_sets_its_ratio_and_the_variants_come_from_the_settings_or_the_ask() {
        let mut settings = Settings { variants: 2, ..Settings::default() };
        let (plain, shaped) = shape(settings.clone(), true, &Extras::default());
        assert_eq!((shaped.variants, shaped.style, plain.aspect_ratio.as_str()), (2, None, "1:1"));
        let anime = Extras { style: Some("anime"), variants: Some(4), ..Extras::default() };
        let (styled, shaped) = shape(settings.clone(), true, &anime);
        assert_eq!(
            (shaped.variants, shaped.style.as_deref(), styled.aspect_ratio.as_str()),
            (4, Some("anime"), "16:9")
        );
        settings.style = Some("pixel".into());
        let (_, shaped) = shape(settings.clone(), true, &Extras::default());
        assert_eq!(shaped.style.as_deref(), Some("pixel"), "the default style");
        let edit = Extras { parent: Some(Uuid::nil()), ..Extras::default() };
        let (_, shaped) = shape(settings.clone(), true, &edit);
        assert_eq!(shaped.style, None, "an edit is not styled");
        let (_, shaped) = shape(settings, false, &Extras::default());
        assert_eq!((shaped.variants, shaped.style), (1, None), "fixed settings: one, as asked");
    }
}
