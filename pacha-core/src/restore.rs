//! History-driven work on nodes: recording a push, rollback, rebuild, capture and status. Each
//! reuses push's reading and placing paths; there is no second copy of them.

use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::connection::{Connection, Connector, Inspect, LiveFile, TransportError};
use crate::history::{Entry, Event, EventKind, History, HistoryError, RecordedFile, RecordedScript, Snapshot};
use crate::master::Target;
use crate::mode::Mode;
use crate::path::NodePath;
use crate::plan::{Plan, PlannedFile, PlannedScript};
use crate::push::{NodeReport, Outcome, PushOptions, Reporter, push};

/// A node's `track` globs: extra files whose changes capture records.
#[derive(Debug, Clone, Default)]
pub struct Track {
    globs: Vec<String>,
    set: GlobSet,
}

impl Track {
    /// Compiles `globs` (absolute paths on the node; `*` stays in a folder, `**` crosses).
    pub fn new(globs: &[String]) -> Result<Track, String> {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            if !glob.starts_with('/') {
                return Err(format!("track: {glob:?} must be an absolute path on the node"));
            }
            let compiled = GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|err| format!("track: invalid glob {glob:?}: {}", err.kind()))?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|err| err.to_string())?;
        Ok(Track {
            globs: globs.to_vec(),
            set,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    pub fn matches(&self, path: &NodePath) -> bool {
        self.set.is_match(path.as_str())
    }

    /// Literal paths (globs without wildcards) and the folders to search for the others.
    pub fn search(&self) -> (Vec<NodePath>, Vec<NodePath>) {
        let mut literal = Vec::new();
        let mut folders = Vec::new();
        for glob in &self.globs {
            let wild = glob.find(['*', '?', '[', '{']);
            match wild {
                None => literal.extend(NodePath::parse(glob).ok()),
                Some(at) => {
                    let base = glob[..at]
                        .rsplit_once('/')
                        .map_or("/", |(base, _)| if base.is_empty() { "/" } else { base });
                    if let Ok(folder) = NodePath::parse(base)
                        && !folders.contains(&folder)
                    {
                        folders.push(folder);
                    }
                }
            }
        }
        (literal, folders)
    }
}

fn recorded_scripts(plan: &Plan) -> Vec<RecordedScript> {
    plan.scripts
        .iter()
        .map(|script| RecordedScript {
            stage: script.stage,
            phase: script.phase.clone(),
            name: script.name.clone(),
            content: script.content.clone(),
            sha256: script.sha256,
        })
        .collect()
}

/// What a push left on a node: the plan's files with the attributes the node reported, the
/// plan's scripts, and the tracked files recorded before.
pub fn pushed_snapshot(plan: &Plan, report: &NodeReport, previous: Option<&Snapshot>, track: &Track) -> Snapshot {
    let files: Vec<RecordedFile> = plan
        .files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let (mode, owner, group) = match report.live.get(index) {
                Some(LiveFile::File(stat)) => (stat.mode, stat.recorded_owner(), stat.recorded_group()),
                _ => (
                    file.mode,
                    file.owner.clone().unwrap_or_default(),
                    file.group.clone().unwrap_or_default(),
                ),
            };
            RecordedFile {
                path: file.destination.clone(),
                content: file.content.clone(),
                sha256: file.sha256,
                mode,
                owner,
                group,
            }
        })
        .collect();
    let mut snapshot = Snapshot {
        files,
        scripts: recorded_scripts(plan),
    };
    if let Some(previous) = previous {
        keep_tracked(&mut snapshot, previous, track);
    }
    snapshot.normalize();
    snapshot
}

/// Adds to `snapshot` the tracked files of `previous` it does not hold.
fn keep_tracked(snapshot: &mut Snapshot, previous: &Snapshot, track: &Track) {
    for file in &previous.files {
        let held = snapshot.files.iter().any(|held| held.path == file.path);
        if !held && track.matches(&file.path) {
            snapshot.files.push(file.clone());
        }
    }
    snapshot.normalize();
}

