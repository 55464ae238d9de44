//! The status of a generation (DESIGN §3 `generations.status`): `queued → processing →
//! succeeded | failed`, and `processing → queued` on a retryable error. Stored as text; read and
//! written as this type (`sqlx::Type`), never as a bare string.

/// Where a generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenerationStatus {
    Queued,
    Processing,
    Succeeded,
    Failed,
}

impl GenerationStatus {
    pub const ALL: [GenerationStatus; 4] =
        [GenerationStatus::Queued, GenerationStatus::Processing, GenerationStatus::Succeeded, GenerationStatus::Failed];

    /// As stored in the database (and as the `status_*` texts are named).
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationStatus::Queued => "queued",
            GenerationStatus::Processing => "processing",
            GenerationStatus::Succeeded => "succeeded",
            GenerationStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Succeeded or failed: settled, never to change again.
    pub fn is_final(self) -> bool {
        matches!(self, GenerationStatus::Succeeded | GenerationStatus::Failed)
    }
}

impl std::fmt::Display for GenerationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Stored as TEXT (checked by the table's CHECK): encoded and decoded as the text it is, so
// no type has to be looked up by name on a connection.
impl sqlx::Type<sqlx::Postgres> for GenerationStatus {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for GenerationStatus {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
    }
}

impl sqlx::Decode<'_, sqlx::Postgres> for GenerationStatus {
    fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Self::parse(text).ok_or_else(|| format!("unknown generation status {text:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_only_settled_ones_are_final() {
        for status in GenerationStatus::ALL {
            assert_eq!(GenerationStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        let finals: Vec<_> = GenerationStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [GenerationStatus::Succeeded, GenerationStatus::Failed]);
        assert_eq!(GenerationStatus::parse("done"), None);
        assert_eq!(GenerationStatus::parse("Queued"), None);
    }
}
