//! Recording what happened to a node: the snapshot a push, pull or watch leaves, with the
//! tracked files recorded before kept. Only the engine and the other operations call these, so
//! nothing placed through the library goes unrecorded.

use crate::edges::connection::LiveFile;
use crate::edges::history::{History, HistoryError};
use crate::edges::report::{NodeReport, Outcome};
use crate::model::path::NodePath;
use crate::model::plan::Plan;
use crate::model::snapshot::{
    Entry, Event, EventKind, RecordedDir, RecordedFile, RecordedLink, RecordedScript, Snapshot,
};
use crate::model::track::Track;
use crate::ops::push::Found;

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
/// plan's scripts, the files it kept instead of removing (as recorded before), and the
/// tracked files recorded before.
pub(crate) fn pushed_snapshot(
    plan: &Plan,
    report: &NodeReport,
    previous: Option<&Snapshot>,
    track: &Track,
) -> Snapshot {
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
                managed: true,
                secret: file.secret,
            }
        })
        .collect();
    let mut snapshot = Snapshot {
        files,
        scripts: recorded_scripts(plan),
        links: plan
            .links
            .iter()
            .map(|link| RecordedLink {
                path: link.path.clone(),
                target: link.target.clone(),
                managed: true,
            })
            .collect(),
        dirs: plan
            .dirs
            .iter()
            .map(|dir| RecordedDir {
                path: dir.path.clone(),
                mode: dir.mode,
                owner: dir.owner.clone().unwrap_or_default(),
                group: dir.group.clone().unwrap_or_default(),
            })
            .collect(),
    };
    if let Some(previous) = previous {
        for (path, _) in &report.kept {
            snapshot.files.extend(previous.file(path).cloned());
            snapshot.links.extend(previous.link(path).cloned());
            snapshot.dirs.extend(previous.dir(path).cloned());
        }
        keep_tracked(&mut snapshot, previous, track);
    }
    snapshot.normalize();
    snapshot
}

/// Adds to `snapshot` the files of `previous` that pacha did not place (captured through
/// `track`) and that it does not hold.
fn keep_tracked(snapshot: &mut Snapshot, previous: &Snapshot, track: &Track) {
    for file in &previous.files {
        let held = snapshot.files.iter().any(|held| held.path == file.path);
        if !held && !file.managed && track.matches(&file.path) {
            snapshot.files.push(file.clone());
        }
    }
    for link in &previous.links {
        if snapshot.link(&link.path).is_none() && !link.managed && track.matches(&link.path) {
            snapshot.links.push(link.clone());
        }
    }
    snapshot.normalize();
}

