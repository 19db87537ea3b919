//! Watch: run on a node itself. A [`Watcher`] looks at the node's recorded and tracked files
//! (one `sh` run, as a push reads a node) and writes what changed to a spool in its state
//! folder, with the time it saw it; [`Watcher::send`] hands the spooled changes to the master,
//! in order, each its own capture, and a change leaves the spool only once the master has
//! recorded it. Looking needs no master: the watch list (root, recorded files, track globs) is
//! kept in the state folder too, so a watcher keeps spooling through an outage and after a
//! restart. A change that makes the files equal the history again (a push landing, or a change
//! sent twice because the watcher died before it could forget it) records nothing.
//!
//! The state folder holds `list.json` and `spool/NNNNNNNNNNNN.json`, written atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::edges::connection::{Connection, Connector, Inspect, LiveFile};
use crate::edges::link::{LinkError, MasterLink};
use crate::error::EngineError;
use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::node::TransportKind;
use crate::model::path::NodePath;
use crate::model::settings::SshSettings;
use crate::model::snapshot::{Entry, RecordedFile, unix_seconds};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::capture::tracked_files;
use crate::ops::wire::{Answer, Client, Request, WatchList, Watched};

/// The most changes the spool holds apart: past it, a new change joins the newest one (an
/// event storm during a long outage stays bounded, each path with its latest content).
pub const MAX_SPOOLED: usize = 1000;

const LIST_FILE: &str = "list.json";
const SPOOL_DIR: &str = "spool";

/// A file's state as seen: `None` when it is missing (or not a regular file pacha may read).
type Seen = Option<(ContentHash, Mode, String, String)>;

fn seen(live: &LiveFile) -> Seen {
    match live {
        LiveFile::File(stat) => Some((stat.sha256, stat.mode, stat.recorded_owner(), stat.recorded_group())),
        _ => None,
    }
}

/// A session with the master, for [`Watcher::refresh`] and [`Watcher::send`].
pub struct WatchSession<'a> {
    client: Client<'a>,
}

impl<'a> WatchSession<'a> {
    /// Opens a session with the master behind `link` (the version handshake).
    pub fn open(link: &'a mut dyn MasterLink) -> Result<WatchSession<'a>, LinkError> {
        Ok(WatchSession {
            client: Client::open(link)?,
        })
    }
}

/// One change as spooled: what the files became, when it was seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spooled {
    /// When it was seen (seconds since the epoch).
    at: i64,
    changed: Vec<RecordedFile>,
    removed: Vec<NodePath>,
}

impl Spooled {
    /// Folds `later` into this change: each path as `later` left it.
    fn absorb(&mut self, later: Spooled) {
        let touched =
            |path: &NodePath| later.changed.iter().any(|file| &file.path == path) || later.removed.contains(path);
        self.changed.retain(|file| !touched(&file.path));
        self.removed.retain(|path| !touched(path));
        self.changed.extend(later.changed);
        self.removed.extend(later.removed);
        self.at = later.at;
    }
}

/// The node side of `pacha watch`.
pub struct Watcher<'c> {
    connector: &'c dyn Connector,
    node: String,
    folder: PathBuf,
    /// The watch list as the master last gave it, with the changes it recorded since.
    list: Option<WatchList>,
    target: Target,
    track: Track,
    /// What each watched path was when last seen: the list with the spooled changes on top.
    baseline: BTreeMap<NodePath, Seen>,
}

