//! Reads the format and pixel size of an image from its header bytes (PNG, JPEG, GIF, WebP),
//! the way Telegram decides whether an upload is a photo it can process. Never decodes pixels.

/// What the header of an image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Returns `None` when the bytes are not an image this function understands.
pub fn sniff(bytes: &[u8]) -> Option<ImageInfo> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return png(bytes);
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return jpeg(bytes);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let w = u16::from_le_bytes([*bytes.get(6)?, *bytes.get(7)?]);
        let h = u16::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?]);
        return Some(ImageInfo { mime: "image/gif", width: w.into(), height: h.into() });
    }
    if bytes.len() > 30 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return webp(bytes);
    }
    None
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn png(bytes: &[u8]) -> Option<ImageInfo> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    Some(ImageInfo { mime: "image/png", width: be32(bytes, 16)?, height: be32(bytes, 20)? })
}

fn jpeg(bytes: &[u8]) -> Option<ImageInfo> {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let is_sof = (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        if is_sof {
            let h = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
            let w = u16::from_be_bytes([*bytes.get(at + 7)?, *bytes.get(at + 8)?]);
            return Some(ImageInfo { mime: "image/jpeg", width: w.into(), height: h.into() });
        }
        at += 2 + len;
    }
    None
}

fn webp(bytes: &[u8]) -> Option<ImageInfo> {
    let le24 = |at: usize| -> Option<u32> {
        Some(
            u32::from(*bytes.get(at)?)
                | u32::from(*bytes.get(at + 1)?) << 8
                | u32::from(*bytes.get(at + 2)?) << 16,
        )
    };
    let (width, height) = match bytes.get(12..16)? {
        b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
        b"VP8 " => {
            let w = u16::from_le_bytes([*bytes.get(26)?, *bytes.get(27)?]) & 0x3FFF;
            let h = u16::from_le_bytes([*bytes.get(28)?, *bytes.get(29)?]) & 0x3FFF;
            (u32::from(w), u32::from(h))
        }
        b"VP8L" => {
            let b = u32::from_le_bytes(bytes.get(21..25)?.try_into().ok()?);
            ((b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1)
        }
        _ => return None,
    };
    Some(ImageInfo { mime: "image/webp", width, height })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_jpeg_header() {
        // SOI, then SOF0 with height 20 and width 30.
        let jpeg = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x14, 0x00, 0x1E, 0x03];
        let info = sniff(&jpeg).expect("jpeg header");
        assert_eq!((info.mime, info.width, info.height), ("image/jpeg", 30, 20));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(sniff(b"hello world"), None);
    }
}
