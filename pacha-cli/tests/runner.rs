//! End-to-end tests of the `pacha` binary (one test binary for the crate).
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first unexpected error")]

mod common;
mod embed;
mod foundation;
mod history;
mod interrupt;
mod output;
mod provenance;
mod pull;
mod push;
mod team;
mod watch;
