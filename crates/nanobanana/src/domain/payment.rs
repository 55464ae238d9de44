//! Who takes the money and what they said of a charge: the payment providers and a charge's
//! status as the provider reported it, with their stored names.

/// A payment provider, and the currency it charges in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    YooKassa,
    Stars,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::YooKassa => "yookassa",
            Self::Stars => "stars",
        }
    }

    pub fn currency(self) -> &'static str {
        match self {
            Self::YooKassa => "RUB",
            Self::Stars => "XTR",
        }
    }
}

/// The status of a charge as the provider reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Pending,
    WaitingForCapture,
    Succeeded,
    Canceled,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::WaitingForCapture => "waiting_for_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}
