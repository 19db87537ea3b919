//! `pacha completions SHELL` and `pacha man --out DIR`: the shell completions and man pages,
//! both made from the command line's own definition, so they never drift from it.

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Status;
use crate::cli::Cli;
use crate::output::Output;

pub(super) fn completions(out: &mut Output, shell: clap_complete::Shell) -> anyhow::Result<Status> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "pacha", &mut script);
    out.raw(script)?;
    Ok(Status::Success)
}

/// Writes `pacha.1` and one page per command (`pacha-push.1`, `pacha-secret-set.1`, …).
pub(super) fn man(out: &mut Output, dir: &Path) -> anyhow::Result<Status> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut command = Cli::command();
    command.build();
    let mut written = Vec::new();
    page(dir, "pacha", &command, &mut written)?;
    if out.json {
        out.json_document(&serde_json::json!({"written": written}))?;
    } else {
        for file in &written {
            out.line(format!("wrote {file}"))?;
        }
    }
    Ok(Status::Success)
}

fn page(dir: &Path, name: &str, command: &clap::Command, written: &mut Vec<String>) -> anyhow::Result<()> {
    let command = command
        .clone()
        .name(name.to_owned())
        .display_name(name.replace('-', " "));
    let mut text = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut text)
        .with_context(|| format!("rendering the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    written.push(path.display().to_string());
    for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
        page(dir, &format!("{name}-{}", sub.get_name()), sub, written)?;
    }
    Ok(())
}
