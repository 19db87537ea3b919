//! Integration tests of pacha-transport: real `sh`, a real `sshd` on 127.0.0.1.
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first unexpected error")]

mod local;
mod ssh;
mod support;
