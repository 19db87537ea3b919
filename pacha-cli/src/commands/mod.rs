//! What each command does: parse, call the libraries, print.

mod adopt;
mod authorize;
mod docs;
mod doctor;
mod history;
mod init;
mod nodes;
mod provenance;
mod pull;
mod push;
mod render;
mod secret;
mod serve;
mod watch;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use pacha_core::Master;

use crate::cli::{Cli, Command, HistoryAction, SecretAction};
use crate::error::{NodesFailed, describe};
use crate::output::Output;
use crate::setup::Parts;

/// How a command that ran to the end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit 0.
    Success,
    /// Exit 2: `diff` or `push --dry-run` found changes, `status` found drift.
    Changes,
}

/// Everything a command needs from the command line and the process.
pub(crate) struct Context<'a> {
    pub cli: &'a Cli,
    pub cwd: PathBuf,
    /// Set by the first Ctrl-C: start no further node (a second Ctrl-C ends pacha at once).
    pub stop: Arc<AtomicBool>,
}

impl Context<'_> {
    /// The master this command works on.
    pub(crate) fn master(&self) -> anyhow::Result<Master> {
        let dir = Master::discover(self.cli.master.as_deref(), None, &self.cwd)?;
        crate::setup::open_master(&dir)
    }

    /// The master with its connector and history.
    pub(crate) fn parts(&self) -> anyhow::Result<Parts> {
        Parts::new(self.master()?)
    }

    /// [`Context::parts`] for a command that records (its records carry the master's git
    /// revision); `refuse_dirty` for one that `require_clean_master` refuses.
    pub(crate) fn recording_parts(&self, refuse_dirty: bool) -> anyhow::Result<Parts> {
        Parts::recording(self.master()?, refuse_dirty)
    }
}

pub(crate) fn main() -> ExitCode {
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
    let stop = Arc::new(AtomicBool::new(false));
    // The first Ctrl-C lets running nodes finish and be recorded; the second one ends pacha.
    // SIGTERM (systemd stopping a unit) does the same for the commands that look at the flag
    // (a watcher stops, a push starts no new node); any other command ends at once, as before.
    let mut signals = vec![(signal_hook::consts::SIGINT, 130)];
    if matches!(
        cli.command,
        Command::Watch { .. }
            | Command::Push { .. }
            | Command::Apply { .. }
            | Command::Diff { .. }
            | Command::Plan { .. }
    ) {
        signals.push((signal_hook::consts::SIGTERM, 143));
    }
    for (signal, status) in signals {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, status, stop.clone());
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    let context = Context { cli: &cli, cwd, stop };
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
            report(&err, &mut out);
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
            rev: Some(rev),
            show_secrets,
            ..
        } => history::diff_revisions(context, out, node, rev, *show_secrets),
        Command::Diff {
            node,
            state,
            limit,
            show_secrets,
            connection,
            rev: None,
        } => push::diff_command(
            context,
            out,
            node,
            state.as_deref(),
            limit.as_deref(),
            *show_secrets,
            connection,
        ),
        Command::Push {
            node,
            state,
            dry_run,
            force,
            rollout,
            connection,
        } => push::push_command(
            context,
            out,
            node,
            state.as_deref(),
            *dry_run,
            *force,
            rollout,
            connection,
        ),
        Command::Secret {
            action: SecretAction::Set { node, name },
        } => secret::set(context, out, node.as_deref(), name),
        Command::Secret {
            action: SecretAction::List,
        } => secret::list(context, out),
        Command::History {
            action: HistoryAction::Sync,
        } => history::sync_command(context, out),
        Command::Completions { shell } => docs::completions(out, *shell),
        Command::Doctor { node } => doctor::doctor(context, out, node.as_deref()),
        Command::Adopt { node, path, app, state } => adopt::adopt(context, out, node, path, app, state.as_deref()),
        Command::Man { out: dir } => docs::man(out, &context.cwd.join(dir)),
        Command::Plan {
            node,
            state,
            out: file,
            limit,
            show_secrets,
            connection,
        } => push::plan_command(
            context,
            out,
            node,
            state.as_deref(),
            file,
            limit.as_deref(),
            *show_secrets,
            connection,
        ),
        Command::Apply {
            file,
            dry_run,
            rollout,
            connection,
        } => push::apply_command(context, out, file, *dry_run, rollout, connection),
        Command::Disconnect { node } => push::disconnect(context, out, node.as_deref()),
        Command::Pull {
            node,
            state,
            from,
            force,
            remote_pacha,
            ssh_config,
            wait,
        } => pull::pull(
            context,
            out,
            node,
            state.as_deref(),
            from,
            *force,
            remote_pacha,
            ssh_config.as_deref(),
            *wait,
        ),
        Command::Watch {
            node,
            to,
            poll,
            state,
            remote_pacha,
            ssh_config,
        } => watch::watch(
            context,
            out,
            node,
            to,
            *poll,
            state.as_deref(),
            remote_pacha,
            ssh_config.as_deref(),
        ),
        Command::Authorize { node, pubkey, program } => authorize::authorize(context, out, node, pubkey, program),
        Command::Serve { node } => serve::serve(context, node.as_deref()),
        Command::Log { node, max_count, path } => history::log(context, out, node, *max_count, path.as_deref()),
        Command::Show {
            node,
            rev,
            path,
            show_secrets,
        } => {
            // `show NODE /etc/motd`: a path where the revision goes is the latest's file.
            let (rev, path) = match (rev.as_deref(), path.as_deref()) {
                (Some(first), None) if first.starts_with('/') => (None, Some(first)),
                (rev, path) => (rev, path),
            };
            history::show(context, out, node, rev, path, *show_secrets)
        }
        Command::Rollback { node, rev } => history::rollback_command(context, out, node, rev),
        Command::Rebuild { node, host, root } => {
            history::rebuild_command(context, out, node, host.as_deref(), root.as_deref())
        }
        Command::Capture {
            node,
            paths,
            propose: true,
            write,
        } => provenance::propose(context, out, node, paths, *write),
        Command::Capture { node, paths, .. } => history::capture_command(context, out, node, paths),
        Command::Blame { node, path, state } => provenance::blame(context, out, node, path, state.as_deref()),
        Command::Status { node, connection } => history::status_command(context, out, node.as_deref(), connection),
    }
}

