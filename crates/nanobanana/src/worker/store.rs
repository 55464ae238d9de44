//! The worker's view of image storage: put and get by key, the key scheme, and the preview.
//! A stand-in over the local filesystem with the signatures of `crate::storage` (being built
//! on its own branch); once that lands this file only re-exports it. Never decides anything.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use uuid::Uuid;

use crate::config::StorageLocation;

/// Where images live. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn from_location(location: &StorageLocation) -> anyhow::Result<Self> {
        match location {
            StorageLocation::Local(root) => Ok(Self { root: root.clone() }),
            StorageLocation::S3 { .. } => bail!("STORAGE_URL s3:// is not supported by this build yet"),
        }
    }

    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        let relative = Path::new(key);
        if key.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            bail!("storage key {key:?} is not a plain relative path");
        }
        Ok(self.root.join(relative))
    }

    /// Writes `bytes` under `key` (atomically: a temporary file renamed into place).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
        }
        let temporary = path.with_extension(format!("tmp-{}", Uuid::new_v4().simple()));
        tokio::fs::write(&temporary, bytes).await.with_context(|| format!("writing {key}"))?;
        tokio::fs::rename(&temporary, &path).await.with_context(|| format!("storing {key}"))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.path(key)?;
        tokio::fs::read(&path).await.with_context(|| format!("reading {key}"))
    }
}

pub fn original_key(generation_id: Uuid, ext: &str) -> String {
    format!("generations/{generation_id}/original.{ext}")
}

pub fn preview_key(generation_id: Uuid) -> String {
    format!("generations/{generation_id}/preview.jpg")
}

/// A photo Telegram accepts.
#[derive(Debug, Clone)]
pub struct Preview {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Stand-in: the original itself (the fake's small images are within Telegram's photo
/// limits); `crate::storage::preview::make_async` re-encodes as JPEG within the limits.
pub async fn make_preview(bytes: &[u8], width: u32, height: u32) -> anyhow::Result<Preview> {
    Ok(Preview { bytes: bytes.to_vec(), width, height })
}
