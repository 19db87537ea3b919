//! `pacha watch`: the daemon on a host. One [`pacha_core::Watcher`] poll every `--interval`
//! seconds; the list of watched files is asked for again every minute (a push may add some).
//! A master that goes away or cannot be reached is waited for (1 s, doubling up to 60 s);
//! SIGTERM or Ctrl-C stops it cleanly.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pacha_core::{EngineError, LinkError, Watcher};
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
    let stopped = || context.stop.load(Ordering::SeqCst);
    let mut delay = FIRST_RETRY;
    loop {
        let mut started = false;
        let session = with_link(&at, remote_pacha, ssh_config, node, |link| {
            let mut watcher = Watcher::start(link, node, &connector)?;
            started = true;
            out.line(format!(
                "watching {} files of {node} under {} (every {interval} s)",
                watcher.watched(),
                watcher.root()
            ))?;
            out.flush()?;
            let mut refreshed = Instant::now();
            while !stopped() {
                if refreshed.elapsed() > REFRESH {
                    watcher.refresh()?;
                    refreshed = Instant::now();
                }
                if let Some(entry) = watcher.poll()? {
                    out.line(format!("{} {}", &entry.revision[..12], entry.summary))?;
                    out.flush()?;
                }
                pause(Duration::from_secs_f64(interval), &stopped);
            }
            Ok(())
        });
        match session {
            Ok(()) => return Ok(Status::Success),
            // The master went away or cannot be reached yet: the daemon waits and comes back.
            Err(err) if transient(&err) && !stopped() => {
                if started {
                    delay = FIRST_RETRY;
                }
                #[expect(clippy::print_stderr, reason = "a daemon's note, never on stdout")]
                {
                    eprintln!("{err:#}; trying again in {} s", delay.as_secs());
                }
                pause(delay, &stopped);
                delay = (delay * 2).min(LAST_RETRY);
            }
            Err(_) if stopped() => return Ok(Status::Success),
            Err(err) => return Err(err),
        }
    }
}

/// The first wait before reaching the master again, and the longest.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Sleeps `length`, waking early when the daemon is asked to stop (SIGTERM, Ctrl-C).
fn pause(length: Duration, stopped: &dyn Fn() -> bool) {
    let until = Instant::now() + length;
    while !stopped() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Whether `err` is the master going away or not answering (worth waiting for).
fn transient(err: &anyhow::Error) -> bool {
    let link = |err: &LinkError| {
        matches!(
            err,
            LinkError::Connect { .. } | LinkError::Disconnected { .. } | LinkError::Io { .. }
        )
    };
    err.chain().any(|cause| {
        cause.downcast_ref::<LinkError>().is_some_and(link)
            || matches!(cause.downcast_ref::<EngineError>(), Some(EngineError::Link(err)) if link(err))
    })
}
