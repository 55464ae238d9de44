//! Nano Banana Pro: a Telegram bot that sells Gemini image generation for credits.
//! The binary (`main.rs`) only parses the command line; everything lives here.

pub mod audit;
pub mod bot;
pub mod broadcast;
pub mod budget;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod gemini;
pub mod http;
pub mod jobs;
pub mod layers;
pub mod ledger;
pub mod metrics;
pub mod outbox;
pub mod panel;
pub mod payments;
pub mod redis;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod signals;
pub mod storage;
pub mod telegram;
pub mod telemetry;
pub mod texts;
pub mod worker;
pub mod yookassa;
