//! Pure types and rules (DESIGN §2, L0): amounts and money, models and prices, settings, the
//! rules of a generation request and of refunds, and the protocols stored or sent as text —
//! conversation states (`Awaiting`) and generation status. No I/O lives here, and nothing
//! above is imported; everything that comes from outside is parsed into these types at the
//! boundary and stays valid after.

mod awaiting;
mod credits;
mod model;
mod money;
mod price;
pub mod refund;
pub mod request;
mod settings;
mod status;

pub use awaiting::{Awaiting, AwaitingKind};
pub use credits::{Credits, CreditsError};
pub use model::{model_name, ImageSize, Model, ModelError};
pub use money::{format_amount, Kopecks, MicroUsd, MoneyError};
pub use price::{below_cost, BelowCost, PerVariant, Prices, ProviderCosts};
pub use status::GenerationStatus;
pub use settings::{Delivery, Settings, ASPECT_RATIOS};

/// A Telegram user id as Telegram sends it (positive for users).
pub type TelegramId = i64;
