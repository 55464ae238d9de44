//! sendPhoto, sendDocument, sendMediaGroup, getFile and the file store. Files the bot sends get
//! a `file_id` that works in later calls; what a test reads about them is size and sha256 of
//! the bytes the bot provided (the fake does not recompress photos as Telegram does).

use axum::body::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::input::{resolve, Input};
use super::send::{new_message, record_message};
use super::{before_send, chat_id, reply_to, writable_chat};
use crate::common::image::{render_png, seed_of};
use crate::telegram::error::{TgError, TgResult};
use crate::telegram::markup::{check_caption, check_reply_markup, set_formatted};
use crate::telegram::params::Params;
use crate::telegram::state::{FileKind, FileRecord, Inner, StoredFile, TgState};

const MAX_GET_FILE: usize = 20 * 1024 * 1024;
const THUMB_SIDE: u32 = 90;

/// Stores bytes as a new Telegram file and returns it.
#[allow(clippy::too_many_arguments)]
pub fn store_file(
    inner: &mut Inner,
    max_bytes: usize,
    kind: FileKind,
    bytes: Bytes,
    mime_type: Option<String>,
    file_name: Option<String>,
    (width, height): (u32, u32),
) -> Result<StoredFile, TgError> {
    if inner.file_bytes + bytes.len() > max_bytes {
        tracing::warn!("the fake Telegram's file store is full");
        return Err(TgError::internal());
    }
    let serial = inner.serial();
    let sha256 = hex(&Sha256::digest(&bytes));
    let (prefix, folder) =
        if kind == FileKind::Photo { ("AgACAgIAAx", "photos") } else { ("BQACAgIAAx", "documents") };
    let ext = match mime_type.as_deref() {
        Some("image/png") => "png",
        Some("image/jpeg") => "jpg",
        Some("image/webp") => "webp",
        _ => file_name.as_deref().and_then(|n| n.rsplit_once('.')).map_or("bin", |(_, e)| e),
    };
    let file = StoredFile {
        file_id: format!("{prefix}{serial:010}{}", &sha256[..16]),
        file_unique_id: format!("AQAD{serial:08}"),
        file_path: format!("{folder}/file_{serial}.{ext}"),
        kind,
        bytes,
        mime_type,
        file_name,
        width,
        height,
        sha256,
    };
    inner.file_bytes += file.bytes.len();
    inner.file_paths.insert(file.file_path.clone(), file.file_id.clone());
    inner.files.insert(file.file_id.clone(), file.clone());
    Ok(file)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores a new input; an existing file is reused as is.
pub fn materialize(
    inner: &mut Inner,
    max: usize,
    input: Input,
    kind: FileKind,
) -> Result<StoredFile, TgError> {
    match input {
        Input::Existing(file) => Ok(file),
        Input::New { bytes, file_name, mime_type, info } => {
            let dims = info.map_or((0, 0), |i| (i.width, i.height));
            store_file(inner, max, kind, bytes, mime_type, file_name, dims)
        }
    }
}

pub fn file_record(file: &StoredFile) -> FileRecord {
    FileRecord {
        file_id: file.file_id.clone(),
        kind: file.kind,
        size: file.bytes.len(),
        sha256: file.sha256.clone(),
        mime_type: file.mime_type.clone(),
        file_name: file.file_name.clone(),
        width: file.width,
        height: file.height,
    }
}

/// The `photo` array: a small thumbnail (its own file) and the full size, largest last.
pub fn photo_sizes(inner: &mut Inner, max: usize, file: &StoredFile) -> Result<Value, TgError> {
    let full = json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id,
        "file_size": file.bytes.len(), "width": file.width, "height": file.height});
    let long = file.width.max(file.height);
    if long <= THUMB_SIDE {
        return Ok(json!([full]));
    }
    let scale = |side: u32| {
        u32::try_from(u64::from(side) * u64::from(THUMB_SIDE) / u64::from(long)).unwrap_or(1).max(1)
    };
    let (w, h) = (scale(file.width), scale(file.height));
    let thumb_bytes = Bytes::from(render_png(w, h, &seed_of(&[file.sha256.as_bytes()])));
    let thumb = store_file(inner, max, FileKind::Photo, thumb_bytes, Some("image/png".into()), None, (w, h))?;
    let small = json!({"file_id": thumb.file_id, "file_unique_id": thumb.file_unique_id,
        "file_size": thumb.bytes.len(), "width": w, "height": h});
    Ok(json!([small, full]))
}

pub fn document_object(file: &StoredFile) -> Value {
    let mut doc = json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_size": file.bytes.len()});
    if let Some(name) = &file.file_name {
        doc["file_name"] = json!(name);
    }
    if let Some(mime) = &file.mime_type {
        doc["mime_type"] = json!(mime);
    }
    doc
}

pub async fn send_photo(state: &TgState, p: &Params) -> TgResult {
    send_file(state, p, FileKind::Photo).await
}

pub async fn send_document(state: &TgState, p: &Params) -> TgResult {
    send_file(state, p, FileKind::Document).await
}

