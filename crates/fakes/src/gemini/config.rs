//! Settings of a fake Gemini.

use std::net::SocketAddr;
use std::time::Duration;

/// Which image format answers use. Gemini's mime type varies, so the default mixes both
/// (chosen per request from its hash: the same request always gets the same format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    Png,
    Jpeg,
    #[default]
    Mixed,
}

#[derive(Debug, Clone)]
pub struct GeminiConfig {
    pub listen: SocketAddr,
    /// The only key accepted in `x-goog-api-key` (or `?key=`).
    pub api_key: String,
    /// Images with a 64 px long side, for benchmarks.
    pub small: bool,
    /// PNG, JPEG or both; a `[[png]]` or `[[jpeg]]` marker in the prompt decides for one call.
    pub image_format: ImageFormat,
    /// Added to every generation.
    pub latency: Duration,
    /// How long a `hang` keeps the request open (until shutdown at most).
    pub hang: Duration,
    /// Speak only HTTP/1.1 (by default the port also speaks HTTP/2 with prior knowledge).
    pub http1_only: bool,
    /// HTTP/2 calls one connection may carry at once; Google's servers allow 100.
    pub max_streams: u32,
}

/// Google's `SETTINGS_MAX_CONCURRENT_STREAMS` for the Gemini API.
pub const GOOGLE_MAX_STREAMS: u32 = 100;

impl Default for GeminiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: "fake-gemini-key".into(),
            small: false,
            image_format: ImageFormat::Mixed,
            latency: Duration::ZERO,
            hang: Duration::from_secs(600),
            http1_only: false,
            max_streams: GOOGLE_MAX_STREAMS,
        }
    }
}
