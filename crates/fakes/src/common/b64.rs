//! Base64 helpers for control API bodies that carry bytes (`"data_base64": "…"`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text.trim())
}

/// `#[serde(with = "crate::common::b64::option")]` for `Option<Vec<u8>>` fields.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_some(&super::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|t| super::decode(&t).map_err(serde::de::Error::custom)).transpose()
    }
}
