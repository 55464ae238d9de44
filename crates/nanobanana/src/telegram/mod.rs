//! The bot's Telegram side: the Bot API client, reading updates, handling them (commands,
//! prompts, buttons) and the words it says. Handling writes to the database and the outbox
//! only; it never calls Telegram itself, except answers Telegram requires inline.

pub mod account;
pub mod admin;
pub mod album;
pub mod client;
pub mod commands;
pub mod conversation;
pub mod handler;
pub mod history;
pub mod menu;
pub mod request;
pub mod result;
pub mod settings;
pub mod stats;
pub mod texts;
pub mod update;
