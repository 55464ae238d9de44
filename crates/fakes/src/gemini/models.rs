//! The models the fake knows and their image rules: aspect ratios, sizes (Pro only, upper-case
//! K) and the pixel dimensions Gemini produces for each combination.

/// A model id the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub id: &'static str,
    pub display_name: &'static str,
    pub pro: bool,
    pub max_references: usize,
}

pub const MODELS: [Model; 2] = [
    Model { id: "gemini-3-pro-image", display_name: "Nano Banana Pro", pro: true, max_references: 14 },
    Model { id: "gemini-3.1-flash-image", display_name: "Nano Banana 2", pro: false, max_references: 14 },
];

pub fn find(id: &str) -> Option<Model> {
    MODELS.iter().copied().find(|m| m.id == id)
}

/// Aspect ratios and their 1K dimensions.
const RATIOS: [(&str, u32, u32); 10] = [
    ("1:1", 1024, 1024),
    ("2:3", 848, 1264),
    ("3:2", 1264, 848),
    ("3:4", 896, 1200),
    ("4:3", 1200, 896),
    ("4:5", 928, 1152),
    ("5:4", 1152, 928),
    ("9:16", 768, 1376),
    ("16:9", 1376, 768),
    ("21:9", 1584, 672),
];

pub const SIZES: [&str; 3] = ["1K", "2K", "4K"];

pub fn is_aspect_ratio(ratio: &str) -> bool {
    RATIOS.iter().any(|(r, _, _)| *r == ratio)
}

/// Pixel size of an image; `small` scales the long side down to 64 px for benchmarks.
pub fn dimensions(ratio: &str, size: &str, small: bool) -> (u32, u32) {
    let (_, w, h) = RATIOS.iter().copied().find(|(r, _, _)| *r == ratio).unwrap_or(RATIOS[0]);
    let factor = match size {
        "2K" => 2,
        "4K" => 4,
        _ => 1,
    };
    let (w, h) = (w * factor, h * factor);
    if !small {
        return (w, h);
    }
    let long = w.max(h);
    ((w * 64 / long).max(1), (h * 64 / long).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_ratio_and_size() {
        assert_eq!(dimensions("16:9", "1K", false), (1376, 768));
        assert_eq!(dimensions("16:9", "2K", false), (2752, 1536));
        assert_eq!(dimensions("1:1", "4K", false), (4096, 4096));
        assert_eq!(dimensions("16:9", "1K", true), (64, 35));
        assert!(!is_aspect_ratio("7:5"));
    }
}
