//! What the history records of a node: a [`Snapshot`] of its files (contents, owner, group,
//! mode) and scripts per [`Event`], and the [`Entry`] that `pacha log` lists for it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::hash::{ContentHash, Damaged};
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::plan::Stage;

/// One file as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// The path on the node.
    pub path: NodePath,
    #[serde(with = "crate::model::bytes")]
    /// Its contents.
    pub content: Arc<[u8]>,
    /// The hash of `content`.
    pub sha256: ContentHash,
    /// Its permission bits.
    pub mode: Mode,
    /// Owner and group names as the node reported them (a number when the node has no name).
    pub owner: String,
    /// The group, as the node reported it.
    pub group: String,
    /// Whether pacha placed it (a push, pull, rollback): a push removes it once the plan no
    /// longer has it. Files only captured (`track` globs) are not managed.
    #[serde(default = "managed_default")]
    pub managed: bool,
    /// Whether it holds a secret (its rendering read one): never shown unless asked for.
    #[serde(default)]
    pub secret: bool,
}

fn managed_default() -> bool {
    true
}

/// A symbolic link as recorded (a git symlink in the history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLink {
    /// The path on the node.
    pub path: NodePath,
    /// Its target, as written.
    pub target: String,
    /// Whether pacha placed it (`links:`), or only captured it.
    #[serde(default = "managed_default")]
    pub managed: bool,
}

/// A managed folder as recorded (in `meta.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDir {
    /// The path on the node.
    pub path: NodePath,
    /// Its permission bits.
    pub mode: Mode,
    /// The owner, as the node reported it.
    pub owner: String,
    /// The group, as the node reported it.
    pub group: String,
}

/// One script as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedScript {
    /// Pre or post.
    pub stage: Stage,
    /// Its phase folder.
    pub phase: String,
    /// Its file name in the phase folder.
    pub name: String,
    #[serde(with = "crate::model::bytes")]
    /// Its contents.
    pub content: Arc<[u8]>,
    /// The hash of `content`.
    pub sha256: ContentHash,
}

/// Everything recorded of a node at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sorted by path.
    pub files: Vec<RecordedFile>,
    /// Pre scripts then post scripts, in run order.
    pub scripts: Vec<RecordedScript>,
    /// Symbolic links, sorted by path.
    #[serde(default)]
    pub links: Vec<RecordedLink>,
    /// Managed folders, sorted by path.
    #[serde(default)]
    pub dirs: Vec<RecordedDir>,
}

impl Snapshot {
    /// The recorded file at `path`.
    pub fn file(&self, path: &NodePath) -> Option<&RecordedFile> {
        self.files
            .binary_search_by(|file| file.path.cmp(path))
            .ok()
            .map(|index| &self.files[index])
    }

    /// Sorts files by path, keeping the last of duplicates.
    pub fn normalize(&mut self) {
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.files.reverse();
        self.files.dedup_by(|a, b| a.path == b.path);
        self.files.reverse();
        self.links.sort_by(|a, b| a.path.cmp(&b.path));
        self.links.reverse();
        self.links.dedup_by(|a, b| a.path == b.path);
        self.links.reverse();
        self.dirs.sort_by(|a, b| a.path.cmp(&b.path));
        self.dirs.reverse();
        self.dirs.dedup_by(|a, b| a.path == b.path);
        self.dirs.reverse();
    }

    /// The recorded link at `path`.
    pub fn link(&self, path: &NodePath) -> Option<&RecordedLink> {
        self.links.iter().find(|link| &link.path == path)
    }

    /// The recorded folder at `path`.
    pub fn dir(&self, path: &NodePath) -> Option<&RecordedDir> {
        self.dirs.iter().find(|dir| &dir.path == path)
    }

    /// Checks that every content matches its hash (a snapshot received over the wire).
    pub fn verify(&self) -> Result<(), Damaged> {
        for file in &self.files {
            Damaged::check(&file.content, file.sha256, || file.path.to_string())?;
        }
        for script in &self.scripts {
            Damaged::check(&script.content, script.sha256, || {
                format!("script {}/{}/{}", script.stage, script.phase, script.name)
            })?;
        }
        Ok(())
    }

