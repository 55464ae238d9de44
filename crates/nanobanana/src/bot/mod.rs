//! The conversation (DESIGN §2, L5): the inbox that claims, parses and dispatches each update
//! exactly once (`inbox`), the commands and screens, the generation request, conversation
//! state and albums. Handling writes to the database and the outbox inside the update's
//! transaction; it never sends to Telegram itself, except the answers Telegram requires inline
//! (callback and pre-checkout queries). It is the only module that imports `payments` and
//! `worker`'s neighbours from above; nothing below imports it.

mod error;
pub use error::BotError;

pub mod account;
pub mod admin;
pub mod album;
pub mod background;
pub mod balance;
pub mod broadcast;
pub mod budget;
#[cfg(test)]
mod buttons_sent;
pub mod buy;
pub mod cancel;
pub mod commands;
pub mod conversation;
pub mod edit;
pub mod examples;
pub mod fast;
pub mod growth;
pub mod history;
pub mod inbox;
pub mod menu;
pub mod presses;
pub mod request;
pub mod result;
mod senders;
pub mod settings;
pub mod stats;
pub mod styles;
pub mod updates;
pub mod variants;
pub mod welcome;