/// Records files a node saw change by hand (`pacha watch`): `changed` replaces or adds those
/// files in the latest snapshot, `removed` drops files that are gone. Records nothing when the
/// result equals the latest snapshot (a push the watcher saw land, say).
pub fn record_changes(
    history: &dyn History,
    node: &str,
    changed: Vec<RecordedFile>,
    removed: &[NodePath],
) -> Result<Option<Entry>, HistoryError> {
    let (state, old) = match latest_snapshot(history, node)? {
        Some((entry, snapshot)) => (entry.state, snapshot),
        None => (None, Snapshot::default()),
    };
    let mut snapshot = old.clone();
    snapshot
        .files
        .retain(|file| !removed.contains(&file.path) && !changed.iter().any(|new| new.path == file.path));
    snapshot.files.extend(changed);
    snapshot.normalize();
    let differences = snapshot.differences(&old);
    if differences.is_empty() {
        return Ok(None);
    }
    let event = Event {
        kind: EventKind::Capture,
        node: node.to_owned(),
        state,
        changed: differences,
        failed: false,
        detail: Some("(watch)".to_owned()),
    };
    history.record(&event, &snapshot).map(Some)
}

/// Records what a node reports it did by itself (`pacha pull`): `snapshot` holds what the node
/// placed; the tracked files recorded before are kept.
pub fn record_reported(
    history: &dyn History,
    event: &Event,
    mut snapshot: Snapshot,
    track: &Track,
) -> Result<Entry, HistoryError> {
    if !track.is_empty()
        && let Some((_, previous)) = latest_snapshot(history, &event.node)?
    {
        keep_tracked(&mut snapshot, &previous, track);
    }
    history.record(event, &snapshot)
}

/// The latest snapshot of `node`, if it has one.
pub fn latest_snapshot(history: &dyn History, node: &str) -> Result<Option<(Entry, Snapshot)>, HistoryError> {
    match history.latest(node)? {
        Some(entry) => {
            let snapshot = history.snapshot(node, &entry.revision)?;
            Ok(Some((entry, snapshot)))
        }
        None => Ok(None),
    }
}

/// Records a push of `plan` when it placed files: a push that changed nothing records nothing;
/// a failed push records what it placed, marked as failed.
pub fn record_push(
    history: &dyn History,
    plan: &Plan,
    report: &NodeReport,
    track: &Track,
) -> Result<Option<Entry>, HistoryError> {
    if !report.placed || report.changes.is_empty() {
        return Ok(None);
    }
    // The previous snapshot only matters for tracked files it holds; reading it costs every
    // recorded file, so skip it for nodes that track nothing.
    let previous = if track.is_empty() {
        None
    } else {
        latest_snapshot(history, &plan.node)?
    };
    let snapshot = pushed_snapshot(plan, report, previous.as_ref().map(|(_, snapshot)| snapshot), track);
    let event = Event {
        kind: EventKind::Push,
        node: plan.node.clone(),
        state: Some(plan.state.clone()),
        changed: report.changes.iter().map(|change| change.destination.clone()).collect(),
        failed: report.outcome == Outcome::Failed,
        detail: None,
    };
    history.record(&event, &snapshot).map(Some)
}

/// A plan that places `snapshot` exactly: contents, owners, groups and modes as recorded, with
/// the recorded scripts.
pub fn snapshot_plan(node: &str, state: &str, target: Target, snapshot: &Snapshot) -> Plan {
    Plan {
        node: node.to_owned(),
        state: state.to_owned(),
        target,
        files: snapshot
            .files
            .iter()
            .map(|file| PlannedFile {
                destination: file.path.clone(),
                app: "history".to_owned(),
                source: "history".to_owned(),
                owner: (!file.owner.is_empty()).then(|| file.owner.clone()),
                group: (!file.group.is_empty()).then(|| file.group.clone()),
                mode: file.mode,
                dir_mode: Mode::EXECUTABLE,
                content: file.content.clone(),
                sha256: file.sha256,
            })
            .collect(),
        scripts: snapshot
            .scripts
            .iter()
            .map(|script| PlannedScript {
                stage: script.stage,
                phase: script.phase.clone(),
                name: script.name.clone(),
                source: "history".to_owned(),
                content: script.content.clone(),
                sha256: script.sha256,
            })
            .collect(),
        secrets: Vec::new(),
    }
}

