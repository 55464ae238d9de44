//! The worker's view of image storage: `crate::storage` (keys, objects, previews) plus how a
//! preview that cannot be made is read — never a success, worth another Gemini call.

pub use crate::storage::preview::{make_async as make_preview, Preview, PreviewError};
pub use crate::storage::{original_key, preview_key, reference_key, Storage, StorageError};
