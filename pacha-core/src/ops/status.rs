//! Status: a node's latest recorded files against its live files, in one round trip.

use crate::edges::connection::{Connector, Inspect, LiveFile};
use crate::edges::history::History;
use crate::error::EngineError;
use crate::model::path::NodePath;
use crate::model::snapshot::{Entry, EventKind, RecordedFile};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::capture::tracked_files;

/// How a recorded file differs from the live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The path on the node.
    pub path: NodePath,
    /// What differs: `content`, `missing`, `mode 0644 -> 0600`, ...
    pub what: String,
}

/// A node's recorded state against its live state.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// The node's name.
    pub node: String,
    /// The latest entry (`None`: never recorded).
    pub latest: Option<Entry>,
    /// The latest push (it may be older than the latest entry).
    pub last_push: Option<Entry>,
    /// Every recorded file that differs on the node.
    pub drift: Vec<Drift>,
}

fn drift_of(recorded: &RecordedFile, live: &LiveFile) -> Option<String> {
    match live {
        LiveFile::Missing => Some("missing".to_owned()),
        LiveFile::Symlink(_) => Some("replaced by a symlink".to_owned()),
        LiveFile::Directory(_) => Some("replaced by a folder".to_owned()),
        LiveFile::Other => Some("replaced by a special file".to_owned()),
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

/// Compares `node`'s latest recorded files with the live node, in one round trip (two when it
/// has `track` globs with wildcards: a new file that matches one is drift too).
pub(crate) fn status(
    history: &dyn History,
    node: &str,
    target: &Target,
    track: &Track,
    connector: &dyn Connector,
) -> Result<NodeStatus, EngineError> {
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
    let mut paths: Vec<NodePath> = snapshot.files.iter().map(|file| file.path.clone()).collect();
    let files = paths.len();
    paths.extend(snapshot.links.iter().map(|link| link.path.clone()));
    paths.extend(snapshot.dirs.iter().map(|dir| dir.path.clone()));
    let failed = EngineError::transport(node, "checking");
    let mut connection = match connector.connect(node, target) {
        Ok(connection) => connection,
        Err(err) => return Err(failed(err)),
    };
    let tracked = tracked_files(connection.as_mut(), track);
    let inspection = tracked.and_then(|tracked| {
        let new: Vec<NodePath> = tracked
            .into_iter()
            .filter(|path| snapshot.file(path).is_none() && snapshot.link(path).is_none())
            .collect();
        let mut all = paths.clone();
        all.extend(new.iter().cloned());
        connection
            .inspect(&Inspect {
                paths: &all,
                contents: false,
                lock: None,
            })
            .map(|inspection| (inspection, new))
    });
    let closed = connection.close();
    let (inspection, new) = inspection
        .and_then(|inspection| closed.map(|()| inspection))
        .map_err(failed)?;
    for (path, live) in new.iter().zip(inspection.files.iter().skip(paths.len())) {
        if matches!(live, LiveFile::File(_) | LiveFile::Unreadable | LiveFile::Symlink(_)) {
            status.drift.push(Drift {
                path: path.clone(),
                what: "new (matches a track glob)".to_owned(),
            });
        }
    }
    let (_, rest) = inspection.files.split_at(files.min(inspection.files.len()));
    let (live_links, live_dirs) = rest.split_at(snapshot.links.len().min(rest.len()));
    for (link, live) in snapshot.links.iter().zip(live_links) {
        let what = match live {
            LiveFile::Symlink(target) if *target == link.target => continue,
            LiveFile::Symlink(target) => format!("points to {target}, not {}", link.target),
            LiveFile::Missing => "missing".to_owned(),
            _ => "replaced by something that is not a link".to_owned(),
        };
        status.drift.push(Drift {
            path: link.path.clone(),
            what,
        });
    }
    for (dir, live) in snapshot.dirs.iter().zip(live_dirs) {
        let what = match live {
            LiveFile::Directory(stat) => {
                let mut what = Vec::new();
                if stat.mode != dir.mode {
                    what.push(format!("mode {} -> {}", dir.mode, stat.mode));
                }
                if !dir.owner.is_empty() && stat.recorded_owner() != dir.owner && stat.uid.to_string() != dir.owner {
                    what.push(format!("owner {} -> {}", dir.owner, stat.owner));
                }
                if !dir.group.is_empty() && stat.recorded_group() != dir.group && stat.gid.to_string() != dir.group {
                    what.push(format!("group {} -> {}", dir.group, stat.group));
                }
                if what.is_empty() {
                    continue;
                }
                what.join(", ")
            }
            LiveFile::Missing => "missing".to_owned(),
            _ => "replaced by something that is not a folder".to_owned(),
        };
        status.drift.push(Drift {
            path: dir.path.clone(),
            what,
        });
    }
    for (recorded, live) in snapshot.files.iter().zip(&inspection.files) {
        if let Some(what) = drift_of(recorded, live) {
            status.drift.push(Drift {
                path: recorded.path.clone(),
                what,
            });
        }
    }
    status.drift.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(status)
}
