//! What one Gemini call came to: one enum the worker matches on, grouped into the four things
//! the worker can do about it (`Class`). Owns no I/O and no policy beyond that grouping: how
//! often to retry and when to pause generation are the worker's decisions.

use std::time::Duration;

use super::image::ImageFormat;
use super::response::Usage;

/// A generated image whose header was checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The model's turn as Gemini returned it, thoughts dropped (its text and image parts with
    /// their `thoughtSignature`s): what an edit of this picture sends back as the model turn.
    pub turn: Option<serde_json::Value>,
}

impl Image {
    pub fn mime(&self) -> &'static str {
        self.format.mime()
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({} {}x{}, {} bytes)", self.mime(), self.width, self.height, self.bytes.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last non-thought image part, and it is a PNG or JPEG.
    Image(Image),
    /// 429 (per minute), 5xx, timeouts, dropped connections, a garbled 200: try again, after
    /// `after` when Gemini said how long.
    Retryable { after: Option<Duration>, reason: String },
    /// A 429 on a per-day quota: will not clear soon; pause generation for everyone.
    DailyQuota { reason: String },
    /// The key is invalid: pause generation for everyone.
    InvalidKey { reason: String },
    /// The prompt (`promptFeedback.blockReason`) or the image (`finishReason`) was blocked.
    Blocked { reason: String },
    /// 400/403 and other 4xx: this request will never succeed.
    Invalid { reason: String },
    /// 404 `NOT_FOUND` for the model: Gemini does not serve this model id (any more).
    ModelNotFound { reason: String },
    /// A 200 with text and no image: the model declined in words.
    TextRefusal { text: String },
    /// A 200 with no image and no text, e.g. `finishReason` NO_IMAGE or one not seen before.
    NoImage { finish_reason: Option<String> },
    /// An image part whose bytes are not a PNG or JPEG: never a success; worth a retry.
    BadImage { reason: String },
}

/// What the worker does with an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    /// Requeue with backoff (honouring `after`).
    Retry,
    /// Stop generation for everyone until a probe succeeds; the job itself is retried later.
    Pause,
    /// Settle failed and release.
    Permanent,
    /// The model is gone: mark it missing (hide it, release its queue, tell the admins) and
    /// fail this job like a permanent error.
    ModelGone,
}

impl Outcome {
    pub fn class(&self) -> Class {
        match self {
            Self::Image(_) => Class::Success,
            Self::Retryable { .. } | Self::BadImage { .. } => Class::Retry,
            Self::DailyQuota { .. } | Self::InvalidKey { .. } => Class::Pause,
            Self::ModelNotFound { .. } => Class::ModelGone,
            Self::Blocked { .. } | Self::Invalid { .. } | Self::TextRefusal { .. } | Self::NoImage { .. } => {
                Class::Permanent
            }
        }
    }

    /// A stable label for metrics and logs ("image", "retryable", …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Image(_) => "image",
            Self::Retryable { .. } => "retryable",
            Self::DailyQuota { .. } => "daily_quota",
            Self::InvalidKey { .. } => "invalid_key",
            Self::Blocked { .. } => "blocked",
            Self::Invalid { .. } => "invalid",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::TextRefusal { .. } => "text_refusal",
            Self::NoImage { .. } => "no_image",
            Self::BadImage { .. } => "bad_image",
        }
    }

    /// The delay Gemini asked for, to share with every process (`Limits::slow_down`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { after, .. } => *after,
            _ => None,
        }
    }
}

/// One call's outcome plus what is recorded for every call, success or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    /// `usageMetadata` when the answer had one.
    pub usage: Option<Usage>,
    /// From sending the request to the whole answer read.
    pub latency: Duration,
    /// HTTP status, `None` when no answer came (timeout, dropped connection).
    pub status: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_group_outcomes() {
        let retry = Outcome::Retryable { after: Some(Duration::from_secs(3)), reason: "429".into() };
        assert_eq!((retry.class(), retry.retry_after()), (Class::Retry, Some(Duration::from_secs(3))));
        assert_eq!(Outcome::DailyQuota { reason: String::new() }.class(), Class::Pause);
        assert_eq!(Outcome::InvalidKey { reason: String::new() }.class(), Class::Pause);
        assert_eq!(Outcome::NoImage { finish_reason: None }.class(), Class::Permanent);
        assert_eq!(Outcome::BadImage { reason: String::new() }.kind(), "bad_image");
        assert_eq!(Outcome::Blocked { reason: "SAFETY".into() }.retry_after(), None);
    }
}
