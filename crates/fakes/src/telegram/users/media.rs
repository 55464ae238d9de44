//! A user sending images: photos (alone or as album items) and files as documents.

use std::sync::MutexGuard;

use serde_json::{json, Value};

use super::{message_locked, ActionError, ImageSpec, Sent, UserProfile};
use crate::common::image_info::sniff;
use crate::telegram::methods::{photo_sizes, store_file};
use crate::telegram::state::{FileKind, Inner, TgState};

/// Sends a photo (or, with `media_group_id`, one item of an album).
pub fn photo(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    spec: &ImageSpec,
    media_group_id: Option<&str>,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let salt = inner.serial();
    let bytes = spec.bytes(salt);
    let info = sniff(&bytes)
        .ok_or_else(|| ActionError::Invalid("the photo is not a PNG, JPEG, GIF or WebP image".into()))?;
    let max = state.config.max_file_bytes;
    let file = store_file(
        &mut inner,
        max,
        FileKind::Photo,
        bytes,
        Some(info.mime.into()),
        None,
        (info.width, info.height),
    )
    .map_err(|e| ActionError::Invalid(e.description))?;
    let sizes = photo_sizes(&mut inner, max, &file).map_err(|e| ActionError::Invalid(e.description))?;
    let mut sent = send_file(state, inner, user_id, profile, spec, media_group_id, |m| m["photo"] = sizes)?;
    sent.file_id = Some(file.file_id);
    Ok(sent)
}

/// Sends an album: one message per item sharing a `media_group_id`.
pub fn album(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    items: &[ImageSpec],
    as_documents: bool,
) -> Result<Vec<Sent>, ActionError> {
    if !(2..=10).contains(&items.len()) {
        return Err(ActionError::Invalid("an album has 2 to 10 items".into()));
    }
    let group = format!("{}", 14_000_000_000_000_000u64 + state.lock().serial());
    items
        .iter()
        .map(|item| match as_documents {
            true => document(state, user_id, profile, item, Some(&group)),
            false => photo(state, user_id, profile, item, Some(&group)),
        })
        .collect()
}

/// Sends a file as a document (an image sent "as file" arrives this way).
pub fn document(
    state: &TgState,
    user_id: i64,
    profile: &UserProfile,
    spec: &ImageSpec,
    media_group_id: Option<&str>,
) -> Result<Sent, ActionError> {
    let mut inner = state.lock();
    let salt = inner.serial();
    let bytes = spec.bytes(salt);
    let sniffed = sniff(&bytes);
    let mime = spec
        .mime_type
        .clone()
        .or(sniffed.map(|i| i.mime.to_string()))
        .unwrap_or_else(|| "application/octet-stream".into());
    let name = spec
        .file_name
        .clone()
        .unwrap_or_else(|| format!("file_{salt}.{}", mime.rsplit('/').next().unwrap_or("bin")));
    let dims = sniffed.map_or((0, 0), |i| (i.width, i.height));
    let file = store_file(
        &mut inner,
        state.config.max_file_bytes,
        FileKind::Document,
        bytes,
        Some(mime.clone()),
        Some(name.clone()),
        dims,
    )
    .map_err(|e| ActionError::Invalid(e.description))?;
    let document = json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_name": name,
        "mime_type": mime, "file_size": file.bytes.len()});
    let mut sent =
        send_file(state, inner, user_id, profile, spec, media_group_id, |m| m["document"] = document)?;
    sent.file_id = Some(file.file_id);
    Ok(sent)
}

/// Sends the message that carries a stored file (`media` fills it in), with the spec's caption
/// and the album's `media_group_id`; the lock is released before the update is announced.
fn send_file(
    state: &TgState,
    mut inner: MutexGuard<'_, Inner>,
    user_id: i64,
    profile: &UserProfile,
    spec: &ImageSpec,
    media_group_id: Option<&str>,
    media: impl FnOnce(&mut Value),
) -> Result<Sent, ActionError> {
    let sent = message_locked(state, &mut inner, user_id, profile, |m| {
        media(m);
        if let Some(caption) = &spec.caption {
            m["caption"] = json!(caption);
        }
        if let Some(group) = media_group_id {
            m["media_group_id"] = json!(group);
        }
    })?;
    drop(inner);
    state.updates_changed();
    Ok(sent)
}
