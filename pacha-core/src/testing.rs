//! In-memory nodes and history for tests of the orchestration, with faults to inject.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::connection::{
    Applied, Apply, Connection, Connector, FileStat, Inspect, Inspection, LiveFile, ScriptRun, TransportError,
};
use crate::history::{Entry, Event, History, HistoryError, Snapshot};
use crate::master::Target;
use crate::mode::Mode;
use crate::path::NodePath;
use crate::plan::{ContentHash, PlannedScript};

#[derive(Debug, Clone)]
pub struct MemoryFile {
    pub content: Vec<u8>,
    pub mode: Mode,
    pub owner: String,
}

#[derive(Debug, Default)]
pub struct MemoryNode {
    pub files: BTreeMap<NodePath, MemoryFile>,
    pub dirs: Vec<NodePath>,
    pub unreadable: Vec<NodePath>,
    pub pending_post: Option<Vec<NodePath>>,
    pub applies: usize,
    pub ran: Vec<String>,
    pub failing_scripts: Vec<String>,
    pub unreachable: bool,
    pub unknown_host_key: bool,
}

#[derive(Default, Clone)]
pub struct Memory(pub Arc<Mutex<BTreeMap<String, MemoryNode>>>);

pub struct MemoryConnection {
    node: String,
    memory: Memory,
}

impl Connector for Memory {
    fn connect(&self, node: &str, target: &Target) -> Result<Box<dyn Connection>, TransportError> {
        let nodes = self.0.lock().unwrap();
        let state = &nodes[node];
        if state.unknown_host_key {
            return Err(TransportError::HostKey {
                host: target.host.clone(),
                detail: "no key known".into(),
            });
        }
        if state.unreachable {
            return Err(TransportError::Connect {
                host: target.host.clone(),
                detail: "Connection refused".into(),
            });
        }
        Ok(Box::new(MemoryConnection {
            node: node.to_owned(),
            memory: self.clone(),
        }))
    }
}

impl Connection for MemoryConnection {
    fn inspect(&mut self, request: &Inspect<'_>) -> Result<Inspection, TransportError> {
        let nodes = self.memory.0.lock().unwrap();
        let node = &nodes[&self.node];
        let files = request
            .paths
            .iter()
            .map(|path| match node.files.get(path) {
                Some(_) if node.unreadable.contains(path) => LiveFile::Unreadable,
                Some(file) => LiveFile::File(FileStat {
                    sha256: ContentHash::of(&file.content),
                    size: file.content.len() as u64,
                    mode: file.mode,
                    uid: 0,
                    gid: 0,
                    owner: file.owner.clone(),
                    group: "root".into(),
                }),
                None if node.dirs.contains(path) => LiveFile::Other,
                None => LiveFile::Missing,
            })
            .collect();
        let contents = request
            .paths
            .iter()
            .map(|path| {
                request
                    .contents
                    .then(|| node.files.get(path).map(|f| f.content.clone()))
                    .flatten()
            })
            .collect();
        Ok(Inspection {
            files,
            contents,
            pending_post: node.pending_post.clone(),
        })
    }

    fn apply(&mut self, request: &Apply<'_>) -> Result<Applied, TransportError> {
        let mut nodes = self.memory.0.lock().unwrap();
        let node = nodes.get_mut(&self.node).unwrap();
        node.applies += 1;
        let mut applied = Applied::default();
        let mut run = |node: &mut MemoryNode, script: &PlannedScript| {
            node.ran.push(script.id());
            let status = if node.failing_scripts.contains(&script.id()) {
                3
            } else {
                0
            };
            applied.scripts.push(ScriptRun {
                id: script.id(),
                status,
                output: b"ran\n".to_vec(),
            });
            status == 0
        };
        for script in request.pre {
            if !run(node, script) {
                return Ok(applied);
            }
        }
        if !request.post.is_empty() {
            node.pending_post = Some(request.changed.to_vec());
        }
        for file in request.files {
            node.files.insert(
                file.destination.clone(),
                MemoryFile {
                    content: file.content.to_vec(),
                    mode: file.mode,
                    owner: file.owner.clone().unwrap_or("root".into()),
                },
            );
        }
        applied.placed = true;
        applied.placed_stats = request
            .files
            .iter()
            .map(|file| {
                LiveFile::File(FileStat {
                    sha256: file.sha256,
                    size: file.content.len() as u64,
                    mode: file.mode,
                    uid: 0,
                    gid: 0,
                    owner: file.owner.clone().unwrap_or_else(|| "root".into()),
                    group: "root".into(),
                })
            })
            .collect();
        for script in request.post {
            if !run(node, script) {
                return Ok(applied);
            }
        }
        node.pending_post = None;
        Ok(applied)
    }

    fn find(&mut self, folders: &[NodePath]) -> Result<Vec<NodePath>, TransportError> {
        let nodes = self.memory.0.lock().unwrap();
        Ok(nodes[&self.node]
            .files
            .keys()
            .filter(|path| folders.iter().any(|folder| path.starts_with(folder)))
            .cloned()
            .collect())
    }

    fn close(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }
}

/// A history kept in memory.
#[derive(Default)]
pub struct MemoryHistory(pub Mutex<Vec<(Entry, Snapshot)>>);

impl History for MemoryHistory {
    fn record(&self, event: &Event, snapshot: &Snapshot) -> Result<Entry, HistoryError> {
        let mut entries = self.0.lock().unwrap();
        let entry = Entry {
            revision: format!("{:040x}", entries.len() + 1),
            node: event.node.clone(),
            kind: event.kind,
            state: event.state.clone(),
            time: entries.len() as i64,
            author: "test <test@example.com>".into(),
            summary: event.summary(),
            changed: event.changed.iter().map(ToString::to_string).collect(),
            failed: event.failed,
        };
        entries.push((entry.clone(), snapshot.clone()));
        Ok(entry)
    }

    fn log(&self, node: &str) -> Result<Vec<Entry>, HistoryError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter(|(e, _)| e.node == node)
            .map(|(e, _)| e.clone())
            .collect())
    }

    fn latest(&self, node: &str) -> Result<Option<Entry>, HistoryError> {
        Ok(self.log(node)?.into_iter().next())
    }

    fn entry(&self, node: &str, revision: &str) -> Result<Entry, HistoryError> {
        self.log(node)?
            .into_iter()
            .find(|entry| entry.revision.starts_with(revision))
            .ok_or_else(|| HistoryError::UnknownRevision {
                node: node.into(),
                revision: revision.into(),
            })
    }

    fn snapshot(&self, node: &str, revision: &str) -> Result<Snapshot, HistoryError> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(entry, _)| entry.node == node && entry.revision == revision)
            .map(|(_, snapshot)| snapshot.clone())
            .ok_or_else(|| HistoryError::UnknownRevision {
                node: node.into(),
                revision: revision.into(),
            })
    }
}