async fn send_file(state: &TgState, p: &Params, kind: FileKind) -> TgResult {
    let chat_id = chat_id(p)?;
    let (field, method) =
        if kind == FileKind::Photo { ("photo", "sendPhoto") } else { ("document", "sendDocument") };
    let caption = p.str("caption");
    let caption = check_caption(caption.as_deref(), p.str("parse_mode").as_deref())?;
    let markup = check_reply_markup(p.json("reply_markup")?)?;
    writable_chat(&mut state.lock(), chat_id)?;
    let input = resolve(state, p, field, p.str(field), kind).await?;
    let mut inner = state.lock();
    let reply = reply_to(&mut inner, chat_id, p)?;
    before_send(&mut inner, chat_id, 1)?;
    let max = state.config.max_file_bytes;
    let file = materialize(&mut inner, max, input, kind)?;
    let content = match kind {
        FileKind::Photo => photo_sizes(&mut inner, max, &file)?,
        FileKind::Document => document_object(&file),
    };
    let message = new_message(state, &mut inner, chat_id, |m| {
        m[field] = content;
        if let Some(caption) = &caption {
            set_formatted(m, "caption", caption);
        }
        if let Some(reply) = reply {
            m["reply_to_message"] = reply;
        }
        if let Some(markup) = &markup {
            m["reply_markup"] = markup.clone();
        }
    })?;
    let record =
        record_message(&mut inner, chat_id, field, message.clone(), Some(file_record(&file)), method);
    drop(inner);
    state.chats_changed();
    Ok(record.unwrap_or(message))
}

pub async fn send_media_group(state: &TgState, p: &Params) -> TgResult {
    let chat_id = chat_id(p)?;
    let media = p.json("media")?.and_then(|m| m.as_array().cloned()).unwrap_or_default();
    if !(2..=10).contains(&media.len()) {
        return Err(TgError::bad_request("wrong number of media in the album; must be 2-10"));
    }
    let kinds: Vec<FileKind> = media.iter().map(item_kind).collect::<Result<_, _>>()?;
    if kinds.contains(&FileKind::Document) && kinds.contains(&FileKind::Photo) {
        return Err(TgError::bad_request("documents can't be mixed with other media types"));
    }
    writable_chat(&mut state.lock(), chat_id)?;
    let mut inputs = Vec::with_capacity(media.len());
    let mut captions = Vec::with_capacity(media.len());
    for (item, kind) in media.iter().zip(&kinds) {
        let caption = item.get("caption").and_then(Value::as_str);
        captions.push(check_caption(caption, item.get("parse_mode").and_then(Value::as_str))?);
        let value = item.get("media").and_then(Value::as_str).map(str::to_string);
        inputs.push(resolve(state, p, "", value, *kind).await?);
    }
    let mut inner = state.lock();
    before_send(&mut inner, chat_id, media.len() as u32)?;
    let group_id = format!("{}", 13_000_000_000_000_000u64 + inner.serial());
    let mut messages = Vec::with_capacity(media.len());
    for ((caption, kind), input) in captions.iter().zip(kinds).zip(inputs) {
        let file = materialize(&mut inner, state.config.max_file_bytes, input, kind)?;
        let (field, content) = match kind {
            FileKind::Photo => ("photo", photo_sizes(&mut inner, state.config.max_file_bytes, &file)?),
            FileKind::Document => ("document", document_object(&file)),
        };
        let message = new_message(state, &mut inner, chat_id, |m| {
            m[field] = content;
            m["media_group_id"] = json!(group_id);
            if let Some(caption) = caption {
                set_formatted(m, "caption", caption);
            }
        })?;
        let record = record_message(
            &mut inner,
            chat_id,
            field,
            message.clone(),
            Some(file_record(&file)),
            "sendMediaGroup",
        );
        messages.push(record.unwrap_or(message));
    }
    drop(inner);
    state.chats_changed();
    Ok(Value::Array(messages))
}

fn item_kind(item: &Value) -> Result<FileKind, TgError> {
    match item.get("type").and_then(Value::as_str) {
        Some("photo") => Ok(FileKind::Photo),
        Some("document") => Ok(FileKind::Document),
        Some("video" | "audio") => Err(TgError::bad_request("wrong file identifier/HTTP URL specified")),
        _ => Err(TgError::bad_request("can't parse InputMedia: media type must be specified")),
    }
}

pub fn get_file(state: &TgState, p: &Params) -> TgResult {
    let file_id = p.str("file_id").unwrap_or_default();
    if file_id.is_empty() {
        return Err(TgError::bad_request("file_id is empty"));
    }
    let inner = state.lock();
    let file = inner.files.get(&file_id).ok_or_else(|| TgError::bad_request("invalid file_id"))?;
    if file.bytes.len() > MAX_GET_FILE {
        return Err(TgError::bad_request("file is too big"));
    }
    Ok(json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id,
        "file_size": file.bytes.len(), "file_path": file.file_path}))
}