    /// The paths whose recorded file differs from `other` (or exists in only one of them).
    pub fn differences(&self, other: &Snapshot) -> Vec<NodePath> {
        let mut changed: Vec<NodePath> = Vec::new();
        for file in &self.files {
            match other.file(&file.path) {
                Some(theirs)
                    if theirs.sha256 == file.sha256
                        && theirs.mode == file.mode
                        && theirs.owner == file.owner
                        && theirs.group == file.group => {}
                _ => changed.push(file.path.clone()),
            }
        }
        for file in &other.files {
            if self.file(&file.path).is_none() {
                changed.push(file.path.clone());
            }
        }
        for link in &self.links {
            if other.link(&link.path).is_none_or(|theirs| theirs.target != link.target) {
                changed.push(link.path.clone());
            }
        }
        for link in &other.links {
            if self.link(&link.path).is_none() {
                changed.push(link.path.clone());
            }
        }
        for dir in &self.dirs {
            if other.dir(&dir.path) != Some(dir) {
                changed.push(dir.path.clone());
            }
        }
        for dir in &other.dirs {
            if self.dir(&dir.path).is_none() {
                changed.push(dir.path.clone());
            }
        }
        changed.sort();
        changed.dedup();
        changed
    }
}

/// What happened to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A push from the master.
    Push,
    /// A push the node asked for (`pacha pull`).
    Pull,
    /// Live files read into history (`pacha capture`, `pacha watch`).
    Capture,
    /// Files placed as recorded at an earlier revision.
    Rollback,
    /// A host rebuilt from the latest recorded state.
    Rebuild,
    /// What a node held that the history had missed (an interrupted push), recorded by the
    /// next command that took the node's lock.
    Recovered,
}

impl EventKind {
    /// The name the history and `--json` use.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Pull => "pull",
            EventKind::Capture => "capture",
            EventKind::Rollback => "rollback",
            EventKind::Rebuild => "rebuild",
            EventKind::Recovered => "recovered",
        }
    }

    /// Every kind, so that each one recorded can be read back (tested below).
    pub const ALL: [EventKind; 6] = [
        EventKind::Push,
        EventKind::Pull,
        EventKind::Capture,
        EventKind::Rollback,
        EventKind::Rebuild,
        EventKind::Recovered,
    ];

    /// The kind named `text`.
    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The node it happened to.
    pub node: String,
    /// The state pushed, when there is one.
    pub state: Option<String>,
    /// The paths this event changed on the node.
    pub changed: Vec<NodePath>,
    /// Whether the event failed part way (what was placed is still recorded).
    pub failed: bool,
    /// More to say in the summary: `to <rev>` for a rollback, `onto <host>` for a rebuild.
    pub detail: Option<String>,
    /// The host that did it by itself (a pull or a watch), as it named itself: the record's
    /// author is `pacha@<host>` and it carries a `Pacha-Host` trailer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// When the host saw it happen (seconds since the epoch), when that was before it was
    /// recorded: a watcher's change sent after an outage. The record's author date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
}

impl Event {
    /// The one-line summary: `push web1 production: 3 files changed`.
    pub fn summary(&self) -> String {
        let mut text = format!("{} {}", self.kind, self.node);
        if let Some(state) = &self.state {
            text.push(' ');
            text.push_str(state);
        }
        if let Some(detail) = &self.detail {
            text.push(' ');
            text.push_str(detail);
        }
        if self.failed {
            text.push_str(" (failed)");
        }
        let count = self.changed.len();
        text.push_str(&format!(": {count} file{} changed", if count == 1 { "" } else { "s" }));
        text
    }
}

/// `time` as seconds since the Unix epoch, as [`Entry::time`] and [`Event::at`] count.
pub fn unix_seconds(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

/// A recorded event, as `pacha log` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The revision (a commit id of the history).
    pub revision: String,
    /// The node it happened to.
    pub node: String,
    /// What happened.
    pub kind: EventKind,
    /// The state pushed, when there is one.
    pub state: Option<String>,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Who ran pacha: `Name <email>`.
    pub author: String,
    /// The one-line summary.
    pub summary: String,
    /// The paths it changed.
    pub changed: Vec<String>,
    /// Whether it failed part way.
    pub failed: bool,
    /// The master's git revision it was rendered from (`<commit>`, `<commit>-dirty`), when
    /// the master is in a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_reads_back() {
        // A new kind fails to compile here until it is listed in ALL too.
        let listed = |kind: EventKind| match kind {
            EventKind::Push
            | EventKind::Pull
            | EventKind::Capture
            | EventKind::Rollback
            | EventKind::Rebuild
            | EventKind::Recovered => EventKind::ALL.contains(&kind),
        };
        for kind in EventKind::ALL {
            assert!(listed(kind));
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
    }
}
