//! One claimed generation, from its row to its end: load it, call Gemini while a heartbeat
//! keeps the lease, and act on the outcome's class. Every write is fenced by the claim's
//! epoch; when the lease turns out to be gone the result is discarded and nothing changes.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::watch;
use tracing::Instrument;

use super::conversation;
use super::deliver::{self, describe, Charge, Ended, Failure};
use super::kept::{self, Kept, NotKept};
use super::pausing::{pause_generation, resume_if_paused};
use super::references::load_references;
use super::repo::{self, Job};
use super::Worker;
use crate::budget::Reservation;
use crate::domain::{CatalogModel, ImageSize};
use crate::gemini::{self, Class, Gate, Image, LimitError, Outcome, Reference, Reply, Request};
use crate::jobs::availability::UNAVAILABLE_ERROR;
use crate::jobs::Produced;
use crate::jobs::{self, Claimed};

/// How a job left this worker (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Succeeded,
    Failed,
    Requeued,
    Paused,
    HandedBack,
    /// The lease was lost: the result was thrown away.
    Discarded,
}

/// Runs one job to where this worker lets go of it. Errors are logged; the lease then expires
/// and another worker (or the deadline sweep) takes the job over.
pub async fn run(worker: Arc<Worker>, claimed: Claimed, shutdown: watch::Receiver<bool>) -> Option<Finished> {
    let span = tracing::info_span!("job", generation_id = %claimed.id, epoch = claimed.epoch, attempt = claimed.attempts);
    let finished = match process(&worker, &claimed, shutdown).instrument(span).await {
        Ok(finished) => {
            tracing::debug!(generation_id = %claimed.id, ?finished, "job done");
            Some(finished)
        }
        Err(error) => {
            tracing::error!(generation_id = %claimed.id, error = %format!("{error:#}"), "job failed; its lease will expire");
            None
        }
    };
    worker.stats.add(finished);
    finished
}

async fn process(
    worker: &Worker,
    claimed: &Claimed,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Finished> {
    // Every step but the Gemini call is boxed: a job's task is as large as its largest state,
    // and with thousands of calls in flight only the waiting state should be paid for each.
    let loaded = Box::pin(async { repo::load(&mut *worker.pool.acquire().await?, claimed.id).await });
    let Some(job) = loaded.await? else {
        anyhow::bail!("claimed generation {} has no row", claimed.id);
    };
    let Some(model) = worker.catalog.find(&job.model) else {
        let error = format!("{UNAVAILABLE_ERROR}: model {:?} is not in the catalog", job.model);
        return Box::pin(fail(worker, claimed, &job, Failure::ModelUnavailable, &error)).await;
    };
    let bought = model.fit_size(job.size.unwrap_or(ImageSize::K1));
    let size = model.takes_size.then_some(bought);
    // Held until the job ends: the photos and the answer stay in memory until it is settled.
    let mut memory = worker.memory.empty();
    let references = match Box::pin(references(worker, claimed, &job, &mut memory, size)).await? {
        Ok(references) => references,
        Err(ended) => return Ok(ended),
    };
    let mut kept = references.iter().map(|r| r.bytes.len() as u64).sum();
    let mut request = Request {
        model_id: model.id.clone(),
        // The style's template applied to the user's words (they stay the generation's prompt).
        prompt: crate::domain::styles::model_prompt(&job.prompt, job.style.as_deref()),
        references,
        aspect_ratio: job.aspect_ratio.clone(),
        // Always sent where the model takes it: without it Gemini renders 1K.
        size,
        history: Vec::new(),
    };
    if let Some(parent) = job.parent {
        match Box::pin(conversation::prepare(worker, claimed, &job, parent, &mut request, &mut memory))
            .await?
        {
            Ok(extra) => kept += extra,
            Err(ended) => return Ok(ended),
        }
    }
    let ask = Ask { job: &job, model, bought, request: &request };
    // One more call at most, for an answer that is not a picture or a picture smaller than
    // bought: each call costs the operator money.
    let mut second_chance = true;
    loop {
        let gate = Gate { finishing: worker.finishing.clone(), memory: &mut memory, base: kept };
        match attempt(worker, claimed, &ask, &request, gate, &mut shutdown, second_chance).await? {
            Next::Done(finished) => return Ok(finished),
            Next::Again(reason) => {
                tracing::info!(generation_id = %claimed.id, reason, "asking Gemini once more");
                second_chance = false;
            }
        }
    }
}

/// The job's reference photos, loaded into `memory` while the lease is kept (waiting for budget
/// can take a while); `Err`: how the job ended instead (the lease lost, or a retry queued).
async fn references(
    worker: &Worker,
    claimed: &Claimed,
    job: &Job,
    memory: &mut Reservation,
    size: Option<ImageSize>,
) -> anyhow::Result<Result<Vec<Reference>, Finished>> {
    let loading = load_references(worker, claimed.id, job, memory, gemini::answer::expected(size));
    let loaded = tokio::select! {
        loaded = Box::pin(loading) => loaded,
        () = keep_lease(worker, claimed) => {
            tracing::warn!(generation_id = %claimed.id, "lease lost while loading references");
            return Ok(Err(Finished::Discarded));
        }
    };
    match loaded {
        Ok(references) => Ok(Ok(references)),
        Err(error) => {
            Box::pin(retry(worker, claimed, job, None, &format!("references: {error:#}"))).await.map(Err)
        }
    }
}

/// One Gemini call while the heartbeat keeps the lease (handed back on shutdown), and what to
/// do with its answer.
async fn attempt(
    worker: &Worker,
    claimed: &Claimed,
    ask: &Ask<'_>,
    request: &Request,
    gate: Gate<'_>,
    shutdown: &mut watch::Receiver<bool>,
    second_chance: bool,
) -> anyhow::Result<Next> {
    // The answer is read, stored and settled within the byte budget and under a `finishing`
    // permit: however many calls are in flight, only a few answers are in memory and being
    // processed at once.
    let call = worker.gateway.generate_gated(request, Some(gate));
    let reply = tokio::select! {
        reply = call => reply,
        () = keep_lease(worker, claimed) => {
            tracing::warn!(generation_id = %claimed.id, "lease lost while Gemini worked; result discarded");
            return Ok(Next::Done(Finished::Discarded));
        }
        () = stopped(shutdown) => {
            Box::pin(async {
                let mut conn = worker.pool.acquire().await?;
                jobs::hand_back(&mut conn, claimed.id, claimed.epoch).await
            })
            .await?;
            return Ok(Next::Done(Finished::HandedBack));
        }
    };
    Ok(match reply {
        Ok((reply, _finishing)) => Box::pin(settle(worker, claimed, ask, reply, second_chance)).await?,
        Err(LimitError::Busy { retry_after }) => {
            let delay = retry_after.unwrap_or(std::time::Duration::from_secs(1));
            Next::Done(Box::pin(requeue_uncounted(worker, claimed, delay, "no Gemini slot free")).await?)
        }
        Err(error @ LimitError::Redis(_)) => {
            let delay = std::time::Duration::from_secs(2);
            Next::Done(Box::pin(requeue_uncounted(worker, claimed, delay, &error.to_string())).await?)
        }
    })
}

/// What a claimed job asks for, resolved against the catalog.
struct Ask<'a> {
    job: &'a Job,
    model: &'a CatalogModel,
    /// The size bought (and asked for, where the model takes `imageSize`).
    bought: ImageSize,
    /// What Gemini is asked (its conversation is kept with the result).
    request: &'a Request,
}

