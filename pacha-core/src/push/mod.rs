//! Push: bring nodes to their plans. Render first (the caller does), then per node over one
//! connection: read every planned path in one round trip, compute what changed, and only
//! then run pre scripts, place the changed files and run post scripts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::connection::{Apply, Connection, Connector, Inspect, LiveFile, Placement, ScriptRun, TransportError};
use crate::mode::Mode;
use crate::path::NodePath;
use crate::plan::{Plan, PlannedFile, PlannedScript, Stage};

/// How to push.
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
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            dry_run: false,
            force: false,
            jobs: 1,
            read_contents: false,
            holder: "pacha".to_owned(),
        }
    }
}

/// How a file on the node differs from its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub destination: NodePath,
    pub kind: ChangeKind,
    /// Mode before and after, when it changes on an existing file.
    pub mode: Option<(Mode, Mode)>,
    pub owner: Option<(String, String)>,
    pub group: Option<(String, String)>,
    /// The live contents before the push, when asked for.
    pub before: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The file does not exist yet.
    Create,
    /// The contents differ (owner, group or mode may too).
    Update,
    /// Only owner, group or mode differ.
    Attributes,
    /// A symbolic link stands where the file goes; it is replaced, not followed.
    ReplaceSymlink,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Attributes => "attributes",
            ChangeKind::ReplaceSymlink => "replace-symlink",
        }
    }
}

/// How a node's push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing differed; nothing was written and no script ran.
    Unchanged,
    /// Files were placed and/or scripts ran, all successfully.
    Changed,
    /// `--dry-run`: something would change.
    WouldChange,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Changed => "changed",
            Outcome::WouldChange => "would-change",
            Outcome::Failed => "failed",
        }
    }
}

/// Time spent per step of a node's push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub connect: Duration,
    pub inspect: Duration,
    pub apply: Duration,
    pub total: Duration,
}

/// Everything about one node's push.
#[derive(Debug, Clone)]
pub struct NodeReport {
    pub node: String,
    pub host: String,
    pub state: String,
    pub outcome: Outcome,
    pub changes: Vec<Change>,
    /// Post scripts an interrupted earlier push left due (run now unless `--dry-run`).
    pub pending_post: Option<Vec<NodePath>>,
    pub scripts: Vec<ScriptRun>,
    /// Whether files were placed.
    pub placed: bool,
    /// Each planned file's state on the node after the push (as inspected when nothing was
    /// placed), in plan order; empty when the node could not be read.
    pub live: Vec<LiveFile>,
    pub error: Option<String>,
    /// Whether the error was a host key problem.
    pub host_key_error: bool,
    pub timings: Timings,
}

impl NodeReport {
    /// A report of `plan`'s node that has not got anywhere yet.
    pub(crate) fn new(plan: &Plan) -> NodeReport {
        NodeReport {
            node: plan.node.clone(),
            host: plan.target.host.clone(),
            state: plan.state.clone(),
            outcome: Outcome::Failed,
            changes: Vec::new(),
            pending_post: None,
            scripts: Vec::new(),
            placed: false,
            live: Vec::new(),
            error: None,
            host_key_error: false,
            timings: Timings::default(),
        }
    }

    fn fail(&mut self, err: &TransportError) {
        self.outcome = Outcome::Failed;
        self.error = Some(err.to_string());
        self.host_key_error = err.is_host_key();
    }
}

/// What a push tells its caller while it runs. Every method has a default that does nothing.
pub trait Reporter: Sync {
    /// A node moves on to a step (`connect`, `inspect`, `apply`).
    fn step(&self, _node: &str, _step: &str) {}
    /// A node is done.
    fn finished(&self, _index: usize, _report: &NodeReport) {}
}

/// A reporter that reports nothing.
pub struct Quiet;

impl Reporter for Quiet {}

/// What pushing `plan` would change given the node's `live` files (in plan order).
pub fn changes(plan: &Plan, live: &[LiveFile]) -> Vec<Change> {
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
        LiveFile::Missing | LiveFile::Other => {}
        LiveFile::Symlink => change.kind = ChangeKind::ReplaceSymlink,
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
pub fn in_parallel<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
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
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect()
}

/// A connection opened in the first phase of a push, taken by the node's worker.
type ConnectionSlot = Mutex<Option<Result<Box<dyn Connection>, TransportError>>>;

