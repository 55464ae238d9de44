//! An edit continues the Gemini conversation of the picture it edits (DESIGN §10 "Editing is
//! a conversation"): the stored conversation of the parent (its user turns with their
//! references, its model turns as Gemini returned them — text and image parts with their
//! `thoughtSignature`s, thoughts dropped) comes before the new instruction. A chain is bounded:
//! past `MAX_MODEL_TURNS` model turns or `MAX_CONVERSATION_BYTES`, or when the parent has no
//! stored conversation, the edit starts afresh from the parent's picture as a plain reference,
//! and the user is told. After a success the conversation, this turn included, is stored with
//! the new generation (`keep`), under its folder, so `/deleteme` erases it with the pictures.

use serde_json::Value;
use uuid::Uuid;

use super::deliver::Failure;
use super::job::Finished;
use super::repo::{self, Job};
use super::Worker;
use crate::gemini::{self, ImageFormat, Reference, Request};
use crate::jobs::Claimed;
use crate::storage::{self as store, StorageError};

/// Model turns a conversation may hold before an edit starts afresh from the last picture.
pub const MAX_MODEL_TURNS: usize = 5;
/// A stored conversation larger than this is not sent again (the model's input limit is far
/// above it; this bounds what one worker holds and pays for per edit).
pub const MAX_CONVERSATION_BYTES: usize = 24 * 1024 * 1024;

/// What an edit sends before its instruction.
#[derive(Debug)]
pub(super) enum Continued {
    /// The whole conversation so far (and its size as stored, in bytes).
    Conversation(Vec<Value>, usize),
    /// Started afresh: the parent's picture as a plain reference (why, for the log).
    Restarted(Reference, &'static str),
    /// The parent's picture is gone (erased): there is nothing to edit.
    Nothing,
}

/// What the edit `job` of generation `id` (owned by `user`) continues.
pub(super) async fn continue_from(
    worker: &Worker,
    job: &Job,
    user: i64,
    parent: Uuid,
) -> anyhow::Result<Continued> {
    let found = repo::parent_of(&mut *worker.pool.acquire().await?, parent, user).await?;
    let Some((turn_key, result_key)) = found else {
        return Ok(Continued::Nothing);
    };
    let why = match turn_key {
        Some(key) => match worker.storage.get(&key).await {
            Ok(bytes) if bytes.len() > MAX_CONVERSATION_BYTES => "the conversation is too large",
            Ok(bytes) => match serde_json::from_slice::<Vec<Value>>(&bytes) {
                Ok(contents) if model_turns(&contents) >= MAX_MODEL_TURNS => "the chain is long",
                Ok(contents) => return Ok(Continued::Conversation(contents, bytes.len())),
                Err(_) => "the stored conversation is unreadable",
            },
            Err(StorageError::NotFound { .. }) => "the stored conversation is gone",
            Err(error) => return Err(error.into()),
        },
        None => "the picture has no stored conversation",
    };
    let Some(result_key) = result_key else {
        return Ok(Continued::Nothing);
    };
    let bytes = match worker.storage.get(&result_key).await {
        Ok(bytes) => bytes.to_vec(),
        Err(StorageError::NotFound { .. }) => return Ok(Continued::Nothing),
        Err(error) => return Err(error.into()),
    };
    let mime_type = match gemini::sniff(&bytes).map(|i| i.format) {
        Some(ImageFormat::Jpeg) => "image/jpeg",
        _ => "image/png",
    };
    tracing::info!(parent = %parent, why, lang = ?job.lang, "edit starts afresh from the last picture");
    Ok(Continued::Restarted(Reference { mime_type: mime_type.to_owned(), bytes }, why))
}

/// An edit: the conversation of the picture it edits goes before the instruction, or its
/// picture as a plain reference when the chain cannot go on (the user is told once). The
/// bytes it added to `memory`, or how the job ended here.
pub(super) async fn prepare(
    worker: &Worker,
    claimed: &Claimed,
    job: &Job,
    parent: uuid::Uuid,
    request: &mut Request,
    memory: &mut crate::budget::Reservation,
) -> anyhow::Result<Result<u64, Finished>> {
    let outcome = continue_from(worker, job, claimed.user_id, parent).await;
    // What an edit holds (the conversation, or the last picture) counts against the worker's
    // byte budget like reference photos, held by the caller until the job ends.
    let extra = match &outcome {
        Ok(Continued::Conversation(_, bytes)) => *bytes as u64,
        Ok(Continued::Restarted(picture, _)) => picture.bytes.len() as u64,
        _ => 0,
    };
    memory.grow_to(memory.held() + extra).await;
    match outcome {
        Ok(Continued::Conversation(history, _)) => request.history = history,
        Ok(Continued::Restarted(picture, _why)) => {
            request.references.insert(0, picture);
            if claimed.attempts <= 1 {
                let text = crate::texts::render(job.lang, "edit_restarted", &[]);
                let mut conn = worker.pool.acquire().await?;
                crate::outbox::send_text(&mut conn, claimed.user_id, &text, None).await?;
            }
        }
        Ok(Continued::Nothing) => {
            let error = "edit: the picture it edits is gone";
            return Ok(Err(super::job::fail(worker, claimed, job, Failure::Invalid, error).await?));
        }
        Err(error) => {
            return Ok(
                Err(super::job::retry(worker, claimed, job, None, &format!("edit: {error:#}")).await?),
            );
        }
    }
    Ok(Ok(extra))
}

fn model_turns(contents: &[Value]) -> usize {
    contents.iter().filter(|c| c.get("role").and_then(Value::as_str) == Some("model")).count()
}

/// Stores the conversation that made generation `id` (the request's and Gemini's `turn`);
/// its key, or `None` when there is no turn to keep or it is too large to keep.
pub(super) async fn keep(
    worker: &Worker,
    id: Uuid,
    request: &Request,
    turn: Option<&Value>,
) -> Result<Option<String>, StorageError> {
    let Some(turn) = turn else {
        return Ok(None);
    };
    let mut contents = request.history.clone();
    contents.push(gemini::user_turn(&request.prompt, &request.references));
    contents.push(turn.clone());
    let bytes = serde_json::to_vec(&contents).unwrap_or_default();
    if bytes.is_empty() || bytes.len() > MAX_CONVERSATION_BYTES {
        tracing::info!(generation_id = %id, bytes = bytes.len(), "conversation not kept: too large");
        return Ok(None);
    }
    let key = store::conversation_key(id);
    worker.storage.put(&key, bytes::Bytes::from(bytes)).await?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_turns_are_counted_by_role() {
        let contents = vec![
            json!({"role": "user", "parts": [{"text": "a"}]}),
            json!({"role": "model", "parts": [{"text": "b"}]}),
            json!({"role": "user", "parts": [{"text": "c"}]}),
        ];
        assert_eq!(model_turns(&contents), 1);
        assert_eq!(model_turns(&[]), 0);
    }
}
