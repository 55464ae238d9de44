//! The preview: a JPEG of the generated image that Telegram accepts as a photo (`sendPhoto`:
//! ≤ 10 MB, width + height ≤ 10000, aspect ratio ≤ 20) at the size Telegram shows photos (long
//! side ≤ 2560). The original is kept as it is and sent as a document on request.
//!
//! Pure and CPU-heavy: [`make`] blocks for a few hundred milliseconds on a 4K image in a release
//! build (seconds in a debug one), so async callers use [`make_async`]. It never panics on bad
//! input; memory is bounded by refusing inputs over [`MAX_INPUT_BYTES`] and images whose decoded
//! pixels would need more than [`MAX_DECODE_BYTES`].

use std::io::Cursor;
use std::sync::LazyLock;

use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use tokio::sync::Semaphore;

use crate::gemini::{sniff, ImageFormat};

/// Telegram's `sendPhoto` upload limit.
pub const MAX_PREVIEW_BYTES: usize = 10 * 1000 * 1000;
/// The long side Telegram displays photos at; larger previews only cost bytes.
pub const MAX_LONG_SIDE: u32 = 2560;
/// Telegram refuses photos whose long side is more than this many times the short one.
pub const MAX_ASPECT_RATIO: u32 = 20;
/// Originals larger than this are refused before decoding (Telegram documents are ≤ 50 MB too).
pub const MAX_INPUT_BYTES: usize = 50 * 1024 * 1024;
/// The decoder's allocation cap: a 4096×4096 RGBA image at 16 bits per channel is 128 MiB.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// Neither side of an original may exceed this (Gemini's largest images are near 6000 px).
pub const MAX_SIDE: u32 = 16384;

/// JPEG qualities tried in turn until the preview fits `MAX_PREVIEW_BYTES`.
const QUALITIES: [u8; 4] = [87, 75, 60, 45];

/// A JPEG ready for `sendPhoto`, and its size in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub bytes: Bytes,
    pub width: u32,
    pub height: u32,
}

/// Why no preview could be made. Every variant but `Task` is a property of the image itself, so
/// trying again with the same bytes gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("the image is {0} bytes, over the {MAX_INPUT_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("not a PNG or JPEG image")]
    NotAnImage,
    #[error("the image is {width}×{height}; each side must be 1 to {MAX_SIDE} pixels")]
    TooManyPixels { width: u32, height: u32 },
    #[error(
        "the image is {width}×{height}; Telegram refuses photos with an aspect ratio over {MAX_ASPECT_RATIO}"
    )]
    AspectRatio { width: u32, height: u32 },
    #[error("the image cannot be decoded")]
    Decode(#[source] image::ImageError),
    #[error("the preview cannot be encoded")]
    Encode(#[source] image::ImageError),
    #[error("the preview is over {MAX_PREVIEW_BYTES} bytes even at the lowest quality")]
    PreviewTooLarge,
    #[error("the preview task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// At most this many previews are made at once per process through [`make_async`]: one per
/// core, since each is pure CPU and may hold a few hundred MB while it runs.
static RUNNING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// [`make`] on the blocking thread pool, waiting for a turn when every core is already making
/// one (so memory stays bounded however many generations finish together).
pub async fn make_async(original: Bytes) -> Result<Preview, PreviewError> {
    // The semaphore is never closed, so `acquire` cannot fail; were it to, run unthrottled.
    let _turn = RUNNING.acquire().await.ok();
    tokio::task::spawn_blocking(move || make(&original)).await.map_err(PreviewError::Task)?
}

/// The preview of `original` (PNG or JPEG): EXIF orientation applied, transparency flattened
/// onto white, scaled down so the long side is at most [`MAX_LONG_SIDE`] with the aspect ratio
/// kept, encoded as JPEG. An aspect ratio over [`MAX_ASPECT_RATIO`] is refused rather than
/// cropped: cropping would show the user a different picture from the one they paid for, and
/// the original can still be sent as a document.
pub fn make(original: &[u8]) -> Result<Preview, PreviewError> {
    within(original, MAX_LONG_SIDE)
}

/// The long side of a reference photo that the image models use; Gemini scales larger inputs
/// down itself, so bigger references only cost memory and upload time.
pub const REFERENCE_LONG_SIDE: u32 = 2048;

/// A reference photo scaled down to [`REFERENCE_LONG_SIDE`] as a JPEG, when it is larger than
/// that (`None`: it is small enough as it is). Decoding is bounded as for previews.
pub fn shrink_reference(original: &[u8]) -> Result<Option<Preview>, PreviewError> {
    let info = sniff(original).ok_or(PreviewError::NotAnImage)?;
    if info.width.max(info.height) <= REFERENCE_LONG_SIDE {
        return Ok(None);
    }
    within(original, REFERENCE_LONG_SIDE).map(Some)
}

/// [`shrink_reference`] on the blocking pool, one per core at a time (with the previews).
pub async fn shrink_reference_async(original: Bytes) -> Result<Option<Preview>, PreviewError> {
    let _turn = RUNNING.acquire().await.ok();
    tokio::task::spawn_blocking(move || shrink_reference(&original)).await.map_err(PreviewError::Task)?
}

/// A JPEG of `original` with its long side at most `long_side`.
fn within(original: &[u8], long_side: u32) -> Result<Preview, PreviewError> {
    if original.len() > MAX_INPUT_BYTES {
        return Err(PreviewError::TooLarge(original.len()));
    }
    // The header is checked first so that a refused image costs no decoding.
    let info = sniff(original).ok_or(PreviewError::NotAnImage)?;
    check_dimensions(info.width, info.height)?;
    let image = decode(original, info.format)?;
    // The decoded (and re-oriented) size is what counts, whatever the header said.
    check_dimensions(image.width(), image.height())?;
    let (width, height) = scaled(image.width(), image.height(), long_side);
    let rgb = flatten(image);
    let rgb = if (width, height) == rgb.dimensions() {
        rgb
    } else {
        image::imageops::resize(&rgb, width, height, FilterType::Triangle)
    };
    let bytes = encode(&rgb)?;
    Ok(Preview { bytes, width, height })
}

fn check_dimensions(width: u32, height: u32) -> Result<(), PreviewError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(PreviewError::TooManyPixels { width, height });
    }
    let (long, short) = (width.max(height), width.min(height));
    if u64::from(long) > u64::from(short) * u64::from(MAX_ASPECT_RATIO) {
        return Err(PreviewError::AspectRatio { width, height });
    }
    Ok(())
}

