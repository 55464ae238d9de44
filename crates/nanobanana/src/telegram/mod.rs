//! The Telegram Bot API adapter (DESIGN §2, L2): the HTTP client (`client`) and the types an
//! update is read into (`update`). It knows nothing of the bot's conversation, payments or
//! the outbox, and imports nothing above the configuration.

pub mod client;
pub mod update;
