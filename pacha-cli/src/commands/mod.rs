//! What each command does: parse, call the libraries, print.

mod history;
mod init;
mod nodes;
mod pull;
mod push;
mod render;
mod watch;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pacha_core::Master;

use crate::cli::{Cli, Command};
use crate::output::Output;

/// How a command that ran to the end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Success,
    /// Exit 2: `diff` or `push --dry-run` found changes, `status` found drift.
    Changes,
}

/// Everything a command needs from the command line and the process.
pub struct Context<'a> {
    pub cli: &'a Cli,
    pub cwd: PathBuf,
}

impl Context<'_> {
    /// The master this command works on.
    pub fn master(&self) -> anyhow::Result<Master> {
        let dir = Master::discover(self.cli.master.as_deref(), None, &self.cwd)?;
        Ok(Master::open(&dir)?)
    }

    /// How many threads rendering may use.
    pub fn threads(&self) -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with success; usage errors exit 1, since 2 means
            // "changes found" for pacha.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let mut out = Output::new(cli.json, cli.color, no_color);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let context = Context { cli: &cli, cwd };
    let result = run(&context, &mut out).and_then(|status| {
        out.flush()?;
        Ok(status)
    });
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Changes) => ExitCode::from(2),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            report(&err);
            ExitCode::from(1)
        }
    }
}

fn run(context: &Context<'_>, out: &mut Output) -> anyhow::Result<Status> {
    match &context.cli.command {
        Command::Init { dir } => init::run(context, out, dir.as_deref()),
        Command::Nodes => nodes::list(context, out),
        Command::Expand { node } => nodes::expand(context, out, node),
        Command::Render { node, state, out: dir } => render::run(context, out, node, state, dir.as_deref()),
        Command::Diff {
            node,
            state,
            connection,
        } => push::diff_command(context, out, node, state, connection),
        Command::Push {
            node,
            state,
            dry_run,
            force,
            connection,
        } => push::push_command(context, out, node, state, *dry_run, *force, connection),
        Command::Disconnect { node } => push::disconnect(context, out, node.as_deref()),
        Command::Pull {
            node,
            state,
            from,
            force,
            remote_pacha,
            ssh_config,
        } => pull::pull(out, node, state, from, *force, remote_pacha, ssh_config.as_deref()),
        Command::Bundle { node, state } => pull::bundle(context, out, node, state),
        Command::Watch {
            node,
            to,
            interval,
            remote_pacha,
            ssh_config,
        } => watch::watch(out, node, to, *interval, remote_pacha, ssh_config.as_deref()),
        Command::WatchList { node } => watch::watch_list(context, out, node),
        Command::RecordChanges { node } => watch::record_changes_command(context, out, node),
        Command::Record { node } => pull::record(context, out, node),
        Command::Log { node } => history::log(context, out, node),
        Command::Show { node, rev, path } => history::show(context, out, node, rev.as_deref(), path.as_deref()),
        Command::Rollback { node, rev } => history::rollback_command(context, out, node, rev),
        Command::Rebuild { node, host, root } => {
            history::rebuild_command(context, out, node, host.as_deref(), root.as_deref())
        }
        Command::Capture { node, paths } => history::capture_command(context, out, node, paths),
        Command::Status { node, connection } => history::status_command(context, out, node.as_deref(), connection),
    }
}

/// Prints an error once: its message, then any cause its message does not already say.
fn report(err: &anyhow::Error) {
    let mut message = format!("error: {err}");
    let mut last = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !last.contains(&text) {
            message.push_str(&format!("\n  caused by: {text}"));
        }
        last = text;
    }
    #[expect(clippy::print_stderr, reason = "the CLI's one place that prints errors")]
    {
        eprintln!("{message}");
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
