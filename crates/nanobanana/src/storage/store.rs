//! [`Storage`]: put, get and check objects by key, in a local directory or an S3 bucket.
//!
//! Writes are atomic from a reader's view on both backends: S3 replaces an object whole, and
//! `object_store`'s local backend writes a staging file beside the target (`{path}#{n}`, opened
//! with `create_new`) and renames it into place. It does not fsync, so after a power cut an
//! object may be missing or empty; the worker only settles after `put` returned, and a re-run
//! writes the same key again.

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::key::{validate_key, KeyError};
use crate::config::StorageLocation;

/// Objects above this size are refused on `put` and on `get`, so a stray upload or a wrong key
/// cannot make a worker read an unbounded body into memory. Telegram documents are ≤ 50 MB.
pub const MAX_OBJECT_BYTES: u64 = 50 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: KeyError },
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("object {key} is {size} bytes, over the {MAX_OBJECT_BYTES}-byte limit")]
    TooLarge { key: String, size: u64 },
    #[error("cannot open the storage directory {path}")]
    Directory {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid storage configuration: {0}")]
    Config(String),
    #[error("storage backend error on {key}")]
    Backend {
        key: String,
        #[source]
        source: object_store::Error,
    },
}

/// Where images live. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every key with a `/` (empty for a local directory, which is its own root).
    prefix: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Storage {
    /// Local directory (created if missing) or S3 bucket (credentials, region and endpoint from
    /// the standard `AWS_*` environment variables; an S3-compatible endpoint via
    /// `AWS_ENDPOINT_URL`, plain `http://` allowed only for such an explicit endpoint). Nothing
    /// here touches the network: a wrong bucket or credentials show on the first call.
    pub fn from_location(location: &StorageLocation) -> Result<Self, StorageError> {
        match location {
            StorageLocation::Local(dir) => Self::local(dir),
            StorageLocation::S3 { bucket, prefix } => Self::s3(bucket, prefix),
        }
    }

    fn local(dir: &FsPath) -> Result<Self, StorageError> {
        let directory = |source| StorageError::Directory { path: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(directory)?;
        let root = std::fs::canonicalize(dir).map_err(directory)?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| StorageError::Config(format!("local directory {}: {e}", root.display())))?;
        Ok(Self { store: Arc::new(store), prefix: String::new() })
    }

    fn s3(bucket: &str, prefix: &str) -> Result<Self, StorageError> {
        if !prefix.is_empty() {
            validate_key(prefix)
                .map_err(|reason| StorageError::Config(format!("S3 prefix {prefix:?}: {reason}")))?;
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let plain_http_endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .any(|url| url.starts_with("http://"));
        if plain_http_endpoint {
            builder = builder.with_allow_http(true);
        }
        let store =
            builder.build().map_err(|e| StorageError::Config(format!("S3 bucket {bucket:?}: {e}")))?;
        Ok(Self { store: Arc::new(store), prefix: prefix.to_owned() })
    }

    /// Stores `bytes` under `key`, replacing any object there; readers see the old object or
    /// the new one, never a part.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let size = bytes.len() as u64;
        if size > MAX_OBJECT_BYTES {
            return Err(StorageError::TooLarge { key: key.to_owned(), size });
        }
        self.store.put(&path, PutPayload::from(bytes)).await.map_err(|e| backend(key, e))?;
        Ok(())
    }

    /// The whole object under `key`; [`StorageError::NotFound`] when there is none.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        let result = self.store.get(&path).await.map_err(|e| backend(key, e))?;
        if result.meta.size > MAX_OBJECT_BYTES {
            return Err(StorageError::TooLarge { key: key.to_owned(), size: result.meta.size });
        }
        result.bytes().await.map_err(|e| backend(key, e))
    }

    /// Deletes every object whose key starts with `prefix/` (a deleted or missing one is no
    /// error: erasing twice is erasing once); returns how many were deleted.
    pub async fn delete_under(&self, prefix: &str) -> Result<usize, StorageError> {
        use futures_util::TryStreamExt;
        let path = self.path(prefix)?;
        let objects: Vec<_> =
            self.store.list(Some(&path)).try_collect().await.map_err(|e| backend(prefix, e))?;
        for object in &objects {
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(prefix, e)),
            }
        }
        Ok(objects.len())
    }

    /// Whether an object exists under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(backend(key, e)),
        }
    }

    fn path(&self, key: &str) -> Result<Path, StorageError> {
        validate_key(key).map_err(|reason| StorageError::InvalidKey { key: key.to_owned(), reason })?;
        let full = if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        // Every validated key is also a valid `object_store` path; this only guards against a
        // difference in their rules.
        Path::parse(&full)
            .map_err(|_| StorageError::InvalidKey { key: key.to_owned(), reason: KeyError::Character })
    }
}

fn backend(key: &str, source: object_store::Error) -> StorageError {
    match source {
        object_store::Error::NotFound { .. } => StorageError::NotFound { key: key.to_owned() },
        source => StorageError::Backend { key: key.to_owned(), source },
    }
}
