//! The bot's Telegram side: the Bot API client, reading updates, handling them (commands,
//! prompts, buttons) and the words it says. Handling writes to the database and the outbox
//! only; it never calls Telegram itself, except answers Telegram requires inline.

pub mod album;
pub mod client;
pub mod commands;
pub mod handler;
pub mod request;
pub mod settings;
pub mod texts;
pub mod update;