/// Why a rollback, rebuild, capture or status failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// What a rollback or rebuild did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The revision that was placed.
    pub from: Entry,
    /// The plan made of it.
    pub plan: Plan,
    pub report: NodeReport,
    /// The new history entry, when files changed.
    pub recorded: Option<Entry>,
}

/// How to push: the connector, the options and who hears about progress.
type PushWith<'a> = (&'a dyn Connector, &'a PushOptions, &'a dyn Reporter);

fn place_snapshot(
    history: &dyn History,
    from: Entry,
    snapshot: &Snapshot,
    target: Target,
    (kind, detail): (EventKind, String),
    (connector, options, reporter): PushWith<'_>,
) -> Result<Restored, RestoreError> {
    let state = from.state.clone().unwrap_or_else(|| "default".to_owned());
    let plan = snapshot_plan(&from.node, &state, target, snapshot);
    let report = push(std::slice::from_ref(&plan), connector, options, reporter)
        .into_iter()
        .next()
        .unwrap_or_else(|| NodeReport::new(&plan));
    let mut recorded = None;
    if report.placed && (!report.changes.is_empty() || options.force) {
        let placed = pushed_snapshot(&plan, &report, None, &Track::default());
        let changed = if options.force {
            plan.files.iter().map(|file| file.destination.clone()).collect()
        } else {
            report.changes.iter().map(|change| change.destination.clone()).collect()
        };
        let event = Event {
            kind,
            node: from.node.clone(),
            state: from.state.clone(),
            changed,
            failed: report.outcome == Outcome::Failed,
            detail: Some(detail),
        };
        recorded = Some(history.record(&event, &placed)?);
    }
    Ok(Restored {
        from,
        plan,
        report,
        recorded,
    })
}

/// Places `node`'s files exactly as recorded at `revision` (content, owner, group, mode; its
/// scripts run when files change, as in a push), then records that.
pub fn rollback(
    history: &dyn History,
    node: &str,
    revision: &str,
    target: Target,
    connector: &dyn Connector,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<Restored, RestoreError> {
    let from = history.entry(node, revision)?;
    let snapshot = history.snapshot(node, &from.revision)?;
    let detail = format!("to {}", &from.revision[..from.revision.len().min(12)]);
    place_snapshot(
        history,
        from,
        &snapshot,
        target,
        (EventKind::Rollback, detail),
        (connector, options, reporter),
    )
}

/// Rebuilds a (new) host from `node`'s latest recorded state: every file placed with its
/// owner and mode, every script run. `target` says where (the node's, or another host).
pub fn rebuild(
    history: &dyn History,
    node: &str,
    target: Target,
    connector: &dyn Connector,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<Restored, RestoreError> {
    let Some((from, snapshot)) = latest_snapshot(history, node)? else {
        return Err(HistoryError::Empty { node: node.to_owned() }.into());
    };
    let detail = format!("onto {}", target.host);
    let options = PushOptions {
        force: true,
        ..options.clone()
    };
    place_snapshot(
        history,
        from,
        &snapshot,
        target,
        (EventKind::Rebuild, detail),
        (connector, &options, reporter),
    )
}

/// How a recorded file differs from the live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub path: NodePath,
    /// What differs: `content`, `missing`, `mode 0644 -> 0600`, ...
    pub what: String,
}

/// A node's recorded state against its live state.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node: String,
    /// The latest entry (`None`: never recorded).
    pub latest: Option<Entry>,
    /// The latest push (it may be older than the latest entry).
    pub last_push: Option<Entry>,
    pub drift: Vec<Drift>,
}

fn drift_of(recorded: &RecordedFile, live: &LiveFile) -> Option<String> {
    match live {
        LiveFile::Missing => Some("missing".to_owned()),
        LiveFile::Symlink => Some("replaced by a symlink".to_owned()),
        LiveFile::Other => Some("replaced by a folder or special file".to_owned()),
        LiveFile::Unreadable => Some("unreadable".to_owned()),
        LiveFile::File(stat) => {
            let mut what = Vec::new();
            if stat.sha256 != recorded.sha256 {
                what.push("content".to_owned());
            }
            if stat.mode != recorded.mode {
                what.push(format!("mode {} -> {}", recorded.mode, stat.mode));
            }
            if stat.recorded_owner() != recorded.owner && stat.uid.to_string() != recorded.owner {
                what.push(format!("owner {} -> {}", recorded.owner, stat.owner));
            }
            if stat.recorded_group() != recorded.group && stat.gid.to_string() != recorded.group {
                what.push(format!("group {} -> {}", recorded.group, stat.group));
            }
            (!what.is_empty()).then(|| what.join(", "))
        }
    }
}

