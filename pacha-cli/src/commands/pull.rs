//! `pacha pull`: run on a node itself. The plan comes from the master (`pacha serve` there
//! over ssh, or a master folder on this machine), is applied here under the node's root, and
//! the master records it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pacha_core::{EngineError, LinkError, MasterLink, PushOptions, Quiet, SshSettings};
use pacha_transport::{LocalConnector, LocalLink, MasterAddress, SshLink};

use super::{Context, Status};
use crate::error::{NodesFailed, Usage};
use crate::output::Output;
use crate::setup::{Parts, holder};
use crate::ui::report::{Diffs, print_report};
use crate::ui::views::ReportView;

/// Where the master is, as `--from` or `--to` gives it.
pub(super) enum MasterAt {
    /// `[USER@]HOST:/DIR`: `pacha serve` there over ssh.
    Remote(MasterAddress),
    /// A folder on this machine.
    Local(PathBuf),
}

impl MasterAt {
    /// Reads `text`: a folder when it has no `HOST:` in front (it starts with `/` or `.`, or
    /// has no `:` before its first `/`).
    pub(super) fn parse(flag: &str, text: &str, cwd: &Path) -> anyhow::Result<MasterAt> {
        let looks_local = text.starts_with('/') || text.starts_with('.') || !text.contains(':');
        if looks_local {
            return Ok(MasterAt::Local(cwd.join(text)));
        }
        match MasterAddress::parse(text) {
            Some(address) if !address.destination.contains('/') => Ok(MasterAt::Remote(address)),
            _ => Err(Usage(format!(
                "{flag} {text:?}: write [USER@]HOST:/MASTER/DIR, or a master folder here"
            ))
            .into()),
        }
    }
}

/// Whether `err` is a master that never answered (so trying again repeats nothing).
fn unreached(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<LinkError>(), Some(LinkError::Connect { .. }))
            || matches!(
                cause.downcast_ref::<EngineError>(),
                Some(EngineError::Link(LinkError::Connect { .. }))
            )
    })
}

/// Runs `work` over a link to the master `at`.
pub(super) fn with_link<R>(
    at: &MasterAt,
    remote_pacha: &str,
    ssh_config: Option<&Path>,
    only: &str,
    work: impl FnOnce(&mut dyn MasterLink) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    match at {
        MasterAt::Remote(address) => {
            let ssh = SshSettings {
                config_file: ssh_config.map(Path::to_path_buf),
                ..SshSettings::default()
            };
            let mut link = SshLink::open(address, &ssh, remote_pacha)?.with_host(crate::setup::host_name());
            work(&mut link)
        }
        MasterAt::Local(dir) => {
            let master = crate::setup::open_master(dir)?;
            let parts = Parts::serving(master)?;
            parts.with_engine(|engine| {
                let mut link = LocalLink::new(engine.serve(Some(only)), dir.display().to_string())
                    .with_host(crate::setup::host_name());
                work(&mut link)
            })
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "one per flag of the command")]
pub(super) fn pull(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: Option<&str>,
    from: &str,
    force: bool,
    remote_pacha: &str,
    ssh_config: Option<&Path>,
    wait: Option<u64>,
) -> anyhow::Result<Status> {
    let at = MasterAt::parse("--from", from, &context.cwd)?;
    let options = PushOptions {
        force,
        holder: holder("pull"),
        ..PushOptions::default()
    };
    let deadline = wait.map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let mut delay = Duration::from_secs(1);
    let pulled = loop {
        let attempt = with_link(&at, remote_pacha, ssh_config, node, |link| {
            Ok(pacha_core::pull(
                link,
                node,
                state,
                &LocalConnector::default(),
                &options,
                &Quiet,
            )?)
        });
        match attempt {
            // Only a master never reached is tried again: nothing was done yet.
            Err(err)
                if unreached(&err)
                    && deadline.is_some_and(|deadline| Instant::now() + delay < deadline)
                    && !context.stop.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                #[expect(clippy::print_stderr, reason = "progress of a retry, never on stdout")]
                {
                    eprintln!("{err:#}; trying again in {} s", delay.as_secs());
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => break other?,
        }
    };
    if out.json {
        out.json_document(&ReportView::new(&pulled.plan, &pulled.report, Diffs::None))?;
    } else {
        print_report(out, &pulled.plan, &pulled.report, Diffs::None)?;
    }
    if let Some(error) = &pulled.report.error {
        return Err(NodesFailed(format!(
            "pull of {node} failed: {}",
            pulled.plan.redact(&error.to_string())
        ))
        .into());
    }
    Ok(Status::Success)
}
