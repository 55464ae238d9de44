//! The test harness, one for every integration test: `TestDb` (a fresh database) for the
//! database tests; `TestApp` (database, fakes, `serve`, workers, YooKassa) for the end-to-end
//! ones, ending with `finish`; `Shop` for purchases; one way to wait (`wait::until`).

pub mod app;
pub mod db;
pub mod end;
pub mod panel;
pub mod process;
pub mod shop;
pub mod wait;

pub use app::{fast, profile, texts, TestApp, TestAppBuilder, SECRET};
pub use db::{credits_of, server_url, TestDb};
pub use end::Leave;
pub use shop::Shop;
pub use wait::WAIT;
