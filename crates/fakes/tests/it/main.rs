//! Integration tests of the fakes over real HTTP, each fake started on port 0.

mod control_apis;
mod gemini;
mod support;
mod telegram_basics;
mod telegram_media;
mod telegram_users;
mod telegram_webhook;
mod yookassa_api;
mod yookassa_faults;
mod yookassa_notify;
