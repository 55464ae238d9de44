//! Fake Telegram Bot API, Gemini and YooKassa HTTP servers.
//!
//! Each fake is a real HTTP server (axum) that answers in the shapes and with the errors of the
//! real service (see `shared/reference/external-apis.md`), plus a control API under `/_fake/…`
//! that tests, benchmarks and the sandbox use to act as users, inject faults and read what the
//! service under test did. This crate never talks to the real services.

pub mod cli;
pub mod common;
pub mod gemini;
pub mod telegram;
pub mod yookassa;

pub use common::wait::WaitTimeout;
pub use gemini::{FakeGemini, GeminiConfig};
pub use telegram::{FakeTelegram, TelegramConfig};
pub use yookassa::{FakeYooKassa, YooKassaConfig};
