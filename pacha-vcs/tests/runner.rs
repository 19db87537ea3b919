//! Integration tests of pacha-vcs: a real git repository, read back with plain git too.
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first unexpected error")]

mod history;
mod remote;