/// Pushes every plan to its node; returns one report per plan, in plan order.
///
/// Connections are opened first, all of them; if any node's host key is unknown or changed,
/// nothing is placed anywhere and every such node is reported at once. Then each node is
/// inspected and brought to its plan, up to `options.jobs` at a time; one node's failure does
/// not stop the others.
pub fn push(
    plans: &[Plan],
    connector: &dyn Connector,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Vec<NodeReport> {
    let started = Instant::now();
    let connections: Vec<ConnectionSlot> = in_parallel(plans, options.jobs, |_, plan| {
        reporter.step(&plan.node, "connect");
        Mutex::new(Some(connector.connect(&plan.node, &plan.target)))
    });
    let connect_time = started.elapsed();
    let host_key_failures: Vec<String> = plans
        .iter()
        .zip(&connections)
        .filter(|(_, connection)| {
            matches!(&*connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner), Some(Err(err)) if err.is_host_key())
        })
        .map(|(plan, _)| plan.node.clone())
        .collect();

    let indexed: Vec<(usize, &Plan)> = plans.iter().enumerate().collect();
    in_parallel(&indexed, options.jobs, |_, (index, plan)| {
        let connection = connections[*index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let mut report = NodeReport::new(plan);
        report.timings.connect = connect_time;
        match connection {
            Some(Ok(connection)) if host_key_failures.is_empty() => {
                run_node(plan, connection, options, reporter, &mut report);
            }
            Some(Ok(connection)) => {
                let _ = connection.close();
                report.error = Some(format!(
                    "not pushed: host key verification failed for {} (nothing was placed on any node)",
                    host_key_failures.join(", ")
                ));
            }
            Some(Err(err)) => report.fail(&err),
            None => report.error = Some("internal error: connection taken twice".to_owned()),
        }
        report.timings.total = started.elapsed();
        reporter.finished(*index, &report);
        report
    })
}

fn run_node(
    plan: &Plan,
    mut connection: Box<dyn Connection>,
    options: &PushOptions,
    reporter: &dyn Reporter,
    report: &mut NodeReport,
) {
    let result = node_steps(plan, connection.as_mut(), options, reporter, report);
    let closed = connection.close();
    if let Err(err) = result.and(closed)
        && report.error.is_none()
    {
        report.fail(&err);
    }
}

fn node_steps(
    plan: &Plan,
    connection: &mut dyn Connection,
    options: &PushOptions,
    reporter: &dyn Reporter,
    report: &mut NodeReport,
) -> Result<(), TransportError> {
    let paths: Vec<NodePath> = plan.files.iter().map(|file| file.destination.clone()).collect();
    reporter.step(&plan.node, "inspect");
    let clock = Instant::now();
    let lock = (!options.dry_run).then_some(options.holder.as_str());
    let inspection = connection.inspect(&Inspect {
        paths: &paths,
        contents: false,
        lock,
    })?;
    report.timings.inspect = clock.elapsed();
    if inspection.files.len() != paths.len() {
        return Err(TransportError::Protocol {
            host: plan.target.host.clone(),
            step: "inspect",
            detail: format!("{} answers for {} paths", inspection.files.len(), paths.len()),
        });
    }
    if let Some((file, _)) = plan
        .files
        .iter()
        .zip(&inspection.files)
        .find(|(_, live)| **live == LiveFile::Other)
    {
        report.error = Some(format!(
            "{}: {} exists on the node and is not a regular file or symlink; pacha will not replace it",
            plan.node, file.destination
        ));
        return Ok(());
    }
    report.changes = changes(plan, &inspection.files);
    report.pending_post.clone_from(&inspection.pending_post);
    report.live.clone_from(&inspection.files);

    if options.read_contents {
        read_before(plan, connection, &inspection.files, &mut report.changes)?;
    }
    if options.dry_run {
        let due = !report.changes.is_empty() || report.pending_post.is_some() || options.force;
        report.outcome = if due { Outcome::WouldChange } else { Outcome::Unchanged };
        return Ok(());
    }
    let placements: Vec<Placement> = plan
        .files
        .iter()
        .filter(|file| {
            options.force
                || report
                    .changes
                    .iter()
                    .any(|change| change.destination == file.destination)
        })
        .map(|file| Placement {
            destination: file.destination.clone(),
            content: file.content.clone(),
            sha256: file.sha256,
            owner: file.owner.clone(),
            group: file.group.clone(),
            mode: file.mode,
            dir_mode: file.dir_mode,
        })
        .collect();
    if placements.is_empty() && report.pending_post.is_none() && !options.force {
        report.outcome = Outcome::Unchanged;
        return Ok(());
    }
    let pre: Vec<&PlannedScript> = if placements.is_empty() && !options.force {
        Vec::new()
    } else {
        plan.scripts(Stage::Pre).collect()
    };
    let post: Vec<&PlannedScript> = plan.scripts(Stage::Post).collect();
    let mut changed: Vec<NodePath> = placements.iter().map(|file| file.destination.clone()).collect();
    for path in report.pending_post.iter().flatten() {
        if !changed.contains(path) {
            changed.push(path.clone());
        }
    }
    reporter.step(&plan.node, "apply");
    let clock = Instant::now();
    let applied = connection.apply(&Apply {
        node: &plan.node,
        state: &plan.state,
        pre: &pre,
        files: &placements,
        post: &post,
        changed: &changed,
    })?;
    report.timings.apply = clock.elapsed();
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
    if let Some(failed) = report.scripts.iter().find(|run| !run.succeeded()) {
        let stage = if failed.id.starts_with("pre/") {
            "nothing was placed"
        } else {
            "files were placed; the post scripts run again on the next push"
        };
        report.error = Some(format!(
            "script {} failed with exit status {} ({stage})",
            failed.id, failed.status
        ));
        report.outcome = Outcome::Failed;
    } else {
        report.outcome = Outcome::Changed;
    }
    Ok(())
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
mod tests;
