//! A stored file an outbox row sends instead of a Telegram file reference: `params.photo` or
//! `params.document` = `{"storage_key": …, "generation_id": …}`. The sender uploads it from
//! storage as multipart and keeps the `file_id` Telegram returned on the generation.

use serde_json::Value;
use sqlx::PgPool;

use crate::jobs;
use crate::storage::Storage;
use crate::telegram::client::{ApiError, Upload};

/// A stored file a row sends: `params[field] = {"storage_key", "generation_id"?}`.
pub(super) struct Attachment {
    pub(super) field: &'static str,
    pub(super) key: String,
    pub(super) generation_id: Option<uuid::Uuid>,
}

impl Attachment {
    pub(super) fn of(params: &Value) -> Option<Self> {
        ["photo", "document"].into_iter().find_map(|field| {
            let file = params.get(field)?;
            let key = file.get("storage_key")?.as_str()?.to_owned();
            let generation_id =
                file.get("generation_id").and_then(Value::as_str).and_then(|id| id.parse().ok());
            Some(Self { field, key, generation_id })
        })
    }

    /// Keeps Telegram's `file_id` (a photo's largest size) on the generation, for sending again.
    pub(super) async fn record_file_id(&self, pool: &PgPool, result: &Value) -> sqlx::Result<()> {
        let Some(id) = self.generation_id else {
            return Ok(());
        };
        let (kind, file_id) = match self.field {
            "photo" => (
                jobs::Delivered::Photo,
                result.get("photo").and_then(Value::as_array).and_then(|sizes| sizes.last()),
            ),
            _ => (jobs::Delivered::Document, result.get("document")),
        };
        let Some(file_id) = file_id.and_then(|f| f.get("file_id")).and_then(Value::as_str) else {
            return Ok(());
        };
        jobs::set_file_id(pool, id, kind, file_id).await
    }

    /// Reads the stored file; a failure is retried like a failed call.
    pub(super) async fn load(&self, storage: Option<&Storage>) -> Result<Upload, ApiError> {
        let failed = |reason: String| ApiError::Transport { method: "storage".to_owned(), reason };
        let storage = storage.ok_or_else(|| failed("no storage configured".to_owned()))?;
        let bytes = storage.get(&self.key).await.map_err(|e| failed(format!("{e:#}")))?.to_vec();
        let file_name = self.key.rsplit('/').next().unwrap_or("image").to_owned();
        let mime_type = match crate::gemini::sniff(&bytes) {
            Some(info) => info.format.mime(),
            None => "application/octet-stream",
        };
        Ok(Upload { field: self.field, file_name, mime_type, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_files_are_recognized_only_by_a_storage_key() {
        let id = uuid::Uuid::new_v4();
        let photo =
            serde_json::json!({"chat_id": 1, "photo": {"storage_key": "a/b.jpg", "generation_id": id}});
        let found = Attachment::of(&photo).expect("a stored photo");
        assert_eq!((found.field, found.key.as_str(), found.generation_id), ("photo", "a/b.jpg", Some(id)));
        let document = serde_json::json!({"document": {"storage_key": "a/o.png"}});
        let found = Attachment::of(&document).expect("a stored document");
        assert_eq!((found.field, found.generation_id), ("document", None));
        assert!(Attachment::of(&serde_json::json!({"photo": "AgACAgIAAxk-file-id"})).is_none());
        assert!(Attachment::of(&serde_json::json!({"text": "hi"})).is_none());
    }
}
