//! Behaviours other than a plain success, chosen by a marker in the prompt (`[[429]]`,
//! `[[503]]`, `[[blocked:SAFETY]]`, …) or queued through the control API. One syntax for both:
//!
//! `429[:secs]`, `429day`, `500`, `503`, `504`, `blocked[:REASON]`, `image_safety`, `no_image`,
//! `finish:REASON`, `text_only`, `garbage`, `drop`, `hang`, `latency:MS`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Behaviour {
    RateLimited {
        retry_secs: u64,
    },
    DailyQuota,
    Server(u16),
    Blocked(String),
    Finish(String),
    TextOnly,
    /// 200 with an image part whose bytes are not a picture (a truncated answer).
    Garbage,
    Drop,
    Hang,
    Latency(u64),
}

impl Behaviour {
    pub fn parse(marker: &str) -> Option<Self> {
        let marker = marker.trim();
        let (name, arg) = marker.split_once(':').map_or((marker, None), |(n, a)| (n, Some(a.trim())));
        Some(match name.to_ascii_lowercase().as_str() {
            "429" => Self::RateLimited { retry_secs: arg.and_then(|a| a.parse().ok()).unwrap_or(26) },
            "429day" | "quota_day" => Self::DailyQuota,
            "500" => Self::Server(500),
            "503" => Self::Server(503),
            "504" => Self::Server(504),
            "blocked" => Self::Blocked(arg.unwrap_or("PROHIBITED_CONTENT").to_ascii_uppercase()),
            "image_safety" => Self::Finish("IMAGE_SAFETY".into()),
            "no_image" => Self::Finish("NO_IMAGE".into()),
            "finish" => Self::Finish(arg?.to_ascii_uppercase()),
            "text_only" | "refusal" => Self::TextOnly,
            "garbage" | "not_a_picture" => Self::Garbage,
            "drop" => Self::Drop,
            "hang" => Self::Hang,
            "latency" => Self::Latency(arg?.parse().ok()?),
            _ => return None,
        })
    }

    /// The marker text for this behaviour (what [`Behaviour::parse`] reads).
    pub fn marker(&self) -> String {
        match self {
            Self::RateLimited { retry_secs } => format!("429:{retry_secs}"),
            Self::DailyQuota => "429day".into(),
            Self::Server(code) => code.to_string(),
            Self::Blocked(reason) => format!("blocked:{reason}"),
            Self::Finish(reason) => format!("finish:{reason}"),
            Self::TextOnly => "text_only".into(),
            Self::Garbage => "garbage".into(),
            Self::Drop => "drop".into(),
            Self::Hang => "hang".into(),
            Self::Latency(ms) => format!("latency:{ms}"),
        }
    }
}

/// Every `[[marker]]` in a prompt that names a behaviour.
pub fn from_prompt(prompt: &str) -> Vec<Behaviour> {
    let mut found = Vec::new();
    let mut rest = prompt;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        if let Some(behaviour) = Behaviour::parse(&after[..end]) {
            found.push(behaviour);
        }
        rest = &after[end + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_prompts() {
        let found = from_prompt("a cat [[429:10]] and [[latency:50]] [[nonsense]] [[blocked]]");
        assert_eq!(
            found,
            vec![
                Behaviour::RateLimited { retry_secs: 10 },
                Behaviour::Latency(50),
                Behaviour::Blocked("PROHIBITED_CONTENT".into()),
            ]
        );
        assert_eq!(Behaviour::parse("finish:recitation"), Some(Behaviour::Finish("RECITATION".into())));
        for b in found {
            assert_eq!(Behaviour::parse(&b.marker()), Some(b));
        }
    }
}
