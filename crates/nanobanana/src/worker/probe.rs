//! The model probe (DESIGN §10): at start and every `model_probe_every`, `GET /v1beta/models`
//! (every page) confirms each id of the catalog. A model Gemini stopped listing — or one that
//! answered 404 `NOT_FOUND` to a call (`job`) — is marked missing: hidden from `/settings`,
//! refused for new requests (both read `jobs::availability`), its queued generations failed
//! with that reason and released, and the admins told once; listed again, it is offered again
//! and the admins are told once more. Several workers probing agree through the table: only
//! the one whose insert or delete changed it tells.

use std::sync::Arc;

use sqlx::Acquire;
use tokio::sync::watch;

use super::deliver::{self, Failure};
use super::Worker;
use crate::domain::CatalogModel;
use crate::jobs::availability;

/// Queued generations released per model per probe (the next probe takes the rest).
const RELEASE_BATCH: u32 = 500;

/// Probes now and then every `model_probe_every` until shutdown.
pub async fn run(worker: Arc<Worker>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(worker.settings.model_probe_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*shutdown.borrow() {
        tokio::select! {
            _ = every.tick() => {
                let started = std::time::Instant::now();
                let result = probe(&worker).await;
                if let Err(error) = &result {
                    tracing::warn!(error = %format!("{error:#}"), "model probe failed; will try again");
                }
                let result = result.map(|missing| i64::try_from(missing).unwrap_or(i64::MAX));
                crate::db::runs::note(&worker.pool, crate::db::runs::MODEL_PROBE, started, &result).await;
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// One probe: which catalog ids `GET /v1beta/models` lists, and what follows from it. How
/// many of the catalog's models are missing.
pub async fn probe(worker: &Worker) -> anyhow::Result<usize> {
    let ids: Vec<&str> = worker.catalog.models().iter().map(|m| m.id.as_str()).collect();
    let unlisted = worker.gateway.client().check_models(&ids).await?;
    let mut gone = 0;
    for model in worker.catalog.models() {
        if unlisted.contains(&model.id) {
            missing(worker, model, "not listed by GET /v1beta/models").await?;
            gone += 1;
        } else {
            present(worker, model).await?;
        }
    }
    Ok(gone)
}

fn describe(model: &CatalogModel, reason: &str) -> String {
    let reason = if reason.is_empty() { String::new() } else { format!(" — {reason}") };
    format!("{} ({}){reason}", model.names.en, model.id)
}

/// `model` is gone: marked missing (the admins told if this changed it), then its queued
/// generations are released and their users told.
pub async fn missing(worker: &Worker, model: &CatalogModel, reason: &str) -> anyhow::Result<()> {
    let mut conn = worker.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let reason: String = reason.chars().take(300).collect();
    if availability::mark_missing(&mut tx, &model.id, &reason).await? {
        tracing::error!(model = %model.key, id = %model.id, reason, "model unavailable: hidden, its queue released");
        deliver::alert_admins(&mut tx, &worker.admins, "admin_model_missing", &describe(model, &reason))
            .await?;
    }
    tx.commit().await?;
    drop(conn);
    let mut keys = vec![model.key.to_string()];
    keys.extend(model.aliases.iter().map(ToString::to_string));
    for ended in availability::release_queued(&worker.pool, &keys, RELEASE_BATCH).await? {
        deliver::tell_ended(
            &worker.pool,
            ended.id,
            ended.entry.user_id,
            ended.entry.amount,
            Failure::ModelUnavailable,
        )
        .await?;
    }
    Ok(())
}

/// `model` is listed: offered again if it was missing (the admins told once).
async fn present(worker: &Worker, model: &CatalogModel) -> anyhow::Result<()> {
    let mut conn = worker.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    if availability::mark_present(&mut tx, &model.id).await? {
        tracing::info!(model = %model.key, id = %model.id, "model available again");
        deliver::alert_admins(&mut tx, &worker.admins, "admin_model_back", &describe(model, "")).await?;
    }
    tx.commit().await?;
    Ok(())
}
