//! Capture: the live files of a node (recorded and tracked) read into history.

use std::sync::Arc;

use crate::edges::connection::{Connection, Connector, Inspect, LiveFile, TransportError};
use crate::edges::history::History;
use crate::error::EngineError;
use crate::model::path::NodePath;
use crate::model::snapshot::{Entry, Event, EventKind, RecordedFile, RecordedLink, Snapshot};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::record::latest_snapshot;

/// The files on the node that `track` names: its literal paths, and the files found below the
/// folders of its globs that match them.
pub(crate) fn tracked_files(connection: &mut dyn Connection, track: &Track) -> Result<Vec<NodePath>, TransportError> {
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
    /// The paths whose live file differed from the history.
    pub changed: Vec<NodePath>,
    /// Files that could not be read, with why.
    pub skipped: Vec<(NodePath, String)>,
}

/// Reads the live files of `node` (its recorded files and its tracked files, or only `only`
/// when given) into history, when they differ from the latest recorded ones.
pub(crate) fn capture(
    history: &dyn History,
    node: &str,
    target: &Target,
    track: &Track,
    only: &[NodePath],
    connector: &dyn Connector,
    holder: &str,
) -> Result<Captured, EngineError> {
    let mut looked = look(history, node, target, track, only, connector, holder)?;
    if !looked.captured.changed.is_empty() {
        let event = Event {
            kind: EventKind::Capture,
            host: None,
            at: None,
            node: node.to_owned(),
            state: looked.state.clone(),
            changed: looked.captured.changed.clone(),
            failed: false,
            detail: None,
        };
        looked.captured.recorded = Some(history.record(&event, &looked.snapshot)?);
    }
    Ok(looked.captured)
}

/// The files of a node edited by hand: those whose live content differs from the latest
/// recorded one (nothing is recorded).
#[derive(Debug, Clone, Default)]
pub struct HandEdits {
    /// The state of the latest record.
    pub state: Option<String>,
    /// Each edited file.
    pub files: Vec<EditedFile>,
    /// Files that could not be read, with why.
    pub skipped: Vec<(NodePath, String)>,
}

/// A file whose live content differs from the recorded one.
#[derive(Debug, Clone)]
pub struct EditedFile {
    /// Its path on the node.
    pub path: NodePath,
    /// Its latest recorded content.
    pub recorded: Arc<[u8]>,
    /// Its live content.
    pub live: Arc<[u8]>,
}

/// Reads `node`'s recorded files and returns those edited by hand (live content differs).
pub(crate) fn hand_edits(
    history: &dyn History,
    node: &str,
    target: &Target,
    track: &Track,
    connector: &dyn Connector,
    holder: &str,
) -> Result<HandEdits, EngineError> {
    let looked = look(history, node, target, track, &[], connector, holder)?;
    let files = looked
        .snapshot
        .files
        .iter()
        .filter_map(|file| {
            let recorded = looked.old.file(&file.path)?;
            (recorded.sha256 != file.sha256).then(|| EditedFile {
                path: file.path.clone(),
                recorded: recorded.content.clone(),
                live: file.content.clone(),
            })
        })
        .collect();
    Ok(HandEdits {
        state: looked.state,
        files,
        skipped: looked.captured.skipped,
    })
}

/// What a look at the live files found: the latest recorded state and snapshot, and the
/// snapshot of the live files.
struct Looked {
    state: Option<String>,
    old: Snapshot,
    snapshot: Snapshot,
    captured: Captured,
}

fn look(
    history: &dyn History,
    node: &str,
    target: &Target,
    track: &Track,
    only: &[NodePath],
    connector: &dyn Connector,
    holder: &str,
) -> Result<Looked, EngineError> {
    let previous = latest_snapshot(history, node)?;
    let (state, old) = match &previous {
        Some((entry, snapshot)) => (entry.state.clone(), snapshot.clone()),
        None => (None, Snapshot::default()),
    };
    let failed = EngineError::transport(node, "capturing");
    let mut connection = connector
        .connect(node, target)
        .map_err(EngineError::transport(node, "capturing"))?;
    let result = (|| -> Result<Looked, EngineError> {
        let mut paths: Vec<NodePath> = if only.is_empty() {
            let mut paths: Vec<NodePath> = old.files.iter().map(|file| file.path.clone()).collect();
            paths.extend(old.links.iter().map(|link| link.path.clone()));
            paths.extend(tracked_files(connection.as_mut(), track).map_err(EngineError::transport(node, "capturing"))?);
            paths
        } else {
            only.to_vec()
        };
        paths.sort();
        paths.dedup();
        let inspection = connection
            .inspect(&Inspect {
                paths: &paths,
                contents: true,
                lock: Some(holder),
            })
            .map_err(EngineError::transport(node, "capturing"))?;
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
        // Links are recorded as links: those not looked at again stay as recorded.
        let mut links: Vec<RecordedLink> = old
            .links
            .iter()
            .filter(|link| !paths.contains(&link.path))
            .cloned()
            .collect();
        for ((path, live), content) in paths.iter().zip(&inspection.files).zip(&inspection.contents) {
            match (live, content) {
                (LiveFile::File(stat), Some(content)) => files.push(RecordedFile {
                    path: path.clone(),
                    content: Arc::from(content.as_slice()),
                    sha256: stat.sha256,
                    mode: stat.mode,
                    owner: stat.recorded_owner(),
                    group: stat.recorded_group(),
                    managed: old.file(path).is_some_and(|recorded| recorded.managed),
                    secret: old.file(path).is_some_and(|recorded| recorded.secret),
                }),
                (LiveFile::Unreadable, _) => captured.skipped.push((path.clone(), "not readable".to_owned())),
                (LiveFile::Symlink(target), _) => links.push(RecordedLink {
                    path: path.clone(),
                    target: target.clone(),
                    managed: old.link(path).is_some_and(|recorded| recorded.managed),
                }),
                (LiveFile::Directory(_), _) => captured.skipped.push((path.clone(), "a folder".to_owned())),
                (LiveFile::Other, _) => captured.skipped.push((path.clone(), "a special file".to_owned())),
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
            links,
            dirs: old.dirs.clone(),
        };
        snapshot.normalize();
        captured.changed = snapshot.differences(&old);
        Ok(Looked {
            state: state.clone(),
            old: old.clone(),
            snapshot,
            captured,
        })
    })();
    let closed = connection.close();
    let looked = result?;
    closed.map_err(failed)?;
    Ok(looked)
}
