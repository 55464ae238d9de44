//! Pure types and rules (DESIGN §2, L0): amounts and money, the model catalog and prices, settings, the
//! rules of a generation request and of refunds, and the protocols stored or sent as text —
//! the buttons' callback data (`Button`), conversation states (`Awaiting`) and generation
//! status. No I/O lives here, and nothing above L0 is imported; everything that comes from
//! outside is parsed into these types at the boundary and stays valid after.

mod awaiting;
mod button;
pub mod catalog;
mod credits;
pub mod growth;
mod model;
mod money;
mod payment;
mod price;
pub mod refund;
pub mod request;
mod settings;
mod status;
pub mod styles;

pub use awaiting::{Awaiting, AwaitingKind};
pub use button::{Button, ResultAction};
pub use catalog::{default_catalog, Catalog, CatalogError, CatalogModel, Choice, ModelSpec, Names, Offer};
pub use credits::{Credits, CreditsError};
pub use model::{aspect_ratio, ImageSize, Model, ModelError, ALL_ASPECT_RATIOS, COMMON_ASPECT_RATIOS};
pub use money::{format_amount, Kopecks, MicroUsd, MoneyError};
pub use payment::{ChargeStatus, Provider};
pub use price::{below_cost, BelowCost};
pub use settings::{Delivery, SettingChange, Settings, VARIANTS};
pub use status::GenerationStatus;

/// A Telegram user id as Telegram sends it (positive for users).
pub type TelegramId = i64;
