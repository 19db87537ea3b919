//! Watch: run on a node itself. A [`Watcher`] looks at the node's recorded and tracked files
//! (one `sh` run, as a push reads a node) and sends what changed to the master, which records
//! it as a capture. A change that makes the files equal the history again (a push landing)
//! records nothing. One look is one [`Watcher::poll`]; the caller decides how often.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::edges::connection::{Connection, Connector, Inspect, LiveFile};
use crate::edges::link::MasterLink;
use crate::error::EngineError;
use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::node::TransportKind;
use crate::model::path::NodePath;
use crate::model::settings::SshSettings;
use crate::model::snapshot::{Entry, RecordedFile};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::capture::tracked_files;
use crate::ops::wire::{Answer, Client, Request, WatchList};

/// A file's state as seen: `None` when it is missing (or not a regular file pacha may read).
type Seen = Option<(ContentHash, Mode, String, String)>;

fn seen(live: &LiveFile) -> Seen {
    match live {
        LiveFile::File(stat) => Some((stat.sha256, stat.mode, stat.recorded_owner(), stat.recorded_group())),
        _ => None,
    }
}

/// The node side of `pacha watch`.
pub struct Watcher<'a> {
    client: Client<'a>,
    connector: &'a dyn Connector,
    node: String,
    target: Target,
    track: Track,
    /// What each watched path was when last seen (or as the history has it, at the start).
    baseline: BTreeMap<NodePath, Seen>,
}

impl<'a> Watcher<'a> {
    /// Opens a session with the master behind `link` and fetches what to watch. The files are
    /// compared with the history, so what changed while nobody watched is sent first.
    pub fn start(
        link: &'a mut dyn MasterLink,
        node: &str,
        connector: &'a dyn Connector,
    ) -> Result<Watcher<'a>, EngineError> {
        let client = Client::open(link)?;
        let mut watcher = Watcher {
            client,
            connector,
            node: node.to_owned(),
            target: Target {
                transport: TransportKind::Local,
                host: "localhost".to_owned(),
                port: None,
                user: None,
                root: "/".to_owned(),
                ssh: SshSettings::default(),
            },
            track: Track::default(),
            baseline: BTreeMap::new(),
        };
        watcher.refresh()?;
        Ok(watcher)
    }

    /// Asks the master again what to watch (a push may have added files).
    pub fn refresh(&mut self) -> Result<(), EngineError> {
        let list: WatchList = match self.client.call(&Request::WatchList {
            node: self.node.clone(),
        })? {
            Answer::WatchList { list } => list,
            other => return Err(self.client.unexpected(&other).into()),
        };
        let track = Track::new(&list.track).map_err(|err| crate::edges::link::LinkError::Malformed {
            master: self.client.master().to_owned(),
            detail: err.to_string(),
        })?;
        self.track = track;
        self.target.root = list.root;
        for file in list.files {
            self.baseline
                .entry(file.path)
                .or_insert(Some((file.sha256, file.mode, file.owner, file.group)));
        }
        Ok(())
    }

    /// How many files are watched (recorded ones; tracked ones join when they appear).
    pub fn watched(&self) -> usize {
        self.baseline.len()
    }

    /// The folder on this machine under which the node's files are.
    pub fn root(&self) -> &str {
        &self.target.root
    }

    /// One look at the files: sends what changed since the last look to the master; the new
    /// history entry, when the master recorded one.
    pub fn poll(&mut self) -> Result<Option<Entry>, EngineError> {
        let failed = EngineError::transport(&self.node, "watching");
        let mut connection = self.connector.connect(&self.node, &self.target).map_err(failed)?;
        let result = self.look(connection.as_mut());
        let closed = connection.close();
        let recorded = result?;
        closed.map_err(EngineError::transport(&self.node, "watching"))?;
        Ok(recorded)
    }

    fn look(&mut self, connection: &mut dyn Connection) -> Result<Option<Entry>, EngineError> {
        let failed = || EngineError::transport(&self.node, "watching");
        let mut paths: Vec<NodePath> = self.baseline.keys().cloned().collect();
        paths.extend(tracked_files(connection, &self.track).map_err(failed())?);
        paths.sort();
        paths.dedup();
        let inspection = connection
            .inspect(&Inspect {
                paths: &paths,
                contents: false,
                lock: None,
            })
            .map_err(failed())?;
        let changed: Vec<(NodePath, Seen)> = paths
            .iter()
            .zip(&inspection.files)
            .map(|(path, live)| (path.clone(), seen(live)))
            .filter(|(path, now)| self.baseline.get(path).is_none_or(|before| before != now))
            .collect();
        if changed.is_empty() {
            return Ok(None);
        }
        let present: Vec<NodePath> = changed
            .iter()
            .filter(|(_, now)| now.is_some())
            .map(|(path, _)| path.clone())
            .collect();
        let read = connection
            .inspect(&Inspect {
                paths: &present,
                contents: true,
                lock: None,
            })
            .map_err(failed())?;
        let mut files = Vec::new();
        for ((path, live), content) in present.iter().zip(&read.files).zip(read.contents) {
            if let (LiveFile::File(stat), Some(content)) = (live, content) {
                files.push(RecordedFile {
                    path: path.clone(),
                    content: Arc::from(content),
                    sha256: stat.sha256,
                    mode: stat.mode,
                    owner: stat.recorded_owner(),
                    group: stat.recorded_group(),
                    // The master keeps what it knew of the file; a new one is only tracked.
                    managed: false,
                    secret: false,
                });
            }
        }
        let removed: Vec<NodePath> = changed
            .iter()
            .filter(|(_, now)| now.is_none())
            .map(|(path, _)| path.clone())
            .collect();
        let entry = match self.client.call(&Request::RecordChanges {
            node: self.node.clone(),
            changed: files,
            removed,
        })? {
            Answer::Recorded { entry } => entry,
            other => return Err(self.client.unexpected(&other).into()),
        };
        for (path, now) in changed {
            self.baseline.insert(path, now);
        }
        Ok(entry)
    }
}