fn decode(original: &[u8], format: ImageFormat) -> Result<DynamicImage, PreviewError> {
    let mut reader = ImageReader::new(Cursor::new(original));
    reader.set_format(match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
    });
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(PreviewError::Decode)?;
    let orientation = decoder.orientation().map_err(PreviewError::Decode)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(PreviewError::Decode)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The size with the long side at most `limit`. The short side is rounded up, so the
/// scaled ratio never exceeds the original's (which `check_dimensions` bounded).
fn scaled(width: u32, height: u32, limit: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= limit {
        return (width, height);
    }
    let short = width.min(height);
    let scaled_short = (u64::from(short) * u64::from(limit)).div_ceil(u64::from(long));
    let scaled_short = u32::try_from(scaled_short).unwrap_or(limit).max(1);
    if width >= height {
        (limit, scaled_short)
    } else {
        (scaled_short, limit)
    }
}

/// 8-bit RGB; transparent pixels become white (JPEG has no alpha, and black is the usual
/// colour hiding under a transparent pixel).
fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    RgbImage::from_fn(width, height, |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn encode(rgb: &RgbImage) -> Result<Bytes, PreviewError> {
    for quality in QUALITIES {
        let mut out = Vec::with_capacity(rgb.as_raw().len() / 8);
        JpegEncoder::new_with_quality(&mut out, quality).encode_image(rgb).map_err(PreviewError::Encode)?;
        if out.len() <= MAX_PREVIEW_BYTES {
            return Ok(Bytes::from(out));
        }
    }
    Err(PreviewError::PreviewTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_keeps_the_ratio_and_bounds_the_long_side() {
        let scaled = |w, h| scaled(w, h, MAX_LONG_SIDE);
        assert_eq!(scaled(1024, 768), (1024, 768));
        assert_eq!(scaled(2560, 2560), (2560, 2560));
        assert_eq!(scaled(4096, 4096), (2560, 2560));
        assert_eq!(scaled(5504, 3072), (2560, 1429));
        assert_eq!(scaled(3072, 5504), (1429, 2560));
        // A ratio of exactly 20 stays at most 20 after rounding.
        let (w, h) = scaled(5119, 256);
        assert!(w <= 20 * h, "{w}x{h}");
        assert_eq!(scaled(60000, 1), (2560, 1));
    }

    #[test]
    fn dimensions_follow_telegram_rules() {
        assert!(check_dimensions(2000, 100).is_ok());
        assert!(matches!(check_dimensions(2001, 100), Err(PreviewError::AspectRatio { .. })));
        assert!(matches!(check_dimensions(100, 2001), Err(PreviewError::AspectRatio { .. })));
        assert!(matches!(check_dimensions(0, 10), Err(PreviewError::TooManyPixels { .. })));
        assert!(matches!(check_dimensions(MAX_SIDE + 1, MAX_SIDE), Err(PreviewError::TooManyPixels { .. })));
    }

    #[test]
    fn transparency_becomes_white() {
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 0]));
        let rgb = flatten(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        let opaque = image::RgbaImage::from_pixel(1, 1, image::Rgba([10, 20, 30, 255]));
        assert_eq!(flatten(DynamicImage::ImageRgba8(opaque)).get_pixel(0, 0).0, [10, 20, 30]);
    }

    #[test]
    fn references_larger_than_the_model_needs_are_shrunk() {
        let encode = |w, h| {
            let mut png = Vec::new();
            let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3])));
            img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("encode png");
            png
        };
        assert!(shrink_reference(&encode(2048, 1000)).expect("small").is_none());
        let shrunk = shrink_reference(&encode(4096, 1024)).expect("shrinks").expect("large");
        assert_eq!((shrunk.width, shrunk.height), (2048, 512));
        assert!(matches!(shrink_reference(b"nope"), Err(PreviewError::NotAnImage)));
    }

    #[test]
    fn garbage_and_truncated_images_are_errors() {
        assert!(matches!(make(b"not an image"), Err(PreviewError::NotAnImage)));
        let mut png = Vec::new();
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])));
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("encode png");
        png.truncate(png.len() / 2);
        assert!(matches!(make(&png), Err(PreviewError::Decode(_))));
    }
}
