//! The parts of loadgen other crates use: the end-to-end scenario driver, shared by
//! `loadgen scenario` (long) and the nanobanana crate's `cargo test` (short).

pub mod scenario;
