//! Gemini image generation: a thin REST client (`client`) over one or more connections
//! (`lanes`), the request body (`request`),
//! lenient answer types (`response`), their classification into one [`Outcome`]
//! (`classify`, `image`), the provider cost of a call (`cost`) and the global limits shared by
//! every worker process (`limits`, `gateway`).
//!
//! This module never touches the database, the ledger or the user's credits, never retries by
//! itself and never logs the API key or a prompt: it answers "what did Gemini say", and the
//! worker decides what to do about it.

pub mod answer;
mod classify;
mod client;
mod cost;
mod gateway;
mod image;
mod lanes;
mod limits;
mod outcome;
mod request;
mod response;

pub use answer::Gate;
pub use classify::classify;
pub use client::{Client, ClientError, ModelsError, ReadError};
pub use cost::provider_cost;
pub use gateway::Gateway;
pub use image::{sniff, ImageFormat, ImageInfo};
pub use limits::{LimitError, LimitSettings, Limits, Permit, MINUTE};
pub use outcome::{Class, Image, Outcome, Reply};
pub use request::{user_turn, Reference, Request};
pub use response::Usage;
