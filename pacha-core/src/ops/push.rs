//! Push: bring nodes to their plans. Render first (the engine does), then per node over one
//! connection: read every planned path in one round trip, compute what changed, and only
//! then run pre scripts, place the changed files and run post scripts. Each node's result is
//! handed to the [`Books`] (the engine records it) as soon as the node is done.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use crate::edges::connection::{
    Applied, Apply, Connection, Connector, Inspect, Inspection, LiveFile, Placement, ScriptRun, Step, TransportError,
};
use crate::edges::history::HistoryError;
use crate::edges::report::{Change, ChangeKind, NodeError, NodeReport, Outcome, Reporter, Skip};
use crate::model::path::NodePath;
use crate::model::plan::{Plan, PlannedDir, PlannedFile, PlannedScript, Seen, Stage};
use crate::model::snapshot::{Entry, RecordedDir, RecordedFile, RecordedLink, Snapshot};
use crate::ops::journal::{self, Journal, Managed};

/// How to push (and roll back, rebuild, pull: they place files the same way).
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Report what would change; write nothing, run no script.
    pub dry_run: bool,
    /// Place every file and run every script even when nothing changed.
    pub force: bool,
    /// Nodes worked on at once.
    pub jobs: usize,
    /// Read the live contents of changed files (for diffs).
    pub read_contents: bool,
    /// Who holds the node's lock, shown to a second pacha that finds it busy.
    pub holder: String,
    /// Set (by a Ctrl-C handler, say) to start no further node: nodes running finish and are
    /// recorded, nodes not started are reported `skipped`.
    pub stop: Option<Arc<AtomicBool>>,
    /// Work in batches of this many nodes, in order; a batch starts only when no node of the
    /// batches before it failed.
    pub serial: Option<usize>,
    /// Start no node once this many have failed.
    pub max_fail: Option<usize>,
}

impl PushOptions {
    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop.load(Ordering::SeqCst))
    }
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            dry_run: false,
            force: false,
            jobs: 1,
            read_contents: false,
            holder: "pacha".to_owned(),
            stop: None,
            serial: None,
            max_fail: None,
        }
    }
}

/// What `live` is at `path`, as a saved plan keeps it.
pub(crate) fn seen(path: &NodePath, live: &LiveFile) -> Seen {
    let name = |name: &str, id: u32| {
        if name.is_empty() || name == "UNKNOWN" {
            id.to_string()
        } else {
            name.to_owned()
        }
    };
    let mut seen = Seen {
        path: path.clone(),
        kind: String::new(),
        sha256: None,
        owner: None,
        group: None,
        mode: None,
        target: None,
    };
    seen.kind = match live {
        LiveFile::Missing => "missing",
        LiveFile::File(stat) => {
            seen.sha256 = Some(stat.sha256.to_string());
            seen.owner = Some(name(&stat.owner, stat.uid));
            seen.group = Some(name(&stat.group, stat.gid));
            seen.mode = Some(stat.mode.to_string());
            "file"
        }
        LiveFile::Symlink(target) => {
            seen.target = Some(target.clone());
            "link"
        }
        LiveFile::Directory(stat) => {
            seen.owner = Some(name(&stat.owner, stat.uid));
            seen.group = Some(name(&stat.group, stat.gid));
            seen.mode = Some(stat.mode.to_string());
            "dir"
        }
        LiveFile::Other => "other",
        LiveFile::Unreadable => "unreadable",
    }
    .to_owned();
    seen
}

/// What pushing `plan` would change given the node's `live` files (in plan order).
pub(crate) fn changes(plan: &Plan, live: &[LiveFile]) -> Vec<Change> {
    plan.files
        .iter()
        .zip(live)
        .filter_map(|(file, live)| change(file, live))
        .collect()
}

