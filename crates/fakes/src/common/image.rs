//! Deterministic picture generation: turns a 32-byte seed into a PNG or JPEG whose colours and
//! layout depend on every byte of the seed, so different prompts give visibly different
//! pictures and the same seed always gives the same bytes. Owns encoding; never decodes.

use sha2::{Digest, Sha256};

/// A seed for [`render_png`], usually a hash of what the picture stands for.
pub type Seed = [u8; 32];

/// Hashes any number of byte strings (length-prefixed, so boundaries matter) into a seed.
pub fn seed_of(parts: &[&[u8]]) -> Seed {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Renders a `width`×`height` RGB PNG: a diagonal gradient between two seed colours with a
/// 4×4 grid of seed-coloured tiles in the centre and seed-dependent stripes.
pub fn render_png(width: u32, height: u32, seed: &Seed) -> Vec<u8> {
    let width = width.max(1);
    let height = height.max(1);
    let pixels = render_pixels(width, height, seed);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    // Writing into a Vec cannot fail for a correctly sized buffer; an error here is a bug.
    let written = encoder.write_header().and_then(|mut writer| writer.write_image_data(&pixels));
    if let Err(error) = written {
        tracing::error!(%error, "encoding a generated PNG failed");
    }
    out
}

/// Renders a baseline JPEG (quality 85) of the same picture as [`render_png`].
pub fn render_jpeg(width: u32, height: u32, seed: &Seed) -> Vec<u8> {
    let (width, height) = (width.clamp(1, u32::from(u16::MAX)), height.clamp(1, u32::from(u16::MAX)));
    let pixels = render_pixels(width, height, seed);
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 85);
    if let Err(error) = encoder.encode(&pixels, width as u16, height as u16, jpeg_encoder::ColorType::Rgb) {
        tracing::error!(%error, "encoding a generated JPEG failed");
    }
    out
}

fn colour(seed: &Seed, index: usize) -> [u8; 3] {
    [seed[index % 32], seed[(index + 1) % 32], seed[(index + 2) % 32]]
}

/// Pictures larger than this many pixels (2K and 4K) are one solid seed colour: cheap to make
/// even in a debug build, and still the exact size asked.
const DETAILED_PIXELS: u64 = 1_300_000;

fn render_pixels(width: u32, height: u32, seed: &Seed) -> Vec<u8> {
    if u64::from(width) * u64::from(height) > DETAILED_PIXELS {
        return colour(seed, 0).repeat((width as usize) * (height as usize));
    }
    let (from, to) = (colour(seed, 0), colour(seed, 3));
    let stripe_period = 8 + u32::from(seed[6] % 24);
    let stripe_colour = colour(seed, 7);
    let (w, h) = (u64::from(width), u64::from(height));
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let t = ((u64::from(x) * h + u64::from(y) * w) * 255 / (2 * w * h).max(1)) as u16;
            let mut rgb = [0u8; 3];
            for c in 0..3 {
                rgb[c] = ((u16::from(from[c]) * (255 - t) + u16::from(to[c]) * t) / 255) as u8;
            }
            if let Some(tile) = tile_colour(x, y, width, height, seed) {
                rgb = tile;
            } else if (x + y) % stripe_period < stripe_period / 4 {
                rgb = stripe_colour;
            }
            pixels.extend_from_slice(&rgb);
        }
    }
    pixels
}

/// The centre half of the picture is a 4×4 grid; each tile takes its colour from the seed.
fn tile_colour(x: u32, y: u32, width: u32, height: u32, seed: &Seed) -> Option<[u8; 3]> {
    let (x0, y0) = (width / 4, height / 4);
    if x < x0 || y < y0 || x >= x0 + width / 2 || y >= y0 + height / 2 {
        return None;
    }
    let col = ((x - x0) * 4 / (width / 2).max(1)).min(3) as usize;
    let row = ((y - y0) * 4 / (height / 2).max(1)).min(3) as usize;
    Some(colour(seed, 10 + row * 4 + col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::image_info::sniff;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = render_png(40, 30, &seed_of(&[b"a cat"]));
        let b = render_png(40, 30, &seed_of(&[b"a cat"]));
        let c = render_png(40, 30, &seed_of(&[b"a dog"]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let info = sniff(&a).expect("a generated PNG is recognised");
        assert_eq!((info.mime, info.width, info.height), ("image/png", 40, 30));
    }

    #[test]
    fn jpegs_decode_to_the_requested_size() {
        let jpeg = render_jpeg(48, 20, &seed_of(&[b"a cat"]));
        let info = sniff(&jpeg).expect("a generated JPEG is recognised");
        assert_eq!((info.mime, info.width, info.height), ("image/jpeg", 48, 20));
        let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
        let pixels = decoder.decode().expect("a valid JPEG");
        assert_eq!(pixels.len(), 48 * 20 * 3);
    }
}
