//! Where a file in a send call comes from: a multipart upload, `attach://name`, an HTTP URL
//! Telegram downloads itself, or a `file_id` it already has. Owns Telegram's checks on each:
//! photo ≤ 10 MB, width+height ≤ 10000, ratio ≤ 20; documents ≤ 50 MB; by URL 5 MB photos and
//! 20 MB other files.

use axum::body::Bytes;

use crate::common::image_info::{sniff, ImageInfo};
use crate::telegram::error::TgError;
use crate::telegram::params::{Params, Upload};
use crate::telegram::state::{FileKind, StoredFile, TgState};

pub const MAX_PHOTO: usize = 10 * 1024 * 1024;
pub const MAX_DOCUMENT: usize = 50 * 1024 * 1024;
const MAX_URL_PHOTO: usize = 5 * 1024 * 1024;
const MAX_URL_OTHER: usize = 20 * 1024 * 1024;

/// A file named in a request, before it is stored.
#[derive(Debug)]
pub enum Input {
    New { bytes: Bytes, file_name: Option<String>, mime_type: Option<String>, info: Option<ImageInfo> },
    Existing(StoredFile),
}

/// Resolves a file given as `value` (the field's string, if any) or as an upload under `field`.
pub async fn resolve(
    state: &TgState,
    p: &Params,
    field: &str,
    value: Option<String>,
    kind: FileKind,
) -> Result<Input, TgError> {
    if let Some(upload) = p.upload(field) {
        return uploaded(upload, kind);
    }
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        let name = if kind == FileKind::Photo { "photo" } else { "document" };
        return Err(TgError::bad_request(&format!("there is no {name} in the request")));
    };
    if let Some(name) = value.strip_prefix("attach://") {
        let upload =
            p.upload(name).ok_or_else(|| TgError::bad_request("wrong file identifier/HTTP URL specified"))?;
        return uploaded(upload, kind);
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        let limit = if kind == FileKind::Photo { MAX_URL_PHOTO } else { MAX_URL_OTHER };
        let bytes = fetch(state, &value, limit).await?;
        let file_name = value.rsplit('/').next().map(str::to_string).filter(|n| !n.is_empty());
        return new_input(bytes, file_name, None, kind, true);
    }
    let inner = state.lock();
    let file = inner.files.get(&value).cloned();
    drop(inner);
    let file = file.ok_or_else(|| TgError::bad_request("wrong file identifier/HTTP URL specified"))?;
    if kind == FileKind::Photo && file.kind != FileKind::Photo {
        return Err(TgError::bad_request("can't use file of type Document as Photo"));
    }
    Ok(Input::Existing(file))
}

/// A file sent in the request's multipart body.
fn uploaded(upload: &Upload, kind: FileKind) -> Result<Input, TgError> {
    new_input(upload.bytes.clone(), upload.file_name.clone(), upload.content_type.clone(), kind, false)
}

fn new_input(
    bytes: Bytes,
    file_name: Option<String>,
    mime: Option<String>,
    kind: FileKind,
    by_url: bool,
) -> Result<Input, TgError> {
    let info = sniff(&bytes);
    match kind {
        FileKind::Photo => check_photo(bytes.len(), info, by_url)?,
        FileKind::Document if bytes.len() > MAX_DOCUMENT => return Err(TgError::too_large()),
        FileKind::Document if bytes.is_empty() => return Err(TgError::bad_request("file must be non-empty")),
        FileKind::Document => {}
    }
    let mime_type = info.map(|i| i.mime.to_string()).or(mime.filter(|m| m != "application/octet-stream"));
    Ok(Input::New { bytes, file_name, mime_type, info })
}

fn check_photo(size: usize, info: Option<ImageInfo>, by_url: bool) -> Result<(), TgError> {
    if size > MAX_PHOTO {
        return Err(TgError::bad_request("PHOTO_SAVE_FILE_INVALID"));
    }
    let Some(info) = info else {
        let what = if by_url { "wrong file identifier/HTTP URL specified" } else { "IMAGE_PROCESS_FAILED" };
        return Err(TgError::bad_request(what));
    };
    let (w, h) = (u64::from(info.width), u64::from(info.height));
    if w == 0 || h == 0 || w + h > 10_000 || w > 20 * h || h > 20 * w {
        return Err(TgError::bad_request("PHOTO_INVALID_DIMENSIONS"));
    }
    Ok(())
}

/// Downloads a URL the way Telegram does for "send by URL", refusing more than `limit` bytes.
async fn fetch(state: &TgState, url: &str, limit: usize) -> Result<Bytes, TgError> {
    let failed = || TgError::bad_request("failed to get HTTP URL content");
    let mut response = state.http.get(url).send().await.map_err(|_| failed())?;
    if !response.status().is_success() {
        return Err(failed());
    }
    if response.content_length().is_some_and(|len| len as usize > limit) {
        return Err(failed());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| failed())? {
        if body.len() + chunk.len() > limit {
            return Err(failed());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::image::{render_png, seed_of};

    fn code_and_text(result: Result<Input, TgError>) -> (u16, String) {
        match result {
            Ok(_) => (200, String::new()),
            Err(e) => (e.code, e.description),
        }
    }

    #[test]
    fn size_limits_of_photos_and_documents() {
        let big = Bytes::from(vec![0u8; MAX_DOCUMENT + 1]);
        assert_eq!(code_and_text(new_input(big, None, None, FileKind::Document, false)).0, 413);
        let photo = Bytes::from(vec![0u8; MAX_PHOTO + 1]);
        let answer = code_and_text(new_input(photo, None, None, FileKind::Photo, false));
        assert_eq!(answer, (400, "Bad Request: PHOTO_SAVE_FILE_INVALID".into()));
        let png = Bytes::from(render_png(200, 100, &seed_of(&[b"ok"])));
        assert_eq!(code_and_text(new_input(png, None, None, FileKind::Photo, false)).0, 200);
    }

    #[test]
    fn photo_dimensions_follow_telegram() {
        let info = |width, height| Some(ImageInfo { mime: "image/png", width, height });
        assert!(check_photo(10, info(5000, 5000), false).is_ok());
        assert!(check_photo(10, info(5001, 5000), false).is_err(), "w + h > 10000");
        assert!(check_photo(10, info(2000, 100), false).is_ok(), "ratio 20");
        assert!(check_photo(10, info(2001, 100), false).is_err(), "ratio > 20");
    }
}