fn change(file: &PlannedFile, live: &LiveFile) -> Option<Change> {
    let mut change = Change {
        destination: file.destination.clone(),
        kind: ChangeKind::Create,
        mode: None,
        owner: None,
        group: None,
        before: None,
    };
    match live {
        LiveFile::Missing | LiveFile::Other | LiveFile::Directory(_) => {}
        LiveFile::Symlink(_) => change.kind = ChangeKind::ReplaceSymlink,
        LiveFile::Unreadable => change.kind = ChangeKind::Update,
        LiveFile::File(stat) => {
            let content = stat.sha256 != file.sha256;
            if stat.mode != file.mode {
                change.mode = Some((stat.mode, file.mode));
            }
            if let Some(owner) = &file.owner
                && !stat.owner_is(owner)
            {
                change.owner = Some((stat.owner.clone(), owner.clone()));
            }
            if let Some(group) = &file.group
                && !stat.group_is(group)
            {
                change.group = Some((stat.group.clone(), group.clone()));
            }
            let attributes = change.mode.is_some() || change.owner.is_some() || change.group.is_some();
            change.kind = match (content, attributes) {
                (true, _) => ChangeKind::Update,
                (false, true) => ChangeKind::Attributes,
                (false, false) => return None,
            };
        }
    }
    Some(change)
}

/// Runs `work` over `items` on up to `jobs` threads; results come back in item order.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = work(index, item);
                    results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect()
}

/// A connection opened in the first phase of a push, taken by the node's worker.
type ConnectionSlot = Mutex<Option<Result<Box<dyn Connection>, TransportError>>>;

/// What a push asks of the history around each node. Every method has a default that knows
/// no history (nothing to remove but `absent` paths, nothing recorded).
pub(crate) trait Books: Sync {
    /// Whether there is a history to compare the node's journal with.
    fn keeps_history(&self) -> bool {
        false
    }

    /// The node's latest recorded snapshot, read before the node is touched: what pacha
    /// placed earlier, so that what the plan no longer has is removed.
    fn prior(&self, _plan: &Plan) -> Result<Option<Snapshot>, HistoryError> {
        Ok(None)
    }

    /// The node's latest recorded snapshot again, once its lock is held: another pacha may
    /// have pushed and recorded it while this one waited for the lock.
    fn prior_under_lock(&self, plan: &Plan) -> Result<Option<Snapshot>, HistoryError> {
        self.prior(plan)
    }

    /// Records `found`, what the node holds where its journal says pacha placed files, when it
    /// differs from `previous`: a placement the history missed. The entry and the snapshot
    /// recorded, when something was.
    fn recover(
        &self,
        _plan: &Plan,
        _previous: Option<&Snapshot>,
        _found: Found,
    ) -> Result<Option<(Entry, Snapshot)>, HistoryError> {
        Ok(None)
    }

    /// Records the node's push, once the node is done and before it is reported, so a node is
    /// recorded as soon as its apply returns.
    fn record(&self, _plan: &Plan, _previous: Option<&Snapshot>, _report: &mut NodeReport) {}
}

/// What a node holds where its journal says pacha placed files, and who placed them in which
/// state, as the journal says.
pub(crate) struct Found {
    pub(crate) snapshot: Snapshot,
    pub(crate) by: String,
    pub(crate) state: String,
}

/// No history at all.
#[cfg(any(test, feature = "testing"))]
pub(crate) struct NoBooks;

#[cfg(any(test, feature = "testing"))]
impl Books for NoBooks {}

/// Pushes every plan to its node; returns one report per plan, in plan order.
///
/// Connections are opened first, all of them; if any node's host key is unknown or changed,
/// nothing is placed anywhere and every such node is reported at once. Then each node is
/// inspected and brought to its plan, up to `options.jobs` at a time; one node's failure does
/// not stop the others.
pub(crate) fn push_plans(
    plans: &[Plan],
    connector: &dyn Connector,
    options: &PushOptions,
    reporter: &dyn Reporter,
    books: &dyn Books,
) -> Vec<NodeReport> {
    let started = Instant::now();
    let connections: Vec<ConnectionSlot> = in_parallel(plans, options.jobs, |_, plan| {
        if options.stopped() {
            return Mutex::new(None);
        }
        reporter.step(&plan.node, "connect");
        Mutex::new(Some(connector.connect(&plan.node, &plan.target)))
    });
    let connect_time = started.elapsed();
    let host_key_failures: Vec<String> = plans
        .iter()
        .zip(&connections)
        .filter(|(_, connection)| {
            matches!(&*connection.lock().unwrap_or_else(PoisonError::into_inner), Some(Err(err)) if err.is_host_key())
        })
        .map(|(plan, _)| plan.node.clone())
        .collect();

    let failures = AtomicUsize::new(0);
    let batch = options.serial.unwrap_or(plans.len()).max(1);
    let mut reports = Vec::with_capacity(plans.len());
    let mut batch_failed = false;
    for (number, chunk) in plans.chunks(batch).enumerate() {
        let offset = number * batch;
        let done = in_parallel(chunk, options.jobs, |at, plan| {
            let index = offset + at;
            let skip = if options.stopped()
                || connections[index]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_none()
            {
                Some(Skip::Interrupted)
            } else if batch_failed {
                Some(Skip::BatchFailed)
            } else if options
                .max_fail
                .is_some_and(|most| failures.load(Ordering::SeqCst) >= most)
            {
                Some(Skip::MaxFail)
            } else {
                None
            };
            let report = push_one(
                index,
                plan,
                skip,
                &connections,
                &host_key_failures,
                connect_time,
                started,
                options,
                reporter,
                books,
            );
            if matches!(report.outcome, Outcome::Failed | Outcome::RolledBack) {
                failures.fetch_add(1, Ordering::SeqCst);
            }
            report
        });
        batch_failed |= options.serial.is_some()
            && done
                .iter()
                .any(|report| matches!(report.outcome, Outcome::Failed | Outcome::RolledBack));
        reports.extend(done);
    }
    reports
}