/// After one call: the job left this worker, or it is worth one more call (why).
enum Next {
    Done(Finished),
    Again(String),
}

/// Resolves once shutdown was asked for (never if the sender is gone without asking).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Extends the lease every `heartbeat_every`; returns only when the lease is gone (never when
/// heartbeats are off). A failing database is logged and retried: the claim is fenced anyway.
async fn keep_lease(worker: &Worker, claimed: &Claimed) {
    let Some(every) = worker.settings.heartbeat_every else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(every).await;
        let beat = Box::pin(async {
            let mut conn = worker.pool.acquire().await?;
            jobs::heartbeat(&mut conn, claimed.id, claimed.epoch, worker.settings.lease).await
        });
        match beat.await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => tracing::warn!(generation_id = %claimed.id, %error, "heartbeat failed"),
        }
    }
}

async fn settle(
    worker: &Worker,
    claimed: &Claimed,
    ask: &Ask<'_>,
    reply: Reply,
    second_chance: bool,
) -> anyhow::Result<Next> {
    let job = ask.job;
    let kind = reply.outcome.kind();
    let finished = match (reply.outcome.class(), &reply.outcome) {
        (Class::Success, Outcome::Image(image)) => {
            let delivered = if worker.settings.measure_sizes {
                ImageSize::measured(image.width, image.height)
            } else {
                Some(ask.bought)
            };
            if delivered.is_none_or(|size| size < ask.bought) && second_chance {
                let (w, h) = (image.width, image.height);
                return Ok(Next::Again(format!("small_image: asked {} and got {w}x{h}", ask.bought)));
            }
            return succeed(worker, claimed, ask, image, delivered, &reply, second_chance).await;
        }
        (_, Outcome::BadImage { reason }) if second_chance => {
            return Ok(Next::Again(format!("bad_image: {reason}")))
        }
        (_, outcome @ Outcome::BadImage { .. }) => {
            let error = format!("not a picture twice: {}", describe(outcome));
            fail(worker, claimed, job, Failure::NotAPicture, &error).await?
        }
        (Class::ModelGone, outcome) => model_gone(worker, claimed, ask, &describe(outcome)).await?,
        (Class::Pause, outcome) => pause_generation(worker, claimed, &describe(outcome)).await?,
        (Class::Retry, outcome) => {
            retry(worker, claimed, job, outcome.retry_after(), &describe(outcome)).await?
        }
        (_, outcome) => {
            let failure = match outcome {
                Outcome::Blocked { .. } => Failure::Blocked,
                Outcome::TextRefusal { .. } => Failure::Refused,
                Outcome::NoImage { .. } => Failure::NoImage,
                _ => Failure::Invalid,
            };
            let error = format!("{kind}: {}", describe(outcome));
            fail(worker, claimed, job, failure, &error).await?
        }
    };
    Ok(Next::Done(finished))
}

