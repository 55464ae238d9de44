//! Image storage on a real filesystem (a fresh directory per test under the system temp dir,
//! removed at the end) and previews of images made here with the `image` crate.

use std::io::Cursor;
use std::path::PathBuf;

use bytes::Bytes;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use nanobanana::config::StorageLocation;
use nanobanana::storage::preview::{self, PreviewError};
use nanobanana::storage::{original_key, preview_key, reference_key, Storage, StorageError};
use uuid::Uuid;

/// A directory that exists for one test and is removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("nanobanana-storage-{}", Uuid::new_v4())))
    }

    fn storage(&self) -> Storage {
        Storage::from_location(&StorageLocation::Local(self.0.clone())).expect("local storage opens")
    }

    /// Every file under the directory, relative to it.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).expect("under root").display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &self.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A colourful gradient, so the JPEG encoder has real work and a resize is visible.
fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width.max(1)) as u8, (y * 255 / height.max(1)) as u8, ((x ^ y) & 0xff) as u8])
    })
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).expect("test image encodes");
    out
}

/// Asserts the preview is a JPEG of the size it claims, within Telegram's photo limits.
fn assert_sendable(preview: &preview::Preview) {
    let decoded =
        image::load_from_memory_with_format(&preview.bytes, ImageFormat::Jpeg).expect("preview is a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (preview.width, preview.height));
    assert!(preview.bytes.len() <= 10 * 1000 * 1000, "{} bytes", preview.bytes.len());
    assert!(preview.width + preview.height <= 10_000);
    assert!(preview.width.max(preview.height) <= 2560);
    let (long, short) = (preview.width.max(preview.height), preview.width.min(preview.height));
    assert!(long <= 20 * short, "{}x{}", preview.width, preview.height);
}

#[tokio::test]
async fn storage_put_get_exists_round_trip() {
    let dir = TempDir::new();
    let storage = dir.storage();
    let id = Uuid::new_v4();
    let key = original_key(id, "png");
    assert!(!storage.exists(&key).await.expect("exists"));

    storage.put(&key, Bytes::from_static(b"first")).await.expect("put");
    assert!(storage.exists(&key).await.expect("exists"));
    assert_eq!(storage.get(&key).await.expect("get"), Bytes::from_static(b"first"));

    storage.put(&key, Bytes::from_static(b"second, longer")).await.expect("overwrite");
    assert_eq!(storage.get(&key).await.expect("get"), Bytes::from_static(b"second, longer"));

    for other in [preview_key(id), reference_key(id, 0, "jpg"), reference_key(id, 1, "png")] {
        storage.put(&other, Bytes::from(other.clone().into_bytes())).await.expect("put");
        assert_eq!(storage.get(&other).await.expect("get"), Bytes::from(other.clone().into_bytes()));
    }
    // The keys are the files' paths under the directory, and nothing else is left there.
    assert_eq!(
        dir.files(),
        vec![
            format!("generations/{id}/original.png"),
            format!("generations/{id}/preview.jpg"),
            format!("references/{id}/0.jpg"),
            format!("references/{id}/1.png"),
        ]
    );
}

#[tokio::test]
async fn storage_creates_a_missing_directory_and_reopens_it() {
    let dir = TempDir::new();
    let nested = dir.0.join("a/b/images");
    let location = StorageLocation::Local(nested.clone());
    let storage = Storage::from_location(&location).expect("opens");
    assert!(nested.is_dir());
    storage.put("x/y.bin", Bytes::from_static(b"kept")).await.expect("put");
    drop(storage);
    let reopened = Storage::from_location(&location).expect("reopens");
    assert_eq!(reopened.get("x/y.bin").await.expect("get"), Bytes::from_static(b"kept"));
}

#[tokio::test]
async fn storage_missing_object_is_not_found() {
    let dir = TempDir::new();
    let storage = dir.storage();
    let key = preview_key(Uuid::new_v4());
    match storage.get(&key).await {
        Err(StorageError::NotFound { key: missing }) => assert_eq!(missing, key),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // A prefix of existing keys is a directory on disk, not an object.
    storage.put("generations/g/original.png", Bytes::from_static(b"x")).await.expect("put");
    assert!(!storage.exists("generations/g").await.expect("exists"));
    assert!(matches!(storage.get("generations/g").await, Err(StorageError::NotFound { .. })));
}

#[tokio::test]
async fn storage_refuses_bad_keys_and_writes_nothing() {
    let dir = TempDir::new();
    let inner = TempDir(dir.0.join("store"));
    let storage = inner.storage();
    let bad = [
        "",
        "/etc/passwd",
        "../escape",
        "a/../../escape",
        "a/./b",
        ".hidden",
        "a//b",
        "a/",
        "a\\..\\b",
        "a b",
        "a#1",
        "ключ",
        "a\0b",
    ];
    for key in bad {
        let put = storage.put(key, Bytes::from_static(b"x")).await;
        assert!(matches!(put, Err(StorageError::InvalidKey { .. })), "put {key:?}: {put:?}");
        let get = storage.get(key).await;
        assert!(matches!(get, Err(StorageError::InvalidKey { .. })), "get {key:?}: {get:?}");
        let exists = storage.exists(key).await;
        assert!(matches!(exists, Err(StorageError::InvalidKey { .. })), "exists {key:?}: {exists:?}");
    }
    let long = "a".repeat(600);
    assert!(matches!(storage.put(&long, Bytes::new()).await, Err(StorageError::InvalidKey { .. })));
    assert!(dir.files().is_empty(), "{:?}", dir.files());
    assert!(!dir.0.parent().expect("temp dir").join("escape").exists());
}

#[tokio::test]
async fn storage_refuses_objects_over_50_mb() {
    let dir = TempDir::new();
    let storage = dir.storage();
    let big = Bytes::from(vec![0u8; 50 * 1024 * 1024 + 1]);
    let put = storage.put("big.bin", big).await;
    assert!(
        matches!(put, Err(StorageError::TooLarge { size, .. }) if size == 50 * 1024 * 1024 + 1),
        "{put:?}"
    );
    assert!(!storage.exists("big.bin").await.expect("exists"));

    // One that got there some other way is not read into memory either.
    std::fs::write(dir.0.join("planted.bin"), vec![0u8; 50 * 1024 * 1024 + 1]).expect("plant");
    assert!(matches!(storage.get("planted.bin").await, Err(StorageError::TooLarge { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_concurrent_puts_of_one_key_leave_a_complete_object() {
    let dir = TempDir::new();
    let storage = dir.storage();
    let key = original_key(Uuid::new_v4(), "png");
    const WRITERS: u8 = 8;
    const SIZE: usize = 1024 * 1024;
    let payload = |writer: u8| Bytes::from(vec![writer; SIZE + usize::from(writer)]);
    let is_complete = |bytes: &Bytes| {
        let first = bytes.first().copied().unwrap_or(u8::MAX);
        first < WRITERS && bytes.len() == SIZE + usize::from(first) && bytes.iter().all(|b| *b == first)
    };

    let reader = {
        let (storage, key) = (storage.clone(), key.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            for _ in 0..200 {
                match storage.get(&key).await {
                    Ok(bytes) => {
                        assert!(
                            is_complete(&bytes),
                            "a reader saw a partial object of {} bytes",
                            bytes.len()
                        );
                        seen += 1;
                    }
                    Err(StorageError::NotFound { .. }) => {}
                    Err(e) => panic!("read failed: {e:?}"),
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (storage, key) = (storage.clone(), key.clone());
            tokio::spawn(async move {
                for _ in 0..4 {
                    storage.put(&key, payload(writer)).await.expect("put");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task");
    }
    reader.await.expect("reader task");

    let stored = storage.get(&key).await.expect("get");
    assert!(is_complete(&stored), "final object is partial: {} bytes", stored.len());
    // No staging files are left beside it.
    assert_eq!(dir.files(), vec![key]);
}

#[test]
fn storage_s3_location_builds_without_network() {
    let location = StorageLocation::S3 { bucket: "nanobanana-test".to_owned(), prefix: "images".to_owned() };
    // Whatever AWS_* variables this machine has, building never panics and never connects.
    match Storage::from_location(&location) {
        Ok(storage) => {
            // A bad key is refused before any request is made.
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let get = runtime.block_on(storage.get("../other-bucket"));
            assert!(matches!(get, Err(StorageError::InvalidKey { .. })), "{get:?}");
        }
        Err(StorageError::Config(_)) => {}
        Err(e) => panic!("unexpected error: {e:?}"),
    }
    let bad_prefix = StorageLocation::S3 { bucket: "b".to_owned(), prefix: "../up".to_owned() };
    assert!(matches!(Storage::from_location(&bad_prefix), Err(StorageError::Config(_))));
}

#[test]
fn storage_preview_of_a_png_keeps_its_size() {
    let mut rgba = RgbaImage::from_fn(1376, 768, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255]));
    // A transparent corner, flattened onto white.
    for x in 0..16 {
        for y in 0..16 {
            rgba.put_pixel(x, y, Rgba([0, 0, 0, 0]));
        }
    }
    let png = encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
    let preview = preview::make(&png).expect("preview");
    assert_eq!((preview.width, preview.height), (1376, 768));
    assert_sendable(&preview);
    let decoded = image::load_from_memory(&preview.bytes).expect("decodes").into_rgb8();
    let corner = decoded.get_pixel(4, 4).0;
    assert!(corner.iter().all(|c| *c > 240), "transparent corner became {corner:?}");
}

#[test]
fn storage_preview_of_a_jpeg_keeps_its_size() {
    let jpeg = encode(DynamicImage::ImageRgb8(gradient(768, 1376)), ImageFormat::Jpeg);
    let preview = preview::make(&jpeg).expect("preview");
    assert_eq!((preview.width, preview.height), (768, 1376));
    assert_sendable(&preview);
}

#[test]
fn storage_preview_of_what_the_fake_gemini_renders() {
    let seed = fakes::common::image::seed_of(&[b"storage"]);
    for original in [
        fakes::common::image::render_png(640, 480, &seed),
        fakes::common::image::render_jpeg(480, 640, &seed),
    ] {
        let preview = preview::make(&original).expect("preview");
        assert_sendable(&preview);
    }
}

/// The slowest test here in a debug build (seconds; the `image` crate is unoptimized there).
#[test]
fn storage_preview_scales_a_large_image_to_2560() {
    let png = encode(DynamicImage::ImageRgb8(gradient(4096, 4096)), ImageFormat::Png);
    let preview = preview::make(&png).expect("preview");
    assert_eq!((preview.width, preview.height), (2560, 2560));
    assert_sendable(&preview);

    // The short side is rounded up: 1600 × 2560 / 3000 = 1365.3.
    let tall = encode(DynamicImage::ImageRgb8(gradient(1600, 3000)), ImageFormat::Jpeg);
    let preview = preview::make(&tall).expect("preview");
    assert_eq!((preview.width, preview.height), (1366, 2560));
    assert_sendable(&preview);
}

#[test]
fn storage_preview_refuses_an_extreme_aspect_ratio() {
    let png = encode(DynamicImage::ImageRgb8(gradient(3000, 100)), ImageFormat::Png);
    assert!(matches!(preview::make(&png), Err(PreviewError::AspectRatio { width: 3000, height: 100 })));
    let tall = encode(DynamicImage::ImageRgb8(gradient(100, 3000)), ImageFormat::Jpeg);
    assert!(matches!(preview::make(&tall), Err(PreviewError::AspectRatio { width: 100, height: 3000 })));

    // Exactly 20:1 is allowed, and stays within 20:1 once scaled.
    let edge = encode(DynamicImage::ImageRgb8(gradient(3000, 150)), ImageFormat::Png);
    let preview = preview::make(&edge).expect("preview");
    assert_eq!((preview.width, preview.height), (2560, 128));
    assert_sendable(&preview);
}

#[test]
fn storage_preview_of_garbage_is_an_error() {
    assert!(matches!(preview::make(b""), Err(PreviewError::NotAnImage)));
    assert!(matches!(preview::make(b"<html>502 Bad Gateway</html>"), Err(PreviewError::NotAnImage)));
    // A valid header followed by garbage.
    let mut png = encode(DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Png);
    let len = png.len();
    png[40..len].fill(0xAB);
    assert!(preview::make(&png).is_err());
    let mut jpeg = encode(DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Jpeg);
    jpeg.truncate(jpeg.len() / 3);
    assert!(preview::make(&jpeg).is_err());
    // A header claiming a huge image is refused before anything is allocated for it.
    let mut huge = encode(DynamicImage::ImageRgb8(gradient(8, 8)), ImageFormat::Png);
    huge[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    assert!(matches!(preview::make(&huge), Err(PreviewError::TooManyPixels { .. })));
    assert!(matches!(preview::make(&vec![0u8; 50 * 1024 * 1024 + 1]), Err(PreviewError::TooLarge(_))));
}

#[tokio::test]
async fn storage_preview_async_runs_off_the_runtime() {
    let jpeg = Bytes::from(encode(DynamicImage::ImageRgb8(gradient(300, 200)), ImageFormat::Jpeg));
    let preview = preview::make_async(jpeg).await.expect("preview");
    assert_eq!((preview.width, preview.height), (300, 200));
    assert!(matches!(preview::make_async(Bytes::from_static(b"nope")).await, Err(PreviewError::NotAnImage)));

    // More at once than there are cores: they wait their turn and all finish.
    let many = (0..6u32).map(|i| {
        let png = encode(DynamicImage::ImageRgb8(gradient(100 + i, 80)), ImageFormat::Png);
        preview::make_async(Bytes::from(png))
    });
    let previews = futures_util::future::join_all(many).await;
    for (i, preview) in (0u32..).zip(previews) {
        assert_eq!(preview.expect("preview").width, 100 + i);
    }
}