/// One node's part of a push: skipped (its connection closed) or run and recorded.
#[expect(clippy::too_many_arguments, reason = "the shared state of one push")]
fn push_one(
    index: usize,
    plan: &Plan,
    skip: Option<Skip>,
    connections: &[ConnectionSlot],
    host_key_failures: &[String],
    connect_time: std::time::Duration,
    started: Instant,
    options: &PushOptions,
    reporter: &dyn Reporter,
    books: &dyn Books,
) -> NodeReport {
    let connection = connections[index].lock().unwrap_or_else(PoisonError::into_inner).take();
    let mut report = NodeReport::new(plan);
    report.timings.connect = connect_time;
    if let Some(skip) = skip {
        if let Some(Ok(connection)) = connection {
            let _ = connection.close();
        }
        report.outcome = Outcome::Skipped;
        report.skipped = Some(skip);
        report.timings.total = started.elapsed();
        reporter.finished(index, &report);
        return report;
    }
    let mut previous = match books.prior(plan) {
        Ok(previous) => previous,
        Err(err) => {
            if let Some(Ok(connection)) = connection {
                let _ = connection.close();
            }
            report.fail(NodeError::History(err.into()));
            report.timings.total = started.elapsed();
            reporter.finished(index, &report);
            return report;
        }
    };
    let ran = match connection {
        Some(Ok(connection)) if host_key_failures.is_empty() => {
            run_node(plan, &mut previous, connection, options, books, reporter, &mut report);
            true
        }
        Some(Ok(connection)) => {
            let _ = connection.close();
            report.fail(NodeError::HostKeyElsewhere {
                nodes: host_key_failures.to_vec(),
            });
            false
        }
        Some(Err(err)) => {
            report.fail(err.into());
            false
        }
        None => false,
    };
    if !options.dry_run && !ran {
        reporter.step(&plan.node, "record");
        books.record(plan, previous.as_ref(), &mut report);
    }
    report.timings.total = started.elapsed();
    reporter.finished(index, &report);
    report
}

fn run_node(
    plan: &Plan,
    previous: &mut Option<Snapshot>,
    mut connection: Box<dyn Connection>,
    options: &PushOptions,
    books: &dyn Books,
    reporter: &dyn Reporter,
    report: &mut NodeReport,
) {
    let result = node_steps(plan, previous, connection.as_mut(), options, books, reporter, report);
    if let Err(err) = result
        && report.error.is_none()
    {
        report.fail(err.into());
    }
    // Recorded before the connection (and with it the node's lock) is let go: a second pacha
    // waiting for the node finds this push in the history, so records of one node are in the
    // order their pushes were.
    if !options.dry_run {
        reporter.step(&plan.node, "record");
        books.record(plan, previous.as_ref(), report);
    }
    if let Err(err) = connection.close()
        && report.error.is_none()
    {
        report.fail(err.into());
    }
}