impl<'c> Watcher<'c> {
    /// A watcher of `node` keeping its list and spool in `folder` (created, mode 0700): what
    /// was kept there by an earlier run is picked up, so it can look before any master answers.
    pub fn open(node: &str, connector: &'c dyn Connector, folder: &Path) -> Result<Watcher<'c>, EngineError> {
        let spool = folder.join(SPOOL_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spool)
            .map_err(state_error("creating", &spool))?;
        let mut watcher = Watcher {
            connector,
            node: node.to_owned(),
            folder: folder.to_owned(),
            list: None,
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
        let path = folder.join(LIST_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                // A list that cannot be read is only a cache: the master gives it again.
                if let Ok(list) = serde_json::from_slice::<WatchList>(&bytes) {
                    watcher.take_list(list, "the watch list kept")?;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(state_error("reading", &path)(err)),
        }
        Ok(watcher)
    }

    /// Whether the watcher knows what to watch (from the master, or kept from an earlier run).
    pub fn ready(&self) -> bool {
        self.list.is_some()
    }

    /// Asks the master what to watch (a push may have added files, a pull changed them) and
    /// keeps it in the state folder.
    pub fn refresh(&mut self, session: &mut WatchSession<'_>) -> Result<(), EngineError> {
        let client = &mut session.client;
        let list: WatchList = match client.call(&Request::WatchList {
            node: self.node.clone(),
        })? {
            Answer::WatchList { list } => list,
            other => return Err(client.unexpected(&other).into()),
        };
        let master = client.master().to_owned();
        self.take_list(list, &master)?;
        self.save_list()
    }

    fn take_list(&mut self, list: WatchList, from: &str) -> Result<(), EngineError> {
        self.track = Track::new(&list.track).map_err(|err| LinkError::Malformed {
            master: from.to_owned(),
            detail: err.to_string(),
        })?;
        self.target.root.clone_from(&list.root);
        self.baseline = list
            .files
            .iter()
            .map(|file| {
                let seen = (file.sha256, file.mode, file.owner.clone(), file.group.clone());
                (file.path.clone(), Some(seen))
            })
            .collect();
        for (_, change) in self.spooled()? {
            self.see(&change);
        }
        self.list = Some(list);
        Ok(())
    }

    /// Moves the baseline past `change`.
    fn see(&mut self, change: &Spooled) {
        for file in &change.changed {
            let seen = (file.sha256, file.mode, file.owner.clone(), file.group.clone());
            self.baseline.insert(file.path.clone(), Some(seen));
        }
        for path in &change.removed {
            self.baseline.insert(path.clone(), None);
        }
    }

    fn save_list(&self) -> Result<(), EngineError> {
        let Some(list) = &self.list else { return Ok(()) };
        let bytes = serde_json::to_vec(list).map_err(|err| state_error("writing", &self.folder)(err.into()))?;
        write_atomically(&self.folder.join(LIST_FILE), &bytes)
    }

    /// How many files are watched (recorded ones; tracked ones join when they appear).
    pub fn watched(&self) -> usize {
        self.baseline.values().filter(|seen| seen.is_some()).count()
    }

    /// The folder on this machine under which the node's files are.
    pub fn root(&self) -> &str {
        &self.target.root
    }

    /// How many changes wait in the spool for the master.
    pub fn pending(&self) -> Result<usize, EngineError> {
        Ok(self.spool_files()?.len())
    }

    /// The folders on this machine whose changes a look should follow, each with whether its
    /// subfolders count: the folder of every watched file and of every literal `track` path,
    /// and the folders `track` globs search. A folder that does not exist yet is represented
    /// by its nearest existing parent.
    pub fn folders(&self) -> Vec<(PathBuf, bool)> {
        let (literal, search) = self.track.search();
        let mut folders: BTreeMap<PathBuf, bool> = BTreeMap::new();
        let parents = self.baseline.keys().chain(&literal).filter_map(|path| {
            let local = PathBuf::from(path.under_root(&self.target.root));
            local.parent().map(Path::to_path_buf)
        });
        for folder in parents {
            let folder = existing(&folder);
            folders.entry(folder).or_insert(false);
        }
        for path in &search {
            let wanted = PathBuf::from(path.under_root(&self.target.root));
            let folder = existing(&wanted);
            // Only the folder itself is watched until the searched one exists.
            let recursive = folder == wanted;
            let slot = folders.entry(folder).or_insert(recursive);
            *slot |= recursive;
        }
        folders.into_iter().collect()
    }

    /// One look at the files: what changed since the last look goes into the spool, with the
    /// time it was seen. Whether something changed; nothing is looked at before the watcher
    /// knows its list.
    pub fn look(&mut self) -> Result<bool, EngineError> {
        self.look_at(std::time::SystemTime::now())
    }

    /// [`Watcher::look`] for a change first noticed at `seen` (the first file event of a
    /// burst): that is the time the change is spooled and recorded with.
    pub fn look_at(&mut self, seen: std::time::SystemTime) -> Result<bool, EngineError> {
        if self.list.is_none() {
            return Ok(false);
        }
        let failed = EngineError::transport(&self.node, "watching");
        let mut connection = self.connector.connect(&self.node, &self.target).map_err(failed)?;
        let result = self.read_changes(connection.as_mut(), unix_seconds(seen));
        let closed = connection.close();
        let change = result?;
        closed.map_err(EngineError::transport(&self.node, "watching"))?;
        let Some(change) = change else { return Ok(false) };
        self.spool(&change)?;
        self.see(&change);
        Ok(true)
    }

    fn read_changes(&mut self, connection: &mut dyn Connection, at: i64) -> Result<Option<Spooled>, EngineError> {
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
            .filter(|(path, now)| self.baseline.get(path).map_or(now.is_some(), |before| before != now))
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
        let mut removed: Vec<NodePath> = changed
            .iter()
            .filter(|(_, now)| now.is_none())
            .map(|(path, _)| path.clone())
            .collect();
        for ((path, live), content) in present.iter().zip(&read.files).zip(read.contents) {
            match (live, content) {
                (LiveFile::File(stat), Some(content)) => files.push(RecordedFile {
                    path: path.clone(),
                    content: Arc::from(content),
                    sha256: stat.sha256,
                    mode: stat.mode,
                    owner: stat.recorded_owner(),
                    group: stat.recorded_group(),
                    // The master keeps what it knew of the file; a new one is only tracked.
                    managed: false,
                    secret: false,
                }),
                // Gone between the two looks.
                _ => removed.push(path.clone()),
            }
        }
        // A file that was missing and still is, is no change.
        removed.retain(|path| self.baseline.get(path).is_some_and(Option::is_some));
        if files.is_empty() && removed.is_empty() {
            return Ok(None);
        }
        Ok(Some(Spooled {
            at,
            changed: files,
            removed,
        }))
    }

    /// Sends the spooled changes to the master, oldest first, each recorded as its own
    /// capture with the time it was seen; a change leaves the spool once it is recorded. The
    /// entries the master wrote (a change that equals the history writes none).
    pub fn send(&mut self, session: &mut WatchSession<'_>) -> Result<Vec<Entry>, EngineError> {
        let mut entries = Vec::new();
        for (file, change) in self.spooled()? {
            let client = &mut session.client;
            let answer = client.call(&Request::RecordChanges {
                node: self.node.clone(),
                changed: change.changed.clone(),
                removed: change.removed.clone(),
                at: Some(change.at),
            })?;
            let entry = match answer {
                Answer::Recorded { entry } => entry,
                other => return Err(client.unexpected(&other).into()),
            };
            // The kept list follows the history first: dying between the two steps sends the
            // change again, which the master finds already recorded.
            if let Some(list) = &mut self.list {
                recorded(list, &change);
            }
            self.save_list()?;
            fs::remove_file(&file).map_err(state_error("removing", &file))?;
            entries.extend(entry);
        }
        Ok(entries)
    }

    fn spool(&self, change: &Spooled) -> Result<(), EngineError> {
        let files = self.spool_files()?;
        let (path, change) = match files.last() {
            Some((_, last)) if files.len() >= MAX_SPOOLED => {
                let mut joined = read_spooled(last)?;
                joined.absorb(change.clone());
                (last.clone(), joined)
            }
            _ => {
                let next = files.last().map_or(1, |(number, _)| number + 1);
                (
                    self.folder.join(SPOOL_DIR).join(format!("{next:012}.json")),
                    change.clone(),
                )
            }
        };
        let bytes = serde_json::to_vec(&change).map_err(|err| state_error("writing", &path)(err.into()))?;
        write_atomically(&path, &bytes)
    }

    /// The spool's files, oldest first, with their numbers.
    fn spool_files(&self) -> Result<Vec<(u64, PathBuf)>, EngineError> {
        let folder = self.folder.join(SPOOL_DIR);
        let mut files = Vec::new();
        for item in fs::read_dir(&folder).map_err(state_error("reading", &folder))? {
            let item = item.map_err(state_error("reading", &folder))?;
            let name = item.file_name();
            let number = name
                .to_str()
                .and_then(|name| name.strip_suffix(".json"))
                .and_then(|number| number.parse::<u64>().ok());
            if let Some(number) = number {
                files.push((number, item.path()));
            }
        }
        files.sort();
        Ok(files)
    }

    /// The spooled changes, oldest first. A file that cannot be read as one (pacha writes
    /// them atomically, so only something else did that) is set aside as `NNN.json.damaged`.
    fn spooled(&self) -> Result<Vec<(PathBuf, Spooled)>, EngineError> {
        let mut changes = Vec::new();
        for (_, path) in self.spool_files()? {
            let bytes = fs::read(&path).map_err(state_error("reading", &path))?;
            match serde_json::from_slice(&bytes) {
                Ok(change) => changes.push((path, change)),
                Err(_) => {
                    let aside = path.with_extension("json.damaged");
                    fs::rename(&path, &aside).map_err(state_error("setting aside", &path))?;
                }
            }
        }
        Ok(changes)
    }
}

/// The list after the master recorded `change`.
fn recorded(list: &mut WatchList, change: &Spooled) {
    let touched =
        |path: &NodePath| change.changed.iter().any(|file| &file.path == path) || change.removed.contains(path);
    list.files.retain(|file| !touched(&file.path));
    list.files.extend(change.changed.iter().map(|file| Watched {
        path: file.path.clone(),
        sha256: file.sha256,
        mode: file.mode,
        owner: file.owner.clone(),
        group: file.group.clone(),
    }));
    list.files.sort_by(|a, b| a.path.cmp(&b.path));
}

fn read_spooled(path: &Path) -> Result<Spooled, EngineError> {
    let bytes = fs::read(path).map_err(state_error("reading", path))?;
    serde_json::from_slice(&bytes).map_err(|err| state_error("reading", path)(err.into()))
}

/// The nearest folder of `path` (itself included) that exists.
fn existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|folder| folder.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

fn state_error(doing: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_owned();
    move |source| EngineError::State { doing, path, source }
}

/// Writes `bytes` to `path` through a temporary file beside it (mode 0600: a spooled change
/// may hold a secret-bearing file), synced before and after the rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let temporary = folder.join(format!(".tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        fs::File::open(folder)?.sync_all()
    })();
    written.map_err(|err| {
        let _ = fs::remove_file(&temporary);
        state_error("writing", path)(err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> RecordedFile {
        RecordedFile {
            path: NodePath::parse(path).unwrap(),
            content: Arc::from(content.as_bytes()),
            sha256: ContentHash::of(content.as_bytes()),
            mode: Mode::from_bits(0o644).unwrap(),
            owner: "root".into(),
            group: "root".into(),
            managed: false,
            secret: false,
        }
    }

    #[test]
    fn a_later_change_wins_per_path_when_changes_are_joined() {
        let mut first = Spooled {
            at: 1,
            changed: vec![file("/a", "1"), file("/b", "1")],
            removed: vec![NodePath::parse("/c").unwrap()],
        };
        first.absorb(Spooled {
            at: 2,
            changed: vec![file("/a", "2"), file("/c", "2")],
            removed: vec![NodePath::parse("/b").unwrap()],
        });
        assert_eq!(first.at, 2);
        let changed: Vec<(&str, &[u8])> = first
            .changed
            .iter()
            .map(|file| (file.path.as_str(), &*file.content))
            .collect();
        assert_eq!(changed, [("/a", &b"2"[..]), ("/c", &b"2"[..])]);
        assert_eq!(first.removed, [NodePath::parse("/b").unwrap()]);
    }

    #[test]
    fn a_damaged_spool_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let connector = crate::testing::Memory::with_nodes(&["web1"]);
        let watcher = Watcher::open("web1", &connector, dir.path()).unwrap();
        watcher
            .spool(&Spooled {
                at: 1,
                changed: vec![file("/a", "1")],
                removed: Vec::new(),
            })
            .unwrap();
        fs::write(dir.path().join("spool/000000000002.json"), "{\"at\": 2, \"chan").unwrap();
        assert_eq!(watcher.spooled().unwrap().len(), 1);
        assert!(dir.path().join("spool/000000000002.json.damaged").is_file());
        assert_eq!(watcher.pending().unwrap(), 1);
    }

    #[test]
    fn the_spool_is_bounded_and_keeps_the_latest_content() {
        let dir = tempfile::tempdir().unwrap();
        let connector = crate::testing::Memory::with_nodes(&["web1"]);
        let watcher = Watcher::open("web1", &connector, dir.path()).unwrap();
        for round in 0..MAX_SPOOLED + 5 {
            watcher
                .spool(&Spooled {
                    at: i64::try_from(round).unwrap(),
                    changed: vec![file("/a", &round.to_string())],
                    removed: Vec::new(),
                })
                .unwrap();
        }
        let spooled = watcher.spooled().unwrap();
        assert_eq!(spooled.len(), MAX_SPOOLED);
        let (_, last) = spooled.last().unwrap();
        assert_eq!(&*last.changed[0].content, (MAX_SPOOLED + 4).to_string().as_bytes());
        assert_eq!(spooled[0].1.at, 0);
    }
}
