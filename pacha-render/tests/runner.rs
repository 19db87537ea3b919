//! Integration tests of pacha-render over the fixture masters (one test binary for the crate).
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first unexpected error")]

mod fuzz;
mod invalid;
mod plans;
mod provenance;