/// One node: inspect (the plan's paths and what may have to go), compare, then (unless it is
/// a dry run or nothing changed) apply.
fn node_steps(
    plan: &Plan,
    previous: &mut Option<Snapshot>,
    connection: &mut dyn Connection,
    options: &PushOptions,
    books: &dyn Books,
    reporter: &dyn Reporter,
    report: &mut NodeReport,
) -> Result<(), TransportError> {
    reporter.step(&plan.node, "inspect");
    let clock = Instant::now();
    let lock = (!options.dry_run).then_some(options.holder.as_str());
    let mut inspection = inspect_plan(plan, &removal_candidates(plan, previous.as_ref()), connection, lock)?;
    // Under the node's lock: when the node's journal says someone placed files since the
    // snapshot read before, what another pacha recorded meanwhile counts (it records before
    // it lets the lock go).
    let journal = inspection.journal.as_deref().and_then(journal::decode);
    if lock.is_some()
        && books.keeps_history()
        && journal
            .as_ref()
            .is_some_and(|journal| journal.files != journal::of_snapshot(previous.as_ref()))
    {
        match books.prior_under_lock(plan) {
            Ok(fresh) if fresh != *previous => {
                *previous = fresh;
                inspection = inspect_plan(plan, &removal_candidates(plan, previous.as_ref()), connection, None)?;
            }
            Ok(_) => {}
            Err(err) => {
                report.fail(NodeError::History(err.into()));
                return Ok(());
            }
        }
    }
    // Under the node's lock: a placement the history missed is recorded before anything else.
    if lock.is_some()
        && books.keeps_history()
        && let Some(journal) = journal
        && journal.files != journal::of_snapshot(previous.as_ref())
    {
        let found = Found {
            snapshot: found_snapshot(connection, &journal, previous.as_ref())?,
            by: journal.by.clone(),
            state: journal.state.clone(),
        };
        match books.recover(plan, previous.as_ref(), found) {
            Ok(Some((entry, recovered))) => {
                report.recovered = Some(entry);
                *previous = Some(recovered);
                inspection = inspect_plan(plan, &removal_candidates(plan, previous.as_ref()), connection, None)?;
            }
            Ok(None) => {}
            Err(err) => {
                report.fail(NodeError::History(err.into()));
                return Ok(());
            }
        }
    }
    let previous = previous.as_ref();
    let candidates = removal_candidates(plan, previous);
    report.timings.inspect = clock.elapsed();
    let (planned, rest) = inspection.files.split_at(plan.files.len());
    let (live_links, rest) = rest.split_at(plan.links.len());
    let (live_dirs, leaving) = rest.split_at(plan.dirs.len());
    let paths = plan
        .files
        .iter()
        .map(|file| &file.destination)
        .chain(plan.links.iter().map(|link| &link.path))
        .chain(plan.dirs.iter().map(|dir| &dir.path))
        .chain(candidates.iter().map(|(path, _)| path));
    report.seen = paths
        .zip(&inspection.files)
        .map(|(path, live)| seen(path, live))
        .collect();
    if let Some(expect) = &plan.expect {
        let moved: Vec<NodePath> = expect
            .seen
            .iter()
            .filter(|then| !report.seen.contains(then))
            .map(|then| then.path.clone())
            .collect();
        if !moved.is_empty() {
            report.outcome = Outcome::Refused;
            report.error = Some(NodeError::Moved { paths: moved });
            return Ok(());
        }
    }
    let blocked = plan
        .files
        .iter()
        .zip(planned)
        .find(|(_, live)| matches!(live, LiveFile::Other | LiveFile::Directory(_)))
        .map(|(file, _)| &file.destination)
        .or_else(|| {
            plan.links
                .iter()
                .zip(live_links)
                .find(|(_, live)| matches!(live, LiveFile::Other | LiveFile::Directory(_)))
                .map(|(link, _)| &link.path)
        })
        .or_else(|| {
            plan.dirs
                .iter()
                .zip(live_dirs)
                .find(|(_, live)| !matches!(live, LiveFile::Missing | LiveFile::Directory(_)))
                .map(|(dir, _)| &dir.path)
        });
    if let Some(path) = blocked {
        report.fail(NodeError::NotAFile { path: path.clone() });
        return Ok(());
    }
    report.changes = changes(plan, planned);
    let links = link_changes(plan, live_links);
    let dirs = dir_changes(plan, live_dirs);
    report.changes.extend(links.iter().map(|(path, _)| Change {
        destination: path.clone(),
        kind: ChangeKind::Link,
        mode: None,
        owner: None,
        group: None,
        before: None,
    }));
    report.changes.extend(dirs.iter().map(|(dir, change)| Change {
        destination: dir.path.clone(),
        kind: ChangeKind::Directory,
        ..change.clone()
    }));
    let dirs: Vec<PlannedDir> = dirs.into_iter().map(|(dir, _)| dir.clone()).collect();
    let removal = removals(&candidates, leaving, options.force);
    report
        .changes
        .extend(removal.files.iter().chain(&removal.dirs).map(|path| Change {
            destination: path.clone(),
            kind: ChangeKind::Remove,
            mode: None,
            owner: None,
            group: None,
            before: None,
        }));
    report.kept = removal.kept.clone();
    report.pending_post = inspection.pending_post;
    report.live = planned.to_vec();

    if options.read_contents {
        read_before(plan, connection, &report.live, &mut report.changes)?;
    }
    if options.dry_run {
        let due = !report.changes.is_empty() || report.pending_post.is_some() || options.force;
        report.outcome = if due { Outcome::WouldChange } else { Outcome::Unchanged };
        return Ok(());
    }
    let placements = placements(plan, &report.changes, options.force);
    let removing = !removal.files.is_empty() || !removal.dirs.is_empty() || !links.is_empty() || !dirs.is_empty();
    if placements.is_empty() && !removing && report.pending_post.is_none() && !options.force {
        report.outcome = Outcome::Unchanged;
        return Ok(());
    }
    reporter.step(&plan.node, "apply");
    let clock = Instant::now();
    let journal = journal::encode(&journal_after(plan, previous, &removal, &options.holder));
    let work = Work {
        placements: &placements,
        links: &links,
        dirs: &dirs,
        removal: &removal,
        journal: &journal,
    };
    let applied = apply_placements(plan, connection, &work, report.pending_post.as_deref(), options.force)?;
    report.timings.apply = clock.elapsed();
    take_applied(plan, &placements, applied, report);
    Ok(())
}

