//! Recognizing the image bytes Gemini returns: PNG or JPEG, told by their magic bytes and a
//! header that parses (PNG `IHDR`, JPEG start-of-frame) with non-zero dimensions. Pure; it
//! never decodes pixels, so a corrupt body after a valid header still passes here and is
//! caught later by whatever renders the preview.

/// The two formats Gemini answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }
}

/// What the header says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The format and size of `bytes`, or `None` if they are not a PNG or JPEG with a sane header.
pub fn sniff(bytes: &[u8]) -> Option<ImageInfo> {
    if bytes.starts_with(&PNG_MAGIC) {
        png(bytes)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        jpeg(bytes)
    } else {
        None
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The first chunk must be a 13-byte `IHDR` with non-zero width and height, and a valid
/// bit depth / colour type pair.
fn png(bytes: &[u8]) -> Option<ImageInfo> {
    let length = be32(bytes, 8)?;
    if length != 13 || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let (width, height) = (be32(bytes, 16)?, be32(bytes, 20)?);
    let (depth, colour) = (*bytes.get(24)?, *bytes.get(25)?);
    let valid = match colour {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    };
    (valid && width > 0 && height > 0 && bytes.len() > 33).then_some(ImageInfo {
        format: ImageFormat::Png,
        width,
        height,
    })
}

/// Walks the marker segments up to the first start-of-frame (SOF0–SOF15 except DHT, JPG and
/// DAC) and reads its dimensions.
fn jpeg(bytes: &[u8]) -> Option<ImageInfo> {
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xff {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            0xff => at += 1, // fill byte
            0xd8 | 0x01 | 0xd0..=0xd7 => at += 2,
            0xd9 | 0xda => return None, // end of image or scan data before any frame header
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                let height = u32::from(be16(bytes, at + 5)?);
                let width = u32::from(be16(bytes, at + 7)?);
                return (width > 0 && height > 0).then_some(ImageInfo {
                    format: ImageFormat::Jpeg,
                    width,
                    height,
                });
            }
            _ => {
                let length = usize::from(be16(bytes, at + 2)?);
                if length < 2 {
                    return None;
                }
                at += 2 + length;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal PNG header: signature, IHDR (w×h, 8-bit RGBA), a fake CRC and an IEND.
    pub(crate) fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut out = PNG_MAGIC.to_vec();
        out.extend(13u32.to_be_bytes());
        out.extend(b"IHDR");
        out.extend(width.to_be_bytes());
        out.extend(height.to_be_bytes());
        out.extend([8, 6, 0, 0, 0]);
        out.extend([0, 0, 0, 0]);
        out.extend([0, 0, 0, 0]);
        out.extend(b"IEND");
        out
    }

    /// SOI, an APP0 segment, then SOF0 with the given size.
    pub(crate) fn jpeg_header(width: u16, height: u16) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        out.extend(b"JFIF\0");
        out.extend([1, 1, 0, 0, 1, 0, 1, 0, 0]);
        out.extend([0xff, 0xc0, 0x00, 0x11, 0x08]);
        out.extend(height.to_be_bytes());
        out.extend(width.to_be_bytes());
        out.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out
    }

    #[test]
    fn reads_png_and_jpeg_headers() {
        let png = sniff(&png_header(1376, 768)).expect("png");
        assert_eq!((png.format, png.width, png.height), (ImageFormat::Png, 1376, 768));
        let jpeg = sniff(&jpeg_header(1024, 2048)).expect("jpeg");
        assert_eq!((jpeg.format, jpeg.width, jpeg.height), (ImageFormat::Jpeg, 1024, 2048));
        assert_eq!(jpeg.format.mime(), "image/jpeg");
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"<html>not an image</html>"), None);
        assert_eq!(sniff(&PNG_MAGIC), None, "magic bytes alone");
        assert_eq!(sniff(&png_header(0, 10)), None, "zero width");
        let mut bad_depth = png_header(10, 10);
        bad_depth[24] = 3;
        assert_eq!(sniff(&bad_depth), None);
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xd9]), None, "JPEG without a frame");
        let truncated = jpeg_header(10, 10);
        assert_eq!(sniff(&truncated[..20]), None);
        assert_eq!(sniff(&jpeg_header(0, 10)), None);
    }
}