/// Stores the original and the preview, then commits (at the price of the size delivered when
/// it is smaller than bought) and queues the delivery.
async fn succeed(
    worker: &Worker,
    claimed: &Claimed,
    ask: &Ask<'_>,
    image: &Image,
    delivered: Option<ImageSize>,
    reply: &Reply,
    second_chance: bool,
) -> anyhow::Result<Next> {
    let job = ask.job;
    let done = |finished| Ok(Next::Done(finished));
    let Kept { result_key, preview_key, turn_key } =
        match kept::keep(worker, claimed.id, ask.request, image).await {
            Ok(kept) => kept,
            Err(NotKept::Storage(why)) => return done(retry(worker, claimed, job, None, &why).await?),
            // A truncated or undecodable picture: never a success; asked for once more at most.
            Err(NotKept::NotAPicture(error)) if second_chance => {
                return Ok(Next::Again(format!("bad_image: preview: {error}")))
            }
            Err(NotKept::NotAPicture(error)) => {
                let error = format!("not a picture twice: preview: {error}");
                return done(fail(worker, claimed, job, Failure::NotAPicture, &error).await?);
            }
        };
    if worker.paused_seen.load(std::sync::atomic::Ordering::Relaxed) {
        resume_if_paused(worker).await?;
    }
    let rendered = delivered.map_or(ask.model.offers[0].size, |size| ask.model.fit_size(size));
    let cost = gemini::provider_cost(ask.model, rendered, &reply.outcome);
    let produced = Produced {
        result_key: &result_key,
        preview_key: &preview_key,
        turn_key: turn_key.as_deref(),
        usage: reply.usage.map(|u| serde_json::to_value(u).unwrap_or_default()),
        provider_cost_micro_usd: cost.map(|c| c.get()),
        latency: reply.latency,
    };
    let charge = Charge { model: ask.model, bought: ask.bought, delivered };
    match deliver::succeed(&worker.pool, claimed.id, claimed.epoch, claimed.user_id, job, &charge, &produced)
        .await?
    {
        Ended::Now => done(Finished::Succeeded),
        Ended::Stale => {
            tracing::warn!(generation_id = %claimed.id, "lease lost before commit; result discarded");
            done(Finished::Discarded)
        }
    }
}

/// Gemini answered 404 `NOT_FOUND` for the model: the same path as the probe finding it gone
/// (hidden, its queue released, the admins told once), and this job fails with that reason.
async fn model_gone(
    worker: &Worker,
    claimed: &Claimed,
    ask: &Ask<'_>,
    reason: &str,
) -> anyhow::Result<Finished> {
    let error = format!("{UNAVAILABLE_ERROR}: {reason}");
    let finished = fail(worker, claimed, ask.job, Failure::ModelUnavailable, &error).await?;
    super::probe::missing(worker, ask.model, reason).await?;
    Ok(finished)
}

/// Requeues with backoff, or ends the job failed when its attempts or its deadline are spent.
pub(super) async fn retry(
    worker: &Worker,
    claimed: &Claimed,
    job: &Job,
    after: Option<std::time::Duration>,
    reason: &str,
) -> anyhow::Result<Finished> {
    let mut at = claimed.retry_at();
    if let Some(cap) = worker.settings.retry_delay_cap {
        at = at.min(Utc::now() + chrono::Duration::from_std(cap)?);
    }
    if let Some(after) = after {
        at = at.max(Utc::now() + chrono::Duration::from_std(after)?);
    }
    if claimed.attempts >= worker.settings.max_attempts || at >= claimed.deadline {
        let error = format!("gave up after {} attempts: {reason}", claimed.attempts);
        return fail(worker, claimed, job, Failure::RetriesExhausted, &error).await;
    }
    let mut conn = worker.pool.acquire().await?;
    if jobs::retry_later(&mut conn, claimed.id, claimed.epoch, at, reason).await? {
        tracing::info!(generation_id = %claimed.id, attempt = claimed.attempts, reason, "retry later");
        Ok(Finished::Requeued)
    } else {
        Ok(Finished::Discarded)
    }
}

pub(super) async fn fail(
    worker: &Worker,
    claimed: &Claimed,
    job: &Job,
    failure: Failure,
    error: &str,
) -> anyhow::Result<Finished> {
    match deliver::fail(&worker.pool, claimed.id, claimed.epoch, claimed.user_id, job.lang, failure, error)
        .await?
    {
        Ended::Now => Ok(Finished::Failed),
        Ended::Stale => Ok(Finished::Discarded),
    }
}

async fn requeue_uncounted(
    worker: &Worker,
    claimed: &Claimed,
    delay: std::time::Duration,
    reason: &str,
) -> anyhow::Result<Finished> {
    let at = Utc::now() + chrono::Duration::from_std(delay)?;
    let mut conn = worker.pool.acquire().await?;
    Ok(if jobs::requeue_uncounted(&mut conn, claimed.id, claimed.epoch, at, reason).await? {
        Finished::Requeued
    } else {
        Finished::Discarded
    })
}