/// Compares `node`'s latest recorded files with the live node, in one round trip.
pub fn status(
    history: &dyn History,
    node: &str,
    target: &Target,
    connector: &dyn Connector,
) -> Result<NodeStatus, RestoreError> {
    let entries = history.log(node)?;
    let latest = entries.first().cloned();
    let last_push = entries
        .iter()
        .find(|entry| matches!(entry.kind, EventKind::Push | EventKind::Pull))
        .cloned();
    let mut status = NodeStatus {
        node: node.to_owned(),
        latest: latest.clone(),
        last_push,
        drift: Vec::new(),
    };
    let Some(latest) = latest else {
        return Ok(status);
    };
    let snapshot = history.snapshot(node, &latest.revision)?;
    let paths: Vec<NodePath> = snapshot.files.iter().map(|file| file.path.clone()).collect();
    let mut connection = connector.connect(node, target)?;
    let inspection = connection.inspect(&Inspect {
        paths: &paths,
        contents: false,
        lock: None,
    });
    let closed = connection.close();
    let inspection = inspection?;
    closed?;
    for (recorded, live) in snapshot.files.iter().zip(&inspection.files) {
        if let Some(what) = drift_of(recorded, live) {
            status.drift.push(Drift {
                path: recorded.path.clone(),
                what,
            });
        }
    }
    Ok(status)
}

/// The files on the node that `track` names: its literal paths, and the files found below the
/// folders of its globs that match them.
pub fn tracked_files(connection: &mut dyn Connection, track: &Track) -> Result<Vec<NodePath>, TransportError> {
    let (mut paths, folders) = track.search();
    if !folders.is_empty() {
        paths.extend(
            connection
                .find(&folders)?
                .into_iter()
                .filter(|path| track.matches(path)),
        );
    }
    Ok(paths)
}

/// What a capture found.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The new entry, when live files differed from the latest recorded ones.
    pub recorded: Option<Entry>,
    pub changed: Vec<NodePath>,
    /// Files that could not be read, with why.
    pub skipped: Vec<(NodePath, String)>,
}

