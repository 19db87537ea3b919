//! `pacha`: configuration management over SSH, versioned in git.

mod cli;
mod commands;
mod error;
mod output;
mod setup;
mod ui;

fn main() -> std::process::ExitCode {
    pacha_vcs::keep_freed_memory();
    commands::main()
}
