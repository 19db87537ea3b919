//! End-to-end tests of the `pacha` binary (one test binary for the crate).

mod common;
mod embed;
mod foundation;
mod interrupt;
mod push;
