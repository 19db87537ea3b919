//! `pacha watch`: the daemon on a host. The node's files are followed through inotify (or
//! looked at every `--poll` seconds); each change is written to the spool in the host's state
//! folder and sent to the master, which records it as a capture. A master that goes away or
//! cannot be reached is waited for (1 s, doubling up to 60 s) while changes keep being spooled;
//! once it answers, each spooled change is recorded as its own capture, in order, with the
//! time it was seen. The watch list is asked for again after every push or pull the host sees
//! end (the node's lock folder going away) and every minute. SIGTERM or Ctrl-C stops it
//! cleanly, the spool kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use pacha_core::{EngineError, LinkError, NodePath, WatchSession, Watcher};
use pacha_transport::LocalConnector;

use super::pull::{MasterAt, with_link};
use super::{Context, Status};
use crate::error::Usage;
use crate::output::Output;

/// How often the watcher asks the master again for the list of files, and looks at them
/// all even without an event (a missed event is caught then).
const REFRESH: Duration = Duration::from_secs(60);
/// An editor's burst of events is one change: a look waits until events pause this long…
const QUIET: Duration = Duration::from_millis(50);
/// …or have come for this long.
const BURST: Duration = Duration::from_millis(300);
/// How often a wait checks whether the daemon was asked to stop.
const TICK: Duration = Duration::from_millis(250);
/// The first wait before reaching the master again, and the longest.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

#[expect(clippy::too_many_arguments, reason = "one per flag of the command")]
pub(super) fn watch(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    to: &str,
    poll: Option<f64>,
    state: Option<&Path>,
    remote_pacha: &str,
    ssh_config: Option<&Path>,
) -> anyhow::Result<Status> {
    let poll = match poll {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => Some(Duration::from_secs_f64(seconds)),
        Some(_) => return Err(Usage("--poll must be a positive number of seconds".to_owned()).into()),
        None => None,
    };
    pacha_core::check_name(pacha_core::NameKind::Node, node).map_err(|err| Usage(err.to_string()))?;
    let at = MasterAt::parse("--to", to, &context.cwd)?;
    let folder = match state {
        Some(dir) => context.cwd.join(dir),
        None => default_state()?,
    }
    .join("watch")
    .join(node);
    let connector = LocalConnector::default();
    let watcher = Watcher::open(node, &connector, &folder)?;
    let (sender, events) = channel();
    let inotify = match poll {
        Some(_) => None,
        None => match notify::recommended_watcher(sender) {
            Ok(inotify) => Some(inotify),
            Err(err) => {
                note(&format!("no file events ({err}): looking every 2 s instead"));
                None
            }
        },
    };
    let poll = if inotify.is_none() {
        Some(poll.unwrap_or(Duration::from_secs(2)))
    } else {
        None
    };
    let mut daemon = Daemon {
        watcher,
        inotify,
        events,
        followed: BTreeMap::new(),
        poll,
        folder,
        stop: &|| context.stop.load(Ordering::SeqCst),
        node: node.to_owned(),
        announced: false,
        seen: None,
    };
    let mut delay = FIRST_RETRY;
    // What changed while no watcher ran is seen now, before the master is reached.
    daemon.look_offline();
    loop {
        let mut started = false;
        let session = with_link(&at, remote_pacha, ssh_config, node, |link| {
            let mut session = WatchSession::open(link)?;
            started = true;
            daemon.online(&mut session, out)
        });
        match session {
            Ok(()) => return Ok(Status::Success),
            // The master went away or cannot be reached yet: the daemon keeps looking and
            // comes back.
            Err(err) if transient(&err) && !daemon.stopped() => {
                if started {
                    delay = FIRST_RETRY;
                }
                let pending = daemon.watcher.pending().unwrap_or(0);
                note(&format!(
                    "{err:#}; {pending} change{} kept, trying again in {} s",
                    if pending == 1 { "" } else { "s" },
                    delay.as_secs()
                ));
                daemon.offline(delay);
                delay = (delay * 2).min(LAST_RETRY);
            }
            Err(_) if daemon.stopped() => return Ok(Status::Success),
            Err(err) => return Err(err),
        }
    }
}