/// Reads the live files of `node` (its recorded files and its tracked files, or only `only`
/// when given) into history, when they differ from the latest recorded ones.
pub fn capture(
    history: &dyn History,
    node: &str,
    target: &Target,
    track: &Track,
    only: &[NodePath],
    connector: &dyn Connector,
    holder: &str,
) -> Result<Captured, RestoreError> {
    let previous = latest_snapshot(history, node)?;
    let (state, old) = match &previous {
        Some((entry, snapshot)) => (entry.state.clone(), snapshot.clone()),
        None => (None, Snapshot::default()),
    };
    let mut connection = connector.connect(node, target)?;
    let result = (|| -> Result<Captured, RestoreError> {
        let mut paths: Vec<NodePath> = if only.is_empty() {
            let mut paths: Vec<NodePath> = old.files.iter().map(|file| file.path.clone()).collect();
            paths.extend(tracked_files(connection.as_mut(), track)?);
            paths
        } else {
            only.to_vec()
        };
        paths.sort();
        paths.dedup();
        let inspection = connection.inspect(&Inspect {
            paths: &paths,
            contents: true,
            lock: Some(holder),
        })?;
        let mut captured = Captured::default();
        // Start from the recorded files when capturing a few paths only.
        let mut files: Vec<RecordedFile> = if only.is_empty() {
            Vec::new()
        } else {
            old.files
                .iter()
                .filter(|file| !paths.contains(&file.path))
                .cloned()
                .collect()
        };
        for ((path, live), content) in paths.iter().zip(&inspection.files).zip(&inspection.contents) {
            match (live, content) {
                (LiveFile::File(stat), Some(content)) => files.push(RecordedFile {
                    path: path.clone(),
                    content: Arc::from(content.as_slice()),
                    sha256: stat.sha256,
                    mode: stat.mode,
                    owner: stat.recorded_owner(),
                    group: stat.recorded_group(),
                }),
                (LiveFile::Unreadable, _) => captured.skipped.push((path.clone(), "not readable".to_owned())),
                (LiveFile::Symlink, _) => captured.skipped.push((path.clone(), "a symlink".to_owned())),
                (LiveFile::Other, _) => captured.skipped.push((path.clone(), "not a regular file".to_owned())),
                (LiveFile::Missing, _) => {}
                (LiveFile::File(_), None) => captured.skipped.push((path.clone(), "contents not read".to_owned())),
            }
        }
        // A file that could not be read keeps its recorded version.
        for (path, _) in &captured.skipped {
            if let Some(file) = old.file(path) {
                files.push(file.clone());
            }
        }
        let mut snapshot = Snapshot {
            files,
            scripts: old.scripts.clone(),
        };
        snapshot.normalize();
        captured.changed = snapshot.differences(&old);
        if !captured.changed.is_empty() {
            let event = Event {
                kind: EventKind::Capture,
                node: node.to_owned(),
                state: state.clone(),
                changed: captured.changed.clone(),
                failed: false,
                detail: None,
            };
            captured.recorded = Some(history.record(&event, &snapshot)?);
        }
        Ok(captured)
    })();
    let closed = connection.close();
    let captured = result?;
    closed?;
    Ok(captured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::TransportKind;
    use crate::push::Quiet;
    use crate::settings::SshSettings;
    use crate::testing::{Memory, MemoryFile, MemoryHistory, MemoryNode};

    fn path(text: &str) -> NodePath {
        NodePath::parse(text).unwrap()
    }

    fn target() -> Target {
        Target {
            transport: TransportKind::Local,
            host: "n1".into(),
            port: None,
            user: None,
            root: "/".into(),
            ssh: SshSettings::default(),
        }
    }

    fn plan(files: &[(&str, &str)]) -> Plan {
        let mut plan = snapshot_plan("n1", "production", target(), &Snapshot::default());
        for (file, content) in files {
            plan.files.push(PlannedFile {
                destination: path(file),
                app: "app".into(),
                source: "templates".into(),
                owner: None,
                group: None,
                mode: Mode::FILE,
                dir_mode: Mode::EXECUTABLE,
                content: Arc::from(content.as_bytes()),
                sha256: crate::plan::ContentHash::of(content.as_bytes()),
            });
        }
        plan
    }

    fn setup() -> (Memory, MemoryHistory) {
        let memory = Memory::default();
        memory.0.lock().unwrap().insert("n1".into(), MemoryNode::default());
        (memory, MemoryHistory::default())
    }

    fn push_and_record(memory: &Memory, history: &MemoryHistory, plan: &Plan) -> Entry {
        let report = push(std::slice::from_ref(plan), memory, &PushOptions::default(), &Quiet).remove(0);
        record_push(history, plan, &report, &Track::default()).unwrap().unwrap()
    }

    #[test]
    fn capture_skips_unreadable_files_and_keeps_their_recorded_version() {
        let (memory, history) = setup();
        push_and_record(&memory, &history, &plan(&[("/etc/a", "a1"), ("/etc/b", "b1")]));
        {
            let mut nodes = memory.0.lock().unwrap();
            let node = nodes.get_mut("n1").unwrap();
            node.files.insert(
                path("/etc/a"),
                MemoryFile {
                    content: b"a2".to_vec(),
                    mode: Mode::FILE,
                    owner: "root".into(),
                },
            );
            node.files.insert(
                path("/etc/b"),
                MemoryFile {
                    content: b"b2".to_vec(),
                    mode: Mode::FILE,
                    owner: "root".into(),
                },
            );
            node.unreadable.push(path("/etc/b"));
        }
        let captured = capture(&history, "n1", &target(), &Track::default(), &[], &memory, "test").unwrap();
        assert_eq!(captured.changed, [path("/etc/a")]);
        assert_eq!(captured.skipped, [(path("/etc/b"), "not readable".to_owned())]);
        let entry = captured.recorded.unwrap();
        let snapshot = history.snapshot("n1", &entry.revision).unwrap();
        assert_eq!(&*snapshot.file(&path("/etc/a")).unwrap().content, b"a2");
        assert_eq!(
            &*snapshot.file(&path("/etc/b")).unwrap().content,
            b"b1",
            "the unreadable file keeps its recorded version"
        );
    }

    #[test]
    fn status_reports_drift_and_rollback_restores() {
        let (memory, history) = setup();
        let first = push_and_record(&memory, &history, &plan(&[("/etc/a", "one")]));
        push_and_record(&memory, &history, &plan(&[("/etc/a", "two")]));
        let clean = status(&history, "n1", &target(), &memory).unwrap();
        assert!(clean.drift.is_empty());
        memory
            .0
            .lock()
            .unwrap()
            .get_mut("n1")
            .unwrap()
            .files
            .remove(&path("/etc/a"));
        let drifted = status(&history, "n1", &target(), &memory).unwrap();
        assert_eq!(
            drifted.drift,
            [Drift {
                path: path("/etc/a"),
                what: "missing".into()
            }]
        );

        let done = rollback(
            &history,
            "n1",
            &first.revision,
            target(),
            &memory,
            &PushOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(done.report.outcome, Outcome::Changed);
        assert_eq!(memory.0.lock().unwrap()["n1"].files[&path("/etc/a")].content, b"one");
        assert_eq!(history.log("n1").unwrap()[0].kind, EventKind::Rollback);
        assert!(matches!(
            rollback(
                &history,
                "n1",
                "ffff",
                target(),
                &memory,
                &PushOptions::default(),
                &Quiet
            ),
            Err(RestoreError::History(HistoryError::UnknownRevision { .. }))
        ));
    }

    #[test]
    fn changes_seen_by_a_watcher_merge_into_the_latest_snapshot() {
        let (memory, history) = setup();
        push_and_record(&memory, &history, &plan(&[("/etc/a", "one"), ("/etc/b", "b")]));
        let latest = latest_snapshot(&history, "n1").unwrap().unwrap().1;
        // What the push placed, seen again: nothing to record.
        assert_eq!(
            record_changes(&history, "n1", vec![latest.files[0].clone()], &[]).unwrap(),
            None
        );
        let mut edited = latest.files[0].clone();
        edited.content = Arc::from(&b"edited"[..]);
        edited.sha256 = crate::plan::ContentHash::of(b"edited");
        let entry = record_changes(&history, "n1", vec![edited], &[path("/etc/b")])
            .unwrap()
            .unwrap();
        assert_eq!(entry.summary, "capture n1 production (watch): 2 files changed");
        let now = history.snapshot("n1", &entry.revision).unwrap();
        assert_eq!(now.files.len(), 1);
        assert_eq!(&*now.files[0].content, b"edited");
    }

    #[test]
    fn a_push_that_changes_nothing_records_nothing() {
        let (memory, history) = setup();
        let p = plan(&[("/etc/a", "one")]);
        push_and_record(&memory, &history, &p);
        let report = push(std::slice::from_ref(&p), &memory, &PushOptions::default(), &Quiet).remove(0);
        assert_eq!(record_push(&history, &p, &report, &Track::default()).unwrap(), None);
        assert_eq!(history.log("n1").unwrap().len(), 1);
    }

    #[test]
    fn track_globs_split_into_literals_and_folders() {
        let track = Track::new(&[
            "/etc/ssh/sshd_config".into(),
            "/etc/nginx/**/*.conf".into(),
            "/var/*.log".into(),
        ])
        .unwrap();
        let (literal, folders) = track.search();
        assert_eq!(literal, [NodePath::parse("/etc/ssh/sshd_config").unwrap()]);
        assert_eq!(
            folders,
            [NodePath::parse("/etc/nginx").unwrap(), NodePath::parse("/var").unwrap()]
        );
        assert!(track.matches(&NodePath::parse("/etc/nginx/sites/a.conf").unwrap()));
        assert!(!track.matches(&NodePath::parse("/var/log/x.log").unwrap()));
        assert!(Track::new(&["relative/*".into()]).is_err());
    }
}
