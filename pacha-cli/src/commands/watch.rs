//! `pacha watch`: the daemon on a host. One [`pacha_core::Watcher`] poll every `--interval`
//! seconds; the list of watched files is asked for again every minute (a push may add some).

use std::path::Path;
use std::time::{Duration, Instant};

use pacha_core::Watcher;
use pacha_transport::LocalConnector;

use super::pull::{MasterAt, with_link};
use super::{Context, Status};
use crate::error::Usage;
use crate::output::Output;

/// How often the watcher asks the master again for the list of files.
const REFRESH: Duration = Duration::from_secs(60);

pub(super) fn watch(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    to: &str,
    interval: f64,
    remote_pacha: &str,
    ssh_config: Option<&Path>,
) -> anyhow::Result<Status> {
    if !(interval.is_finite() && interval > 0.0) {
        return Err(Usage("--interval must be a positive number of seconds".to_owned()).into());
    }
    let at = MasterAt::parse("--to", to, &context.cwd)?;
    let connector = LocalConnector::default();
    with_link(&at, remote_pacha, ssh_config, node, |link| {
        let mut watcher = Watcher::start(link, node, &connector)?;
        out.line(format!(
            "watching {} files of {node} under {} (every {interval} s)",
            watcher.watched(),
            watcher.root()
        ))?;
        out.flush()?;
        let mut refreshed = Instant::now();
        loop {
            if refreshed.elapsed() > REFRESH {
                watcher.refresh()?;
                refreshed = Instant::now();
            }
            if let Some(entry) = watcher.poll()? {
                out.line(format!("{} {}", &entry.revision[..12], entry.summary))?;
                out.flush()?;
            }
            std::thread::sleep(Duration::from_secs_f64(interval));
        }
    })
}
