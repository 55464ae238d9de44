//! A picture's files, kept before its settlement: the original, its preview, and the
//! conversation an edit of it continues.

use uuid::Uuid;

use super::conversation;
use super::Worker;
use crate::gemini::{Image, ImageFormat, Request};
use crate::storage as store;

/// The keys of what was kept.
pub(super) struct Kept {
    pub result_key: String,
    pub preview_key: String,
    /// `None`: no conversation to continue (the model returned no turn to keep).
    pub turn_key: Option<String>,
}

/// Why a picture was not kept.
pub(super) enum NotKept {
    /// The storage refused a write: the job is tried again.
    Storage(String),
    /// The picture does not decode: not a success.
    NotAPicture(String),
}

/// Stores generation `id`'s picture, then its preview, then the conversation (`request` and the
/// picture's turn), each only after the one before it.
pub(super) async fn keep(
    worker: &Worker,
    id: Uuid,
    request: &Request,
    image: &Image,
) -> Result<Kept, NotKept> {
    let ext = if image.format == ImageFormat::Png { "png" } else { "jpg" };
    let result_key = store::original_key(id, ext);
    let preview_key = store::preview_key(id);
    let original = bytes::Bytes::from(image.bytes.clone());
    if let Err(error) = worker.storage.put(&result_key, original.clone()).await {
        return Err(NotKept::Storage(format!("storing the original: {error:#}")));
    }
    let preview = store::preview::make_async(original)
        .await
        .map_err(|error| NotKept::NotAPicture(error.to_string()))?;
    if let Err(error) = worker.storage.put(&preview_key, preview.bytes).await {
        return Err(NotKept::Storage(format!("storing the preview: {error:#}")));
    }
    let turn_key = conversation::keep(worker, id, request, image.turn.as_ref())
        .await
        .map_err(|error| NotKept::Storage(format!("storing the conversation: {error:#}")))?;
    Ok(Kept { result_key, preview_key, turn_key })
}