/// What a path that may have to go was: a file, link or folder pacha placed before (as it
/// recorded it) that the plan no longer has, or a path the plan says must be absent.
#[derive(Debug, Clone, Copy)]
enum Was<'a> {
    File(&'a RecordedFile),
    Link(&'a RecordedLink),
    Dir,
    Absent,
}

type Candidate<'a> = (NodePath, Was<'a>);

fn removal_candidates<'a>(plan: &Plan, previous: Option<&'a Snapshot>) -> Vec<Candidate<'a>> {
    let planned = |path: &NodePath| {
        plan.files.binary_search_by(|file| file.destination.cmp(path)).is_ok()
            || plan.links.iter().any(|link| &link.path == path)
            || plan.dirs.iter().any(|dir| &dir.path == path)
    };
    let mut candidates: Vec<Candidate<'a>> = Vec::new();
    if let Some(snapshot) = previous {
        for file in snapshot
            .files
            .iter()
            .filter(|file| file.managed && !planned(&file.path))
        {
            candidates.push((file.path.clone(), Was::File(file)));
        }
        for link in snapshot
            .links
            .iter()
            .filter(|link| link.managed && !planned(&link.path))
        {
            candidates.push((link.path.clone(), Was::Link(link)));
        }
        // Deepest first, so a folder inside another goes before it.
        let mut dirs: Vec<&RecordedDir> = snapshot.dirs.iter().filter(|dir| !planned(&dir.path)).collect();
        dirs.sort_by(|a, b| b.path.cmp(&a.path));
        for dir in dirs {
            candidates.push((dir.path.clone(), Was::Dir));
        }
    }
    for path in &plan.absent {
        if !planned(path) && !candidates.iter().any(|(candidate, _)| candidate == path) {
            candidates.push((path.clone(), Was::Absent));
        }
    }
    candidates
}

/// The planned links that are missing or point elsewhere, with their targets.
fn link_changes(plan: &Plan, live: &[LiveFile]) -> Vec<(NodePath, String)> {
    plan.links
        .iter()
        .zip(live)
        .filter(|(link, live)| !matches!(live, LiveFile::Symlink(target) if *target == link.target))
        .map(|(link, _)| (link.path.clone(), link.target.clone()))
        .collect()
}