/// The host's state folder: `$STATE_DIRECTORY` (a systemd unit's `StateDirectory=`), else
/// `$XDG_STATE_HOME/pacha`, else `~/.local/state/pacha`.
fn default_state() -> anyhow::Result<PathBuf> {
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY")
        && let Some(first) = std::env::split_paths(&dirs).next()
        && first.is_absolute()
    {
        return Ok(first);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state")));
    match base {
        Some(base) => Ok(base.join("pacha")),
        None => Err(Usage("no state folder: give --state DIR (or set HOME)".to_owned()).into()),
    }
}

/// What woke a wait.
enum Wake {
    /// Files changed; `ended` when a push or pull on the node ended among them.
    Changed { ended: bool },
    /// The time was up.
    Timeout,
    /// The daemon was asked to stop.
    Stopped,
}

struct Daemon<'a, 'c> {
    watcher: Watcher<'c>,
    inotify: Option<RecommendedWatcher>,
    events: Receiver<notify::Result<notify::Event>>,
    /// The folders inotify follows, with whether their subfolders count.
    followed: BTreeMap<PathBuf, bool>,
    /// Looks every so often instead of on events.
    poll: Option<Duration>,
    /// The watcher's own state folder, whose events are not the node's.
    folder: PathBuf,
    stop: &'a dyn Fn() -> bool,
    node: String,
    announced: bool,
    /// When the first event of the change about to be looked at came.
    seen: Option<SystemTime>,
}

impl Daemon<'_, '_> {
    fn stopped(&self) -> bool {
        (self.stop)()
    }

    /// With the master: sends what is spooled, then follows the files until asked to stop.
    fn online(&mut self, session: &mut WatchSession<'_>, out: &mut Output) -> anyhow::Result<()> {
        self.watcher.refresh(session)?;
        if !self.announced {
            let how = match self.poll {
                Some(every) => format!("every {} s", every.as_secs_f64()),
                None => "on file events".to_owned(),
            };
            out.line(format!(
                "watching {} files of {} under {} ({how})",
                self.watcher.watched(),
                self.node,
                self.watcher.root()
            ))?;
            out.flush()?;
            self.announced = true;
        }
        let mut refreshed = Instant::now();
        loop {
            // Following first: what appears in a new folder during the look is an event then.
            self.follow();
            self.look()?;
            for entry in self.watcher.send(session)? {
                out.line(format!("{} {}", &entry.revision[..12], entry.summary))?;
                out.flush()?;
            }
            let until = refreshed + REFRESH;
            match self.next_look(until) {
                Wake::Stopped => return Ok(()),
                Wake::Changed { ended: true } => {}
                Wake::Changed { ended: false } | Wake::Timeout if Instant::now() < until => continue,
                _ => {}
            }
            // A push or pull may have placed new files: the list and what to follow again.
            self.watcher.refresh(session)?;
            refreshed = Instant::now();
        }
    }

    /// Without the master, for `length`: changes go to the spool.
    fn offline(&mut self, length: Duration) {
        let until = Instant::now() + length;
        loop {
            match self.next_look(until) {
                Wake::Stopped => return,
                Wake::Timeout if Instant::now() >= until => return,
                Wake::Changed { .. } | Wake::Timeout => self.look_offline(),
            }
        }
    }

    /// A look that cannot end the daemon: what went wrong is said.
    fn look_offline(&mut self) {
        if !self.watcher.ready() {
            return;
        }
        self.follow();
        if let Err(err) = self.look() {
            note(&format!("{err:#}"));
        }
    }

    /// One look, dated by the first event of the change when there was one.
    fn look(&mut self) -> Result<bool, EngineError> {
        self.watcher.look_at(self.seen.take().unwrap_or_else(SystemTime::now))
    }

    /// Waits for the next reason to look: file events, the `--poll` period, or `until`.
    fn next_look(&mut self, until: Instant) -> Wake {
        match self.poll {
            Some(every) => self.wait((Instant::now() + every).min(until)),
            None => self.wait(until),
        }
    }

    /// Points inotify at the folders the watcher needs now.
    fn follow(&mut self) {
        let Some(inotify) = &mut self.inotify else { return };
        let mut wanted: BTreeMap<PathBuf, bool> = self.watcher.folders().into_iter().collect();
        // The node's own state folder, where a push or pull holds its lock.
        wanted.entry(node_state(self.watcher.root())).or_insert(false);
        wanted.retain(|folder, _| folder.is_dir());
        for (folder, recursive) in &self.followed {
            if wanted.get(folder) != Some(recursive) {
                let _ = inotify.unwatch(folder);
            }
        }
        self.followed
            .retain(|folder, recursive| wanted.get(folder) == Some(recursive));
        for (folder, recursive) in wanted {
            if self.followed.contains_key(&folder) {
                continue;
            }
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match inotify.watch(&folder, mode) {
                Ok(()) => {
                    self.followed.insert(folder, recursive);
                }
                Err(err) => note(&format!("not following {}: {err}", folder.display())),
            }
        }
    }

    /// Waits until files change (a burst of events counting as one change), `until`, or a
    /// stop.
    fn wait(&mut self, until: Instant) -> Wake {
        let lock = Path::new(&node_state(self.watcher.root())).join("lock");
        let mut first: Option<Instant> = None;
        let mut ended = false;
        loop {
            if self.stopped() {
                return Wake::Stopped;
            }
            let now = Instant::now();
            let timeout = match first {
                Some(first) if now >= first + BURST => return Wake::Changed { ended },
                Some(_) => QUIET,
                None if now >= until => return Wake::Timeout,
                None => (until - now).min(TICK),
            };
            match self.events.recv_timeout(timeout) {
                Ok(Ok(event)) => {
                    if matches!(event.kind, EventKind::Access(_))
                        || event.paths.iter().all(|path| path.starts_with(&self.folder))
                    {
                        continue;
                    }
                    ended |= event.paths.iter().any(|path| path == &lock) && matches!(event.kind, EventKind::Remove(_));
                    first.get_or_insert(now);
                    self.seen.get_or_insert_with(SystemTime::now);
                }
                // An overflowed queue: something changed.
                Ok(Err(_)) => {
                    first.get_or_insert(now);
                }
                Err(RecvTimeoutError::Timeout) if first.is_some() => return Wake::Changed { ended },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(timeout);
                    if first.is_some() {
                        return Wake::Changed { ended };
                    }
                }
            }
        }
    }
}

/// The node's state folder under `root`, where a push or pull holds its lock.
fn node_state(root: &str) -> PathBuf {
    let path = NodePath::parse("/var/lib/pacha").map_or_else(|_| root.to_owned(), |path| path.under_root(root));
    PathBuf::from(path)
}

#[expect(clippy::print_stderr, reason = "a daemon's note, never on stdout")]
fn note(text: &str) {
    eprintln!("{text}");
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
