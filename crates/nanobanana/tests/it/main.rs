//! The nanobanana crate's integration tests: one binary, real Postgres, a fresh database
//! per test; the harness is `support` (`TestDb`, `TestApp`, `Shop`).

mod admin_cli;
mod audit;
mod bonus;
mod bot;
mod bot_commands;
mod broadcast;
#[cfg(feature = "sandbox")]
mod browser;
mod buy;
mod catalog;
mod chatter;
mod crash;
mod delivery;
mod deploy;
mod editing;
mod gemini;
mod gemini_budget;
mod gemini_http;
mod growth;
mod intake;
mod jobs;
mod ledger;
mod model;
mod panel;
mod panel_overview;
mod panel_pages;
mod payments;
mod progress;
mod reconcilers;
mod refunds;
#[cfg(feature = "sandbox")]
mod sandbox;
mod scenario;
mod shutdown;
mod storage;
mod styles;
mod support;
mod unknown_outcomes;
mod variants;
mod worker;
