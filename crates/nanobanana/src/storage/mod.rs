//! Image storage: originals, previews and reference photos as objects under a key, in a local
//! directory (the default) or an S3-compatible bucket, through `object_store`; and the JPEG
//! preview Telegram can show as a photo (`preview`).
//!
//! This module owns the key layout and the rule that a key is a plain relative path (checked on
//! every call, so nothing outside the store's root can be named). It never touches the database,
//! the ledger or Telegram: the worker stores first and settles after.

mod key;
pub mod preview;
mod store;

pub use key::{conversation_key, original_key, preview_key, reference_key, validate_key, KeyError};
pub use store::{Storage, StorageError, MAX_OBJECT_BYTES};