/// Records files a node saw change by hand (`pacha watch`): `changed` replaces or adds those
/// files in the latest snapshot, `removed` drops files that are gone. Records nothing when the
/// result equals the latest snapshot (a push the watcher saw land, say).
pub(crate) fn record_changes(
    history: &dyn History,
    node: &str,
    changed: Vec<RecordedFile>,
    removed: &[NodePath],
    host: Option<&str>,
    at: Option<i64>,
) -> Result<Option<Entry>, HistoryError> {
    let (state, old) = match latest_snapshot(history, node)? {
        Some((entry, snapshot)) => (entry.state, snapshot),
        None => (None, Snapshot::default()),
    };
    let mut snapshot = old.clone();
    snapshot
        .files
        .retain(|file| !removed.contains(&file.path) && !changed.iter().any(|new| new.path == file.path));
    // A file pacha placed stays pacha's when it is edited by hand; a new one is only tracked.
    snapshot.files.extend(changed.into_iter().map(|mut file| {
        file.managed = old.file(&file.path).is_some_and(|recorded| recorded.managed);
        file.secret = old.file(&file.path).is_some_and(|recorded| recorded.secret);
        file
    }));
    snapshot.normalize();
    let differences = snapshot.differences(&old);
    if differences.is_empty() {
        return Ok(None);
    }
    let event = Event {
        kind: EventKind::Capture,
        host: host.map(str::to_owned),
        at,
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
pub(crate) fn record_reported(
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

/// The state `node` was last pushed (or pulled, rolled back, rebuilt) in.
pub(crate) fn last_state(history: &dyn History, node: &str) -> Result<String, HistoryError> {
    let state = history.log(node)?.into_iter().find_map(|entry| entry.state);
    state.ok_or_else(|| HistoryError::Empty { node: node.to_owned() })
}

/// The latest snapshot of `node`, if it has one.
pub(crate) fn latest_snapshot(history: &dyn History, node: &str) -> Result<Option<(Entry, Snapshot)>, HistoryError> {
    match history.latest(node)? {
        Some(entry) => {
            let snapshot = history.snapshot(node, &entry.revision)?;
            Ok(Some((entry, snapshot)))
        }
        None => Ok(None),
    }
}

/// Records a push of `plan` when it placed or removed files (or was forced): a push that
/// changed nothing records nothing, unless the plan's scripts differ from the recorded ones;
/// a failed push records what it placed, marked as failed.
pub(crate) fn record_push(
    history: &dyn History,
    plan: &Plan,
    report: &NodeReport,
    previous: Option<&Snapshot>,
    track: &Track,
    forced: bool,
) -> Result<Option<Entry>, HistoryError> {
    if report.outcome == Outcome::RolledBack {
        // The node holds what it held before the push: the previous snapshot, and a failed
        // event that says what was tried.
        let snapshot = previous.cloned().unwrap_or_default();
        let event = Event {
            kind: EventKind::Push,
            host: None,
            at: None,
            node: plan.node.clone(),
            state: Some(plan.state.clone()),
            changed: report.changes.iter().map(|change| change.destination.clone()).collect(),
            failed: true,
            detail: Some("(rolled back)".to_owned()),
        };
        return history.record(&event, &snapshot).map(Some);
    }
    let placed = report.placed && (!report.changes.is_empty() || forced);
    let scripts_moved = report.outcome == Outcome::Unchanged
        && previous.is_some_and(|previous| previous.scripts != recorded_scripts(plan));
    if !(placed || scripts_moved) {
        return Ok(None);
    }
    let snapshot = pushed_snapshot(plan, report, previous, track);
    let changed = if forced && report.changes.is_empty() {
        plan.files.iter().map(|file| file.destination.clone()).collect()
    } else {
        report.changes.iter().map(|change| change.destination.clone()).collect()
    };
    let event = Event {
        kind: EventKind::Push,
        host: None,
        at: None,
        node: plan.node.clone(),
        state: Some(plan.state.clone()),
        changed,
        failed: report.outcome == Outcome::Failed,
        detail: match &plan.expect {
            Some(expect) => Some(format!("(plan {})", expect.id)),
            None => (forced && report.changes.is_empty()).then(|| "(forced)".to_owned()),
        },
    };
    history.record(&event, &snapshot).map(Some)
}

/// Records `found` (what the node holds where its journal says pacha placed files) as a
/// `recovered` event when it differs from `previous`; the entry and the snapshot recorded.
pub(crate) fn record_recovered(
    history: &dyn History,
    node: &str,
    previous: Option<&Snapshot>,
    found: Found,
) -> Result<Option<(Entry, Snapshot)>, HistoryError> {
    let empty = Snapshot::default();
    let changed = found.snapshot.differences(previous.unwrap_or(&empty));
    if changed.is_empty() {
        return Ok(None);
    }
    let event = Event {
        kind: EventKind::Recovered,
        host: None,
        at: None,
        node: node.to_owned(),
        state: (!found.state.is_empty()).then(|| found.state.clone()),
        changed,
        failed: false,
        detail: Some(format!("(placed by {}, not recorded then)", found.by)),
    };
    let entry = history.record(&event, &found.snapshot)?;
    Ok(Some((entry, found.snapshot)))
}
