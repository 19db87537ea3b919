//! `pacha`: configuration management over SSH, versioned in git.

mod cli;
mod commands;
mod output;

fn main() -> std::process::ExitCode {
    commands::main()
}
