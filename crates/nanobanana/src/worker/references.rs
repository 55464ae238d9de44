//! A job's reference photos: downloaded from Telegram within the worker's byte budget, scaled
//! down where larger than the model needs, and stored before the call.

use anyhow::Context;

use super::repo::Job;
use super::Worker;
use crate::budget::Reservation;
use crate::gemini::{self, ImageFormat, Reference};
use crate::storage as store;
use crate::telegram::client::MAX_DOWNLOAD;

/// Downloads the reference photos from Telegram, scales down those larger than the model needs,
/// and stores them before the call (so what Gemini saw is kept); a failure is retried like a
/// failed call. The worst case, plus the answer's share (`answer`), is reserved from the
/// worker's byte budget in one step before the first download (`held`, empty until now and held
/// by the caller until the job ends), then shrunk to what the photos take, their base64 copies
/// in the request, and the answer's share: so the job never waits for budget while holding
/// some (the answer's gate finds its share already there).
pub(super) async fn load_references(
    worker: &Worker,
    id: uuid::Uuid,
    job: &Job,
    held: &mut Reservation,
    answer: u64,
) -> anyhow::Result<Vec<Reference>> {
    if job.reference_file_ids.is_empty() {
        return Ok(Vec::new());
    }
    let telegram = worker.telegram.as_ref().context("references need TELEGRAM_BOT_TOKEN on the worker")?;
    let count = job.reference_file_ids.len() as u64;
    // The worst case over the whole job: every photo kept as large as a download, then sent.
    // While a photo is shrunk, its download, bitmaps and shrunk copy (about 3 × MAX_DOWNLOAD)
    // fit in the room the photos still to come leave (the base64 copies, 8/3 × MAX_DOWNLOAD
    // each, come later). Capped at the whole budget: then the job runs alone.
    held.grow_to(sending(count * MAX_DOWNLOAD) + answer).await;
    let mut kept = 0u64;
    let mut references = Vec::with_capacity(job.reference_file_ids.len());
    for (index, file_id) in job.reference_file_ids.iter().enumerate() {
        let (downloaded, path) = telegram.download(file_id).await?;
        let downloaded = bytes::Bytes::from(downloaded);
        let bytes = match store::preview::shrink_reference_async(downloaded.clone()).await {
            Ok(Some(shrunk)) => shrunk.bytes.to_vec(),
            Ok(None) => downloaded.to_vec(),
            // Not one we can decode (WebP, say): sent as it came, within Telegram's 20 MB.
            Err(error) => {
                tracing::debug!(index, %error, "reference kept as downloaded");
                downloaded.to_vec()
            }
        };
        drop(downloaded);
        kept += bytes.len() as u64;
        let (mime_type, ext) = match gemini::sniff(&bytes) {
            Some(info) if info.format == ImageFormat::Png => ("image/png", "png"),
            Some(_) => ("image/jpeg", "jpg"),
            None if path.ends_with(".webp") => ("image/webp", "webp"),
            None => anyhow::bail!("reference {index} is not a PNG, JPEG or WebP image"),
        };
        worker.storage.put(&store::reference_key(id, index, ext), bytes::Bytes::from(bytes.clone())).await?;
        references.push(Reference { mime_type: mime_type.to_owned(), bytes });
        // What the job may still need, never less: the photos kept, those to come at their
        // largest, and their sending. It only goes down (a photo kept is at most a download),
        // so the job never has to wait for budget it gave away.
        let to_come = count - index as u64 - 1;
        held.shrink_to(sending(kept + to_come * MAX_DOWNLOAD) + answer);
    }
    held.shrink_to(sending(kept) + answer);
    Ok(references)
}

/// What references of `kept` bytes take while the request is built and sent: the photos, and
/// their base64 text twice (in the JSON tree and in the serialized body, 4/3 each). The
/// answer's gate returns the copies' share once the answer arrives.
fn sending(kept: u64) -> u64 {
    kept + kept * 8 / 3
}