/// The planned folders that are missing or whose owner, group or mode differ, with what
/// differs.
fn dir_changes<'a>(plan: &'a Plan, live: &[LiveFile]) -> Vec<(&'a PlannedDir, Change)> {
    let mut changes = Vec::new();
    for (dir, live) in plan.dirs.iter().zip(live) {
        let mut change = Change {
            destination: dir.path.clone(),
            kind: ChangeKind::Directory,
            mode: None,
            owner: None,
            group: None,
            before: None,
        };
        if let LiveFile::Directory(stat) = live {
            if stat.mode != dir.mode {
                change.mode = Some((stat.mode, dir.mode));
            }
            if let Some(owner) = &dir.owner
                && stat.owner != *owner
                && stat.uid.to_string() != *owner
            {
                change.owner = Some((stat.owner.clone(), owner.clone()));
            }
            if let Some(group) = &dir.group
                && stat.group != *group
                && stat.gid.to_string() != *group
            {
                change.group = Some((stat.group.clone(), group.clone()));
            }
            if change.mode.is_none() && change.owner.is_none() && change.group.is_none() {
                continue;
            }
        }
        changes.push((dir, change));
    }
    changes
}

/// What a push removes, and what it keeps with why.
#[derive(Debug, Default)]
pub(crate) struct Removal {
    pub(crate) files: Vec<NodePath>,
    pub(crate) dirs: Vec<NodePath>,
    pub(crate) kept: Vec<(NodePath, String)>,
}

