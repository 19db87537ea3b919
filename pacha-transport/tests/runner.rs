//! Integration tests of pacha-transport: real `sh`, a real `sshd` on 127.0.0.1.

mod local;
mod ssh;
mod support;