/// Prints an error once: on stderr its message, causes its message does not already say, and
/// hints; under `--json` also `{"error": {"kind", "message", "hints"}}` on stdout (unless the
/// nodes' report already said it).
fn report(err: &anyhow::Error, out: &mut Output) {
    let shown = describe(err);
    if out.json && err.downcast_ref::<NodesFailed>().is_none() {
        let _ = out.json_document(&serde_json::json!({ "error": shown }));
        let _ = out.flush();
    }
    let mut message = format!("error: {}", shown.message);
    for hint in &shown.hints {
        message.push_str(&format!("\n  hint: {hint}"));
    }
    #[expect(clippy::print_stderr, reason = "the CLI's one place that prints errors")]
    {
        eprintln!("{message}");
    }
}

/// Replaces (or creates) a file of the master atomically: written beside it, fsynced, given the
/// old file's permissions, renamed over it. A killed pacha leaves the old file or the new one,
/// never half of one, and no temporary file once it returns.
pub(crate) fn write_atomically(path: &std::path::Path, content: &[u8]) -> io::Result<()> {
    use std::io::Write as _;

    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.pacha-{}", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut handle = std::fs::File::create(&temporary)?;
        handle.write_all(content)?;
        handle.sync_all()?;
        match std::fs::metadata(path) {
            Ok(old) => std::fs::set_permissions(&temporary, old.permissions())?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::write_atomically;

    #[test]
    fn a_file_is_replaced_whole_keeping_its_mode_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web1.conf");
        write_atomically(&file, b"apps: [motd]\n").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"apps: [motd]\n");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&file, b"apps: [motd, nginx]\n").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"apps: [motd, nginx]\n");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["web1.conf"]);
        // A folder that is not there: an error, and nothing made.
        let missing = dir.path().join("no/such/folder/file");
        assert!(write_atomically(&missing, b"x").is_err());
    }
}