/// Decides each candidate from what the node holds there: a file pacha placed goes when it is
/// as recorded (a hand edit is kept unless `force`); an `absent` path goes whatever it is (a
/// folder only when empty).
fn removals(candidates: &[Candidate<'_>], live: &[LiveFile], force: bool) -> Removal {
    let mut removal = Removal::default();
    for ((path, was), live) in candidates.iter().zip(live) {
        match (was, live) {
            (Was::Absent, LiveFile::Missing) => {}
            // Gone already: the history forgets it with this push.
            (_, LiveFile::Missing) => removal.files.push(path.clone()),
            (Was::Absent | Was::Dir, LiveFile::Directory(_)) => removal.dirs.push(path.clone()),
            (Was::Dir, _) => removal.kept.push((path.clone(), "no longer a folder".to_owned())),
            (Was::Link(recorded), LiveFile::Symlink(target)) => {
                if force || *target == recorded.target {
                    removal.files.push(path.clone());
                } else {
                    removal.kept.push((
                        path.clone(),
                        "pointed elsewhere by hand since pacha placed it (--force removes it)".to_owned(),
                    ));
                }
            }
            (Was::Link(_), _) => removal
                .kept
                .push((path.clone(), "no longer the link pacha placed".to_owned())),
            (Was::Absent, _) | (Was::File(_), LiveFile::Symlink(_)) => removal.files.push(path.clone()),
            (Was::File(recorded), LiveFile::File(stat)) => {
                if force || (stat.sha256 == recorded.sha256 && stat.mode == recorded.mode) {
                    removal.files.push(path.clone());
                } else {
                    removal.kept.push((
                        path.clone(),
                        "edited by hand since pacha placed it (--force removes it)".to_owned(),
                    ));
                }
            }
            (Was::File(_), LiveFile::Unreadable) => removal.kept.push((path.clone(), "not readable".to_owned())),
            (Was::File(_), LiveFile::Other | LiveFile::Directory(_)) => removal
                .kept
                .push((path.clone(), "a folder or special file stands there now".to_owned())),
        }
    }
    removal
}

/// What pacha manages on the node once this push is done: the plan's files and the ones it
/// keeps instead of removing.
fn journal_after(plan: &Plan, previous: Option<&Snapshot>, removal: &Removal, by: &str) -> Journal {
    let mut files: Managed = plan
        .files
        .iter()
        .map(|file| (file.destination.clone(), (file.sha256, file.mode)))
        .collect();
    for (path, _) in &removal.kept {
        if let Some(file) = previous.and_then(|previous| previous.file(path)) {
            files.insert(path.clone(), (file.sha256, file.mode));
        }
    }
    Journal {
        by: by.to_owned(),
        state: plan.state.clone(),
        files,
    }
}

/// What the node holds where its journal says pacha placed files (read with their contents),
/// with the files `previous` has that pacha did not place, and `previous`'s scripts.
fn found_snapshot(
    connection: &mut dyn Connection,
    journal: &Journal,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, TransportError> {
    let paths: Vec<NodePath> = journal.files.keys().cloned().collect();
    let inspection = connection.inspect(&Inspect {
        paths: &paths,
        contents: true,
        lock: None,
    })?;
    let mut found = Snapshot {
        files: Vec::new(),
        scripts: previous.map(|previous| previous.scripts.clone()).unwrap_or_default(),
        links: previous.map(|previous| previous.links.clone()).unwrap_or_default(),
        dirs: previous.map(|previous| previous.dirs.clone()).unwrap_or_default(),
    };
    for ((path, live), content) in paths.iter().zip(&inspection.files).zip(inspection.contents) {
        if let (LiveFile::File(stat), Some(content)) = (live, content) {
            found.files.push(RecordedFile {
                path: path.clone(),
                content: content.into(),
                sha256: stat.sha256,
                mode: stat.mode,
                owner: stat.recorded_owner(),
                group: stat.recorded_group(),
                managed: true,
                secret: previous
                    .and_then(|previous| previous.file(path))
                    .is_some_and(|file| file.secret),
            });
        }
    }
    for file in previous.into_iter().flat_map(|previous| &previous.files) {
        if !file.managed && !journal.files.contains_key(&file.path) {
            found.files.push(file.clone());
        }
    }
    found.normalize();
    Ok(found)
}

/// Reads every planned path and every removal candidate in one round trip, taking the node's
/// lock when `lock` names this pacha.
fn inspect_plan(
    plan: &Plan,
    candidates: &[Candidate<'_>],
    connection: &mut dyn Connection,
    lock: Option<&str>,
) -> Result<Inspection, TransportError> {
    let mut paths: Vec<NodePath> = plan.files.iter().map(|file| file.destination.clone()).collect();
    paths.extend(plan.links.iter().map(|link| link.path.clone()));
    paths.extend(plan.dirs.iter().map(|dir| dir.path.clone()));
    paths.extend(candidates.iter().map(|(path, _)| path.clone()));
    let inspection = connection.inspect(&Inspect {
        paths: &paths,
        contents: false,
        lock,
    })?;
    if inspection.files.len() != paths.len() {
        return Err(TransportError::Protocol {
            host: plan.target.host.clone(),
            step: Step::Inspect,
            detail: format!("{} answers for {} paths", inspection.files.len(), paths.len()),
        });
    }
    Ok(inspection)
}

/// The files to place: the changed ones, or every one when forced.
fn placements(plan: &Plan, changes: &[Change], force: bool) -> Vec<Placement> {
    plan.files
        .iter()
        .filter(|file| force || changes.iter().any(|change| change.destination == file.destination))
        .map(|file| Placement {
            destination: file.destination.clone(),
            content: file.content.clone(),
            sha256: file.sha256,
            owner: file.owner.clone(),
            group: file.group.clone(),
            mode: file.mode,
            dir_mode: file.dir_mode,
            validate: file.validate.clone(),
        })
        .collect()
}

/// Runs pre scripts (when something is placed or removed), places, removes, runs post scripts,
/// in one exchange.
/// What one apply changes on a node.
struct Work<'a> {
    placements: &'a [Placement],
    links: &'a [(NodePath, String)],
    dirs: &'a [PlannedDir],
    removal: &'a Removal,
    journal: &'a [u8],
}

fn apply_placements(
    plan: &Plan,
    connection: &mut dyn Connection,
    work: &Work<'_>,
    pending_post: Option<&[NodePath]>,
    force: bool,
) -> Result<Applied, TransportError> {
    let Work {
        placements,
        links,
        dirs,
        removal,
        journal,
    } = *work;
    let removing = !removal.files.is_empty() || !removal.dirs.is_empty() || !links.is_empty() || !dirs.is_empty();
    let pre: Vec<&PlannedScript> = if placements.is_empty() && !removing && !force {
        Vec::new()
    } else {
        plan.scripts(Stage::Pre).collect()
    };
    let mut changed: Vec<NodePath> = placements.iter().map(|file| file.destination.clone()).collect();
    changed.extend(links.iter().map(|(path, _)| path.clone()));
    changed.extend(dirs.iter().map(|dir| dir.path.clone()));
    for path in pending_post.into_iter().flatten() {
        if !changed.contains(path) {
            changed.push(path.clone());
        }
    }
    // Handlers run when their app changed: placed, or removed (then under its dest).
    let mut touched = changed.clone();
    touched.extend(removal.files.iter().chain(&removal.dirs).cloned());
    let post: Vec<&PlannedScript> = plan
        .scripts(Stage::Post)
        .filter(|script| force || plan.handler_runs(script, &touched))
        .collect();
    let health: Vec<&PlannedScript> = plan.scripts(Stage::Health).collect();
    connection.apply(&Apply {
        node: &plan.node,
        state: &plan.state,
        pre: &pre,
        files: placements,
        post: &post,
        changed: &changed,
        remove: &removal.files,
        remove_dirs: &removal.dirs,
        links,
        dirs,
        health: &health,
        revert_on_failure: !plan.keep_on_failure,
        confirm: plan.confirm_ssh.filter(|_| !plan.keep_on_failure),
        script_timeout: plan.script_timeout,
        journal,
    })
}

/// Puts what an apply did into the report: the live state of placed files, scripts, outcome.
fn take_applied(plan: &Plan, placements: &[Placement], applied: Applied, report: &mut NodeReport) {
    report.placed = applied.placed;
    if applied.placed {
        for (placement, stat) in placements.iter().zip(&applied.placed_stats) {
            if let Some(index) = plan
                .files
                .iter()
                .position(|file| file.destination == placement.destination)
            {
                report.live[index] = stat.clone();
            }
        }
    }
    report.scripts = applied.scripts;
    if let Some(why) = applied.probe_failed {
        report.scripts.push(ScriptRun {
            id: "health/ssh".to_owned(),
            status: 255,
            output: why.into_bytes(),
        });
    }
    if applied.rolled_back {
        let failed = report.scripts.iter().find(|run| !run.succeeded()).cloned();
        let post_failed_again = !applied.after_rollback.iter().all(ScriptRun::succeeded);
        report
            .scripts
            .extend(applied.after_rollback.into_iter().map(|run| ScriptRun {
                id: format!("{} (after roll back)", run.id),
                ..run
            }));
        // What is live is what was there before: the placed attributes no longer are.
        report.live.clear();
        let (id, status) = failed.map_or_else(|| ("post".to_owned(), 1), |run| (run.id, run.status));
        report.outcome = Outcome::RolledBack;
        report.error = Some(NodeError::RolledBack {
            timed_out: plan.script_timeout.filter(|_| status == 124),
            id,
            status,
            restore_incomplete: applied.restore_incomplete,
            post_failed_again,
        });
        return;
    }
    if let Some(failed) = applied.validation {
        let secret = plan
            .files
            .iter()
            .any(|file| file.destination == failed.path && file.secret);
        let output = if secret {
            "(its output is not shown: the file holds secrets)".to_owned()
        } else {
            plan.redact(String::from_utf8_lossy(&failed.output).trim_end())
        };
        report.fail(NodeError::Validation {
            path: failed.path,
            command: failed.command,
            status: failed.status,
            output,
        });
        return;
    }
    match report.scripts.iter().find(|run| !run.succeeded()) {
        Some(failed) => {
            let placed = !failed.id.starts_with("pre/");
            // `timeout` ends a script it killed with 124.
            let error = match plan.script_timeout {
                Some(seconds) if failed.status == 124 => NodeError::ScriptTimeout {
                    id: failed.id.clone(),
                    seconds,
                    placed,
                },
                _ => NodeError::Script {
                    id: failed.id.clone(),
                    status: failed.status,
                    placed,
                },
            };
            report.fail(error);
        }
        None => report.outcome = Outcome::Changed,
    }
}

/// Reads the live contents of changed files that exist, for diffs.
fn read_before(
    plan: &Plan,
    connection: &mut dyn Connection,
    live: &[LiveFile],
    changes: &mut [Change],
) -> Result<(), TransportError> {
    let wanted: Vec<NodePath> = changes
        .iter()
        .filter(|change| {
            plan.files
                .iter()
                .zip(live)
                .any(|(file, live)| file.destination == change.destination && matches!(live, LiveFile::File(_)))
        })
        .map(|change| change.destination.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let inspection = connection.inspect(&Inspect {
        paths: &wanted,
        contents: true,
        lock: None,
    })?;
    for (path, content) in wanted.iter().zip(inspection.contents) {
        if let Some(change) = changes.iter_mut().find(|change| &change.destination == path) {
            change.before = content;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
