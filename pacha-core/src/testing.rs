//! In-memory fakes of the edges, for tests of the orchestration and for embedders' own tests:
//! nodes with faults to inject ([`Memory`]), a history ([`MemoryHistory`]) and a planner that
//! gives every node the same files ([`StaticPlanner`]). Behind the `testing` feature.
#![expect(clippy::unwrap_used, reason = "a poisoned lock in a test fake is a failed test")]
#![expect(missing_docs, reason = "test fakes whose fields are their documentation")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::edges::connection::{
    Applied, Apply, Connection, Connector, FileStat, Inspect, Inspection, LiveFile, ScriptRun, TransportError,
};
use crate::edges::history::{History, HistoryError};
use crate::edges::planner::{PlanError, Planner};
use crate::master::Master;
use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::plan::{Plan, PlannedFile, PlannedScript};
use crate::model::snapshot::{Entry, Event, Snapshot};
use crate::model::target::Target;

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
    /// Symbolic links and their targets.
    pub links: BTreeMap<NodePath, String>,
    pub unreadable: Vec<NodePath>,
    pub pending_post: Option<Vec<NodePath>>,
    /// The journal the last apply stored.
    pub journal: Option<Vec<u8>>,
    pub applies: usize,
    pub ran: Vec<String>,
    pub failing_scripts: Vec<String>,
    pub unreachable: bool,
    pub unknown_host_key: bool,
}

/// Nodes in memory, by name.
#[derive(Default, Clone)]
pub struct Memory(pub Arc<Mutex<BTreeMap<String, MemoryNode>>>);

impl Memory {
    /// Empty nodes named `nodes`.
    pub fn with_nodes(nodes: &[&str]) -> Memory {
        let memory = Memory::default();
        for node in nodes {
            memory
                .0
                .lock()
                .unwrap()
                .insert((*node).to_owned(), MemoryNode::default());
        }
        memory
    }

    /// The contents of `path` on `node`, if it has the file.
    pub fn content(&self, node: &str, path: &str) -> Option<Vec<u8>> {
        let path = NodePath::parse(path).ok()?;
        self.0
            .lock()
            .unwrap()
            .get(node)?
            .files
            .get(&path)
            .map(|file| file.content.clone())
    }
}

pub struct MemoryConnection {
    node: String,
    memory: Memory,
}

impl Connector for Memory {
    fn connect(&self, node: &str, target: &Target) -> Result<Box<dyn Connection>, TransportError> {
        let nodes = self.0.lock().unwrap();
        let Some(state) = nodes.get(node) else {
            return Err(TransportError::Connect {
                host: target.host.clone(),
                detail: format!("no node {node} in memory"),
            });
        };
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
                _ if node.links.contains_key(path) => LiveFile::Symlink(node.links[path].clone()),
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
                None if node.dirs.contains(path) => LiveFile::Directory(crate::edges::connection::DirStat {
                    mode: Mode::EXECUTABLE,
                    uid: 0,
                    gid: 0,
                    owner: "root".into(),
                    group: "root".into(),
                }),
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
            journal: node.journal.clone(),
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
        node.journal = Some(request.journal.to_vec());
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
        for path in request.remove.iter().chain(request.remove_dirs) {
            node.files.remove(path);
            node.links.remove(path);
            node.dirs.retain(|dir| dir != path);
        }
        for (path, target) in request.links {
            node.files.remove(path);
            node.links.insert(path.clone(), target.clone());
        }
        for dir in request.dirs {
            if !node.dirs.contains(&dir.path) {
                node.dirs.push(dir.path.clone());
            }
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
            master: None,
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

/// A planner that gives every node the same files, changeable between pushes.
pub struct StaticPlanner<'a> {
    master: &'a Master,
    files: Mutex<Vec<(String, String)>>,
}

impl<'a> StaticPlanner<'a> {
    /// Plans `files` (path and contents) for every node of `master`.
    pub fn new(master: &'a Master, files: &[(&str, &str)]) -> StaticPlanner<'a> {
        let planner = StaticPlanner {
            master,
            files: Mutex::new(Vec::new()),
        };
        planner.set_files(files);
        planner
    }

    /// Plans `files` from now on.
    pub fn set_files(&self, files: &[(&str, &str)]) {
        *self.files.lock().unwrap() = files
            .iter()
            .map(|(path, content)| ((*path).to_owned(), (*content).to_owned()))
            .collect();
    }
}

impl Planner for StaticPlanner<'_> {
    fn plan(&self, node: &str, state: &str) -> Result<Plan, PlanError> {
        let target = self.master.target(node)?;
        let mut files = Vec::new();
        for (path, content) in self.files.lock().unwrap().iter() {
            files.push(PlannedFile {
                destination: NodePath::parse(path)?,
                app: "static".to_owned(),
                source: "static".to_owned(),
                owner: None,
                group: None,
                mode: Mode::FILE,
                dir_mode: Mode::EXECUTABLE,
                content: Arc::from(content.as_bytes()),
                sha256: ContentHash::of(content.as_bytes()),
                secret: false,
                validate: None,
            });
        }
        files.sort_by(|a, b| a.destination.cmp(&b.destination));
        Ok(Plan {
            node: node.to_owned(),
            state: state.to_owned(),
            target,
            files,
            scripts: Vec::new(),
            secrets: Vec::new(),
            absent: Vec::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            script_timeout: None,
            keep_on_failure: false,
            expect: None,
            confirm_ssh: None,
        })
    }
}

/// Pushes `plans` without recording them: for tests of a [`Connector`] that check placement
/// alone. Everything else goes through [`crate::Engine`], which records.
pub fn push_unrecorded(
    plans: &[Plan],
    connector: &dyn Connector,
    options: &crate::PushOptions,
    reporter: &dyn crate::Reporter,
) -> Vec<crate::NodeReport> {
    crate::ops::push::push_plans(plans, connector, options, reporter, &crate::ops::push::NoBooks)
}
