//! The models the fake serves — the default catalog's Google ids (DESIGN §10) — and their image
//! rules: which sizes each renders (upper-case K; a one-size model refuses `imageSize`), which
//! aspect ratios it takes, and the pixel dimensions Gemini produces for each combination (about
//! the same area per size whatever the ratio).

/// A model id the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub id: &'static str,
    pub display_name: &'static str,
    /// Thinks (interim thought images, a signature on the image).
    pub pro: bool,
    pub max_references: usize,
    /// Sizes it renders; a model with one size takes no `imageSize`.
    pub sizes: &'static [&'static str],
    /// How many of `RATIOS` (in order) it takes: 10, or all 14.
    pub ratios: usize,
}

pub const MODELS: [Model; 3] = [
    Model {
        id: "gemini-3-pro-image",
        display_name: "Nano Banana Pro",
        pro: true,
        max_references: 14,
        sizes: &SIZES,
        ratios: 10,
    },
    Model {
        id: "gemini-nano-banana-2.1",
        display_name: "Nano Banana 2.1",
        pro: true,
        max_references: 14,
        sizes: &SIZES,
        ratios: 14,
    },
    Model {
        id: "gemini-3.1-flash-lite-image",
        display_name: "Nano Banana 2 Lite",
        pro: false,
        max_references: 3,
        sizes: &["1K"],
        ratios: 10,
    },
];

pub fn find(id: &str) -> Option<Model> {
    MODELS.iter().copied().find(|m| m.id == id)
}

/// Aspect ratios and their 1K dimensions (the last four only on Nano Banana 2.1).
const RATIOS: [(&str, u32, u32); 14] = [
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
    ("1:4", 512, 2048),
    ("4:1", 2048, 512),
    ("1:8", 384, 3072),
    ("8:1", 3072, 384),
];

pub const SIZES: [&str; 3] = ["1K", "2K", "4K"];

impl Model {
    pub fn takes_ratio(&self, ratio: &str) -> bool {
        RATIOS[..self.ratios.min(RATIOS.len())].iter().any(|(r, _, _)| *r == ratio)
    }

    /// The ratios it takes, for error messages.
    pub fn ratio_list(&self) -> String {
        RATIOS[..self.ratios.min(RATIOS.len())].iter().map(|(r, _, _)| *r).collect::<Vec<_>>().join(", ")
    }

    pub fn takes_size(&self) -> bool {
        self.sizes.len() > 1
    }
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
        assert_eq!(dimensions("8:1", "1K", false), (3072, 384));
        assert_eq!(dimensions("16:9", "1K", true), (64, 35));
        let pro = find("gemini-3-pro-image").expect("pro");
        let nb21 = find("gemini-nano-banana-2.1").expect("2.1");
        assert!(pro.takes_ratio("21:9") && !pro.takes_ratio("1:8") && nb21.takes_ratio("1:8"));
        assert!(!nb21.takes_ratio("7:5"));
        assert!(!find("gemini-3.1-flash-lite-image").expect("lite").takes_size());
    }
}
