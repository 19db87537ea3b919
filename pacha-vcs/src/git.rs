//! The git2 implementation of the history.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature, Tree};
use pacha_core::{
    AgeKeys, ContentHash, Entry, Event, EventKind, History, HistoryError, NodePath, RecordedDir, RecordedFile,
    RecordedLink, RecordedScript, Snapshot,
};

use crate::master::MasterRevision;
use crate::meta::{DirMeta, FileMeta, LinkMeta, NodeMeta, ScriptMeta};

/// The branch every event is recorded on.
mod remote;

pub use remote::{Remote, Synced};

const BRANCH: &str = "refs/heads/main";
const META_FILE: &str = "meta.yaml";

/// Who records: the person running pacha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The name on the commits.
    pub name: String,
    /// The email on the commits.
    pub email: String,
}

impl Author {
    /// An author from a name and an email.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Author {
        Author {
            name: name.into(),
            email: email.into(),
        }
    }
}

/// Node histories in a bare git repository, created with the first record.
pub struct GitHistory {
    path: PathBuf,
    /// `None` until something is recorded in a history that did not exist yet.
    repo: Mutex<Option<Repository>>,
    author: Author,
    /// With recipients, files that hold secrets are stored encrypted to them.
    age: AgeKeys,
    /// The git revision of the master that each record carries.
    master: Option<MasterRevision>,
    /// A master folder (and what to leave out) whose revision is read at the first record
    /// instead ([`GitHistory::with_master_at_first_record`]).
    master_at: Option<(PathBuf, Vec<PathBuf>)>,
    master_read: std::sync::OnceLock<Option<MasterRevision>>,
    /// Where the history is shared, when it is.
    remote: Option<Remote>,
    /// Why the last record could not be sent to the remote.
    problem: Mutex<Option<String>>,
    /// When a fetch last failed: records made soon after stay local without trying again
    /// (a push of many nodes would otherwise wait for an unreachable remote once per node).
    unreachable_since: Mutex<Option<std::time::Instant>>,
}

/// A git (or file system) error with the repository it happened in.
fn storage(path: &Path, context: &str, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> HistoryError {
    HistoryError::Storage {
        path: path.display().to_string(),
        context: context.to_owned(),
        source: err.into(),
    }
}

/// The ref that points at `node`'s newest commit (node names may hold characters refs cannot).
fn node_ref(node: &str) -> String {
    let hex: String = node.bytes().map(|byte| format!("{byte:02x}")).collect();
    format!("refs/pacha/nodes/{hex}")
}

/// A path component as a git tree entry name: git refuses `.git`, so that one (and anything
/// starting with `%`, to stay unambiguous) gets its first character percent-encoded. The real
/// path is in `meta.yaml`.
fn tree_name(component: &str) -> String {
    if component.eq_ignore_ascii_case(".git") || component.starts_with('%') {
        let first = component.as_bytes()[0];
        format!("%{first:02X}{}", &component[1..])
    } else {
        component.to_owned()
    }
}

/// Where a recorded file lives in the node's tree.
fn tree_path(path: &NodePath) -> String {
    std::iter::once("files".to_owned())
        .chain(path.relative().split('/').map(tree_name))
        .collect::<Vec<_>>()
        .join("/")
}

/// A trailer value on one line.
fn escape(value: &str) -> String {
    value.replace('%', "%25").replace('\n', "%0A").replace('\r', "%0D")
}

fn unescape(value: &str) -> String {
    value.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
}

/// The `Pacha-*` trailers of a commit message.
fn trailers(message: &str) -> BTreeMap<&str, String> {
    message
        .lines()
        .filter_map(|line| line.strip_prefix("Pacha-"))
        .filter_map(|line| line.split_once(": "))
        .map(|(key, value)| (key, unescape(value)))
        .collect()
}

/// A tree being built from memory: blobs and folders by name.
#[derive(Default)]
struct TreeDraft {
    blobs: BTreeMap<String, (Oid, FileMode)>,
    folders: BTreeMap<String, TreeDraft>,
}

impl TreeDraft {
    fn insert(&mut self, path: &[&str], oid: Oid, mode: FileMode) {
        match path {
            [] => {}
            [name] => {
                self.blobs.insert((*name).to_owned(), (oid, mode));
            }
            [folder, rest @ ..] => self
                .folders
                .entry((*folder).to_owned())
                .or_default()
                .insert(rest, oid, mode),
        }
    }

    fn write(&self, repo: &Repository) -> Result<Oid, git2::Error> {
        let mut builder = repo.treebuilder(None)?;
        for (name, (oid, mode)) in &self.blobs {
            builder.insert(name, *oid, i32::from(*mode))?;
        }
        for (name, folder) in &self.folders {
            builder.insert(name, folder.write(repo)?, i32::from(FileMode::Tree))?;
        }
        builder.write()
    }
}

impl GitHistory {
    /// Opens the history at `path`. When there is none yet, nothing is created until the
    /// first record (so reading commands and dry runs leave no trace); reading it meanwhile
    /// finds no entries. `author` signs the commits this handle records.
    pub fn open(path: &Path, author: Author) -> Result<GitHistory, HistoryError> {
        let repo = match Repository::open_bare(path) {
            Ok(repo) => Some(repo),
            Err(err) if err.code() == ErrorCode::NotFound && !path.join("HEAD").exists() => None,
            Err(err) => return Err(storage(path, "opening the history", err)),
        };
        Ok(GitHistory {
            path: path.to_path_buf(),
            repo: Mutex::new(repo),
            author,
            age: AgeKeys::default(),
            master: None,
            master_at: None,
            master_read: std::sync::OnceLock::new(),
            remote: None,
            problem: Mutex::new(None),
            unreachable_since: Mutex::new(None),
        })
    }

    /// Makes every record carry `revision`, the master's git revision its plans were rendered
    /// from (`Pacha-Master`, and `Pacha-Master-Changed` naming its uncommitted files).
    pub fn with_master(mut self, revision: Option<MasterRevision>) -> GitHistory {
        self.set_master(revision);
        self
    }

    /// Like [`GitHistory::with_master`], but the revision of the master in `dir` is read when
    /// the first record is made (a `pacha serve` session that records nothing never reads
    /// the master's git status).
    pub fn with_master_at_first_record(mut self, dir: &Path, exclude: Vec<PathBuf>) -> GitHistory {
        self.set_master_at_first_record(dir, exclude);
        self
    }

    /// [`GitHistory::with_master_at_first_record`] on a history already in use.
    pub fn set_master_at_first_record(&mut self, dir: &Path, exclude: Vec<PathBuf>) {
        self.master_at = Some((dir.to_path_buf(), exclude));
    }

    /// The revision records carry: given, or read from the master at the first record.
    fn master_revision(&self) -> Option<&MasterRevision> {
        if self.master.is_some() {
            return self.master.as_ref();
        }
        self.master_read
            .get_or_init(|| {
                let (dir, exclude) = self.master_at.as_ref()?;
                MasterRevision::of(dir, exclude).ok().flatten()
            })
            .as_ref()
    }

    /// [`GitHistory::with_master`] on a history already in use.
    pub fn set_master(&mut self, revision: Option<MasterRevision>) {
        self.master = revision;
    }

    /// Stores files that hold secrets encrypted to `keys`' recipients (when it has any), and
    /// decrypts them with its identity when they are read.
    pub fn with_age(mut self, keys: AgeKeys) -> GitHistory {
        self.age = keys;
        self
    }

    /// The folder of the repository.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, context: &str, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> HistoryError {
        storage(&self.path, context, err)
    }

    /// One recorder at a time, across processes: the lock file is released when the file is
    /// closed, also when the process dies.
    fn lock(&self) -> Result<File, HistoryError> {
        let lock = File::create(self.path.join("pacha.lock")).map_err(|err| self.err("locking the history", err))?;
        lock.lock().map_err(|err| self.err("locking the history", err))?;
        Ok(lock)
    }

    /// The repository, if it exists yet.
    fn existing(&self) -> std::sync::MutexGuard<'_, Option<Repository>> {
        self.repo.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates an empty bare repository at `path`, private to its owner. It is made in a
    /// folder beside and renamed into place, so a recorder never sees a half-made repository;
    /// when another recorder made one first, that one is used.
    fn create(&self) -> Result<Repository, HistoryError> {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map_or_else(|| "hosts".into(), |name| name.to_string_lossy());
        fs::create_dir_all(parent).map_err(|err| self.err("creating the history's folder", err))?;
        static DRAFTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let draft = parent.join(format!(
            ".{name}.new-{}-{}",
            std::process::id(),
            DRAFTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&draft);
        let mut options = RepositoryInitOptions::new();
        options.bare(true).initial_head("main").mkpath(true);
        Repository::init_opts(&draft, &options).map_err(|err| self.err("creating the history", err))?;
        fs::set_permissions(&draft, fs::Permissions::from_mode(0o700))
            .map_err(|err| self.err("making the history private", err))?;
        fs::write(
            draft.join("description"),
            "pacha history: one commit per push, capture, rollback or rebuild of a node\n",
        )
        .map_err(|err| self.err("writing the description", err))?;
        if fs::rename(&draft, &self.path).is_err() {
            // Someone else's is in place (or the path is taken): use what is there.
            let _ = fs::remove_dir_all(&draft);
        }
        Repository::open_bare(&self.path).map_err(|err| self.err("opening the history", err))
    }

    /// The entry a commit records, or `None` for a commit pacha did not write.
    fn entry_of(&self, commit: &git2::Commit<'_>) -> Option<Entry> {
        let message = commit.message().ok()?;
        let trailers = trailers(message);
        let node = trailers.get("Node")?.clone();
        let kind = EventKind::parse(trailers.get("Event")?)?;
        let summary = message.lines().next().unwrap_or_default().to_owned();
        let changed = message
            .lines()
            .skip(2)
            .take_while(|line| !line.is_empty())
            .map(unescape)
            .collect();
        let author = commit.author();
        Some(Entry {
            revision: commit.id().to_string(),
            node,
            kind,
            state: trailers.get("State").cloned(),
            // When it happened: a watcher's change sent late keeps its own time.
            time: author.when().seconds(),
            author: format!("{} <{}>", author.name().unwrap_or("?"), author.email().unwrap_or("?")),
            summary,
            changed,
            failed: trailers.get("Failed").is_some_and(|value| value == "yes"),
            master: trailers.get("Master").cloned(),
        })
    }

    /// The newest commit of `node`: its ref, unless the last record was cut short between
    /// moving `main` and moving the node's ref (then `main`'s tip, which is the node's).
    fn head_of(&self, repo: &Repository, node: &str) -> Result<Option<Oid>, HistoryError> {
        let from_ref = match repo.refname_to_id(&node_ref(node)) {
            Ok(oid) => Some(oid),
            Err(err) if err.code() == ErrorCode::NotFound => None,
            Err(err) => return Err(self.err("reading the node's ref", err)),
        };
        let tip = match repo.refname_to_id(BRANCH) {
            Ok(oid) => oid,
            Err(err) if err.code() == ErrorCode::NotFound || err.code() == ErrorCode::UnbornBranch => {
                return Ok(from_ref);
            }
            Err(err) => return Err(self.err("reading main", err)),
        };
        if Some(tip) != from_ref {
            let commit = repo.find_commit(tip).map_err(|err| self.err("reading main", err))?;
            if self.entry_of(&commit).is_some_and(|entry| entry.node == node) {
                return Ok(Some(tip));
            }
        }
        Ok(from_ref)
    }

    fn node_tree<'r>(&self, repo: &'r Repository, revision: Oid, node: &str) -> Result<Tree<'r>, HistoryError> {
        let commit = repo
            .find_commit(revision)
            .map_err(|err| self.err("reading a commit", err))?;
        let tree = commit.tree().map_err(|err| self.err("reading a tree", err))?;
        let entry = tree.get_name(node).ok_or_else(|| HistoryError::Corrupt {
            revision: revision.to_string(),
            message: format!("no folder for node {node:?}"),
        })?;
        repo.find_tree(entry.id())
            .map_err(|err| self.err("reading a tree", err))
    }

    fn blob(&self, repo: &Repository, tree: &Tree<'_>, path: &str, revision: Oid) -> Result<Arc<[u8]>, HistoryError> {
        let entry = tree.get_path(Path::new(path)).map_err(|_| HistoryError::Corrupt {
            revision: revision.to_string(),
            message: format!("{path} is missing"),
        })?;
        let blob = repo
            .find_blob(entry.id())
            .map_err(|err| self.err("reading a file", err))?;
        Ok(Arc::from(blob.content()))
    }

    /// Removes the lock file of ref `name` left by a recorder that was killed while moving it.
    /// Only called under the history's own lock, so no living recorder holds it.
    fn clear_stale_ref_lock(&self, name: &str) -> Result<(), HistoryError> {
        let lock = self.path.join(format!("{name}.lock"));
        match fs::remove_file(&lock) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(self.err("removing a stale ref lock", err)),
            _ => Ok(()),
        }
    }

    fn record_locked(&self, repo: &Repository, event: &Event, snapshot: &Snapshot) -> Result<Entry, HistoryError> {
        self.clear_stale_ref_lock(BRANCH)?;
        self.clear_stale_ref_lock(&node_ref(&event.node))?;
        let tip = match repo.refname_to_id(BRANCH) {
            Ok(oid) => Some(oid),
            Err(err) if err.code() == ErrorCode::NotFound || err.code() == ErrorCode::UnbornBranch => None,
            Err(err) => return Err(self.err("reading main", err)),
        };
        if let Some(tip) = tip {
            self.repair_node_ref(repo, tip)?;
        }
        let previous = self.head_of(repo, &event.node)?;
        let node_tree = self.write_node_tree(repo, event, snapshot)?;

        let parent = tip
            .map(|oid| repo.find_commit(oid))
            .transpose()
            .map_err(|err| self.err("reading main", err))?;
        let base = parent
            .as_ref()
            .map(git2::Commit::tree)
            .transpose()
            .map_err(|err| self.err("reading main", err))?;
        let mut root = repo
            .treebuilder(base.as_ref())
            .map_err(|err| self.err("writing the tree", err))?;
        root.insert(&event.node, node_tree, i32::from(FileMode::Tree))
            .map_err(|err| self.err(&format!("recording node {:?}", event.node), err))?;
        let root = root.write().map_err(|err| self.err("writing the tree", err))?;
        let root = repo.find_tree(root).map_err(|err| self.err("writing the tree", err))?;

        let message = commit_message(event, previous, self.master_revision());
        let signature =
            Signature::now(&self.author.name, &self.author.email).map_err(|err| self.err("signing the commit", err))?;
        // What a host did by itself (a pull, a watch) is authored by that host; the person
        // running the master commits it.
        // A change a host saw before it could be recorded (a watcher after an outage) keeps
        // the time it happened as its author date.
        let author = match (&event.host, event.at) {
            (Some(host), Some(at)) => {
                let name = format!("pacha@{host}");
                Signature::new(&name, &name, &git2::Time::new(at, 0))
                    .map_err(|err| self.err("signing the commit", err))?
            }
            (Some(host), None) => {
                let name = format!("pacha@{host}");
                Signature::now(&name, &name).map_err(|err| self.err("signing the commit", err))?
            }
            (None, Some(at)) => Signature::new(&self.author.name, &self.author.email, &git2::Time::new(at, 0))
                .map_err(|err| self.err("signing the commit", err))?,
            (None, None) => signature.clone(),
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        // Moving main is the moment the event is recorded: libgit2 writes the ref through a
        // lock file and a rename, and only if main is still at the parent.
        let commit = repo
            .commit(Some(BRANCH), &author, &signature, &message, &root, &parents)
            .map_err(|err| self.err("recording the commit", err))?;
        repo.reference(&node_ref(&event.node), commit, true, "pacha: record")
            .map_err(|err| self.err("moving the node's ref", err))?;
        let commit = repo
            .find_commit(commit)
            .map_err(|err| self.err("reading the commit", err))?;
        self.entry_of(&commit).ok_or_else(|| HistoryError::Corrupt {
            revision: commit.id().to_string(),
            message: "the commit just written cannot be read back".to_owned(),
        })
    }

    /// A record cut short after moving main leaves the node ref of main's tip behind: moves it.
    fn repair_node_ref(&self, repo: &Repository, tip: Oid) -> Result<(), HistoryError> {
        let commit = repo.find_commit(tip).map_err(|err| self.err("reading main", err))?;
        if let Some(entry) = self.entry_of(&commit)
            && repo.refname_to_id(&node_ref(&entry.node)).ok() != Some(tip)
        {
            self.clear_stale_ref_lock(&node_ref(&entry.node))?;
            repo.reference(&node_ref(&entry.node), tip, true, "pacha: repair")
                .map_err(|err| self.err("repairing a node ref", err))?;
        }
        Ok(())
    }

    /// Writes the node's tree: `files/…`, `scripts/…` and `meta.yaml`.
    fn write_node_tree(&self, repo: &Repository, event: &Event, snapshot: &Snapshot) -> Result<Oid, HistoryError> {
        let mut draft = TreeDraft::default();
        let mut meta = NodeMeta {
            node: event.node.clone(),
            event: event.kind,
            state: event.state.clone(),
            failed: event.failed,
            files: BTreeMap::new(),
            scripts: Vec::new(),
            links: BTreeMap::new(),
            dirs: BTreeMap::new(),
        };
        // Through the object database, not `Repository::blob`: that streams every blob into a
        // temporary file first, even one the history already holds (most of a record's files
        // are), while `Odb::write` hashes it and writes only what is new.
        let odb = repo.odb().map_err(|err| self.err("opening the objects", err))?;
        let blob = |bytes: &[u8]| odb.write(ObjectType::Blob, bytes);
        for link in &snapshot.links {
            let oid = blob(link.target.as_bytes()).map_err(|err| self.err("writing a link", err))?;
            let in_tree = tree_path(&link.path);
            let parts: Vec<&str> = in_tree.split('/').collect();
            draft.insert(&parts, oid, FileMode::Link);
            meta.links.insert(
                link.path.to_string(),
                LinkMeta {
                    target: link.target.clone(),
                    managed: link.managed,
                },
            );
        }
        for dir in &snapshot.dirs {
            meta.dirs.insert(
                dir.path.to_string(),
                DirMeta {
                    mode: dir.mode,
                    owner: dir.owner.clone(),
                    group: dir.group.clone(),
                },
            );
        }
        for file in &snapshot.files {
            let encrypted = file.secret && self.age.can_encrypt();
            let oid = if encrypted {
                let sealed =
                    self.age
                        .encrypt(file.path.as_str(), &file.content)
                        .map_err(|source| HistoryError::Age {
                            revision: String::new(),
                            source,
                        })?;
                blob(&sealed)
            } else {
                blob(&file.content)
            }
            .map_err(|err| self.err("writing a file", err))?;
            let mode = if file.mode.bits() & 0o111 != 0 {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            let in_tree = tree_path(&file.path);
            let parts: Vec<&str> = in_tree.split('/').collect();
            draft.insert(&parts, oid, mode);
            meta.files.insert(
                file.path.to_string(),
                FileMeta {
                    sha256: file.sha256.to_string(),
                    mode: file.mode,
                    owner: file.owner.clone(),
                    group: file.group.clone(),
                    size: file.content.len() as u64,
                    managed: file.managed,
                    secret: file.secret,
                    encrypted,
                },
            );
        }
        for script in &snapshot.scripts {
            let oid = blob(&script.content).map_err(|err| self.err("writing a script", err))?;
            draft.insert(
                &["scripts", script.stage.as_str(), &script.phase, &script.name],
                oid,
                FileMode::BlobExecutable,
            );
            meta.scripts.push(ScriptMeta {
                stage: script.stage,
                phase: script.phase.clone(),
                name: script.name.clone(),
                sha256: script.sha256.to_string(),
            });
        }
        let meta_text = yaml_serde::to_string(&meta).map_err(|err| self.err("writing meta.yaml", err))?;
        let meta_oid = blob(meta_text.as_bytes()).map_err(|err| self.err("writing meta.yaml", err))?;
        draft.insert(&[META_FILE], meta_oid, FileMode::Blob);
        draft
            .write(repo)
            .map_err(|err| self.err("writing the node's tree", err))
    }
}

/// The commit message of `event`: its summary, the changed paths, the `Pacha-*` trailers.
fn commit_message(event: &Event, previous: Option<Oid>, master: Option<&MasterRevision>) -> String {
    let mut message = event.summary();
    message.push_str("\n\n");
    for path in &event.changed {
        message.push_str(&escape(path.as_str()));
        message.push('\n');
    }
    if !event.changed.is_empty() {
        message.push('\n');
    }
    message.push_str(&format!(
        "Pacha-Node: {}\nPacha-Event: {}\n",
        escape(&event.node),
        event.kind
    ));
    if let Some(state) = &event.state {
        message.push_str(&format!("Pacha-State: {}\n", escape(state)));
    }
    if event.failed {
        message.push_str("Pacha-Failed: yes\n");
    }
    if let Some(host) = &event.host {
        message.push_str(&format!("Pacha-Host: {}\n", escape(host)));
    }
    if let Some(master) = master {
        message.push_str(&format!("Pacha-Master: {}\n", master.describe()));
        if !master.changed.is_empty() {
            const LISTED: usize = 50;
            let mut listed: Vec<&str> = master.changed.iter().take(LISTED).map(String::as_str).collect();
            let more = format!("and {} more", master.changed.len().saturating_sub(LISTED));
            if master.changed.len() > LISTED {
                listed.push(&more);
            }
            message.push_str(&format!("Pacha-Master-Changed: {}\n", escape(&listed.join(", "))));
        }
    }
    if let Some(previous) = previous {
        message.push_str(&format!("Pacha-Previous: {previous}\n"));
    }
    message
}

impl History for GitHistory {
    fn record(&self, event: &Event, snapshot: &Snapshot) -> Result<Entry, HistoryError> {
        let mut slot = self.existing();
        if slot.is_none() {
            *slot = Some(self.create()?);
        }
        let Some(repo) = slot.as_ref() else {
            return Err(self.err("creating the history", "the repository vanished"));
        };
        let _lock = self.lock()?;
        let shared = self.before_record(repo)?;
        let entry = self.record_locked(repo, event, snapshot)?;
        if !shared {
            return Ok(entry);
        }
        let revision = Oid::from_str(&entry.revision).map_err(|err| self.err("reading the commit", err))?;
        let now = self.after_record(repo, revision)?;
        if now == revision {
            return Ok(entry);
        }
        let commit = repo
            .find_commit(now)
            .map_err(|err| self.err("reading the commit", err))?;
        self.entry_of(&commit).ok_or_else(|| HistoryError::Corrupt {
            revision: now.to_string(),
            message: "a record put on top of the remote cannot be read back".to_owned(),
        })
    }

    fn check_writable(&self) -> Result<(), HistoryError> {
        // Where the next record writes: the repository, or the folder that will hold it.
        let dir = if self.path.exists() {
            self.path.clone()
        } else {
            let mut dir = self.path.as_path();
            while !dir.exists() {
                dir = dir.parent().unwrap_or(Path::new("/"));
            }
            dir.to_path_buf()
        };
        let probe = dir.join(format!(".pacha-probe-{}", std::process::id()));
        fs::write(&probe, b"").map_err(|err| self.err("the history cannot be written", err))?;
        let _ = fs::remove_file(&probe);
        if self.path.exists() {
            let objects = self.path.join("objects");
            let probe = objects.join(format!(".pacha-probe-{}", std::process::id()));
            fs::write(&probe, b"").map_err(|err| self.err("the history cannot be written", err))?;
            let _ = fs::remove_file(&probe);
        }
        Ok(())
    }

    fn refresh(&self) -> Result<(), HistoryError> {
        self.fetch_remote()
    }

    fn log(&self, node: &str) -> Result<Vec<Entry>, HistoryError> {
        let slot = self.existing();
        let Some(repo) = slot.as_ref() else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        let mut next = self.head_of(repo, node)?;
        while let Some(oid) = next {
            let commit = repo.find_commit(oid).map_err(|err| self.err("reading a commit", err))?;
            let entry = self.entry_of(&commit).ok_or_else(|| HistoryError::Corrupt {
                revision: oid.to_string(),
                message: "not a pacha commit".to_owned(),
            })?;
            next = commit.message().ok().and_then(|message| {
                trailers(message)
                    .get("Previous")
                    .and_then(|text| Oid::from_str(text).ok())
            });
            entries.push(entry);
        }
        Ok(entries)
    }

    fn latest(&self, node: &str) -> Result<Option<Entry>, HistoryError> {
        let slot = self.existing();
        let Some(repo) = slot.as_ref() else {
            return Ok(None);
        };
        let Some(oid) = self.head_of(repo, node)? else {
            return Ok(None);
        };
        let commit = repo.find_commit(oid).map_err(|err| self.err("reading a commit", err))?;
        Ok(self.entry_of(&commit))
    }

    fn entry(&self, node: &str, revision: &str) -> Result<Entry, HistoryError> {
        let unknown = || HistoryError::UnknownRevision {
            node: node.to_owned(),
            revision: revision.to_owned(),
        };
        // `HEAD` is the node's latest entry, `HEAD~N` the Nth before it (in the node's log).
        if let Some(back) = revision.strip_prefix("HEAD").and_then(|rest| {
            if rest.is_empty() {
                Some(Some(0))
            } else {
                rest.strip_prefix('~').map(|n| n.parse::<usize>().ok())
            }
        }) {
            let back = back.ok_or_else(unknown)?;
            return self.log(node)?.into_iter().nth(back).ok_or_else(unknown);
        }
        if revision.len() < 4 || revision.len() > 40 || !revision.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let slot = self.existing();
        let Some(repo) = slot.as_ref() else {
            return Err(unknown());
        };
        let object = match repo.revparse_single(revision) {
            Ok(object) => object,
            Err(err) if err.code() == ErrorCode::Ambiguous => {
                return Err(HistoryError::Ambiguous {
                    revision: revision.to_owned(),
                });
            }
            Err(_) => return Err(unknown()),
        };
        let commit = object.peel_to_commit().map_err(|_| unknown())?;
        let entry = self.entry_of(&commit).ok_or_else(unknown)?;
        if entry.node != node {
            return Err(HistoryError::OtherNode {
                node: node.to_owned(),
                revision: entry.revision,
                actual: entry.node,
            });
        }
        Ok(entry)
    }

    fn snapshot(&self, node: &str, revision: &str) -> Result<Snapshot, HistoryError> {
        let oid = Oid::from_str(revision).map_err(|_| HistoryError::UnknownRevision {
            node: node.to_owned(),
            revision: revision.to_owned(),
        })?;
        let slot = self.existing();
        let Some(repo) = slot.as_ref() else {
            return Err(HistoryError::UnknownRevision {
                node: node.to_owned(),
                revision: revision.to_owned(),
            });
        };
        let tree = self.node_tree(repo, oid, node)?;
        let corrupt = |message: String| HistoryError::Corrupt {
            revision: revision.to_owned(),
            message,
        };
        let meta_text = self.blob(repo, &tree, META_FILE, oid)?;
        let meta: NodeMeta =
            yaml_serde::from_slice(&meta_text).map_err(|err| corrupt(format!("{META_FILE}: {err}")))?;
        let mut snapshot = Snapshot::default();
        for (path, file) in &meta.files {
            let path = NodePath::parse(path).map_err(|err| corrupt(err.to_string()))?;
            let mut content = self.blob(repo, &tree, &tree_path(&path), oid)?;
            if file.encrypted {
                content = self
                    .age
                    .decrypt(path.as_str(), &content)
                    .map_err(|source| HistoryError::Age {
                        revision: revision.to_owned(),
                        source,
                    })?
                    .into();
            }
            let sha256 = ContentHash::parse(&file.sha256).ok_or_else(|| corrupt(format!("bad sha256 for {path}")))?;
            if ContentHash::of(&content) != sha256 {
                return Err(corrupt(format!("{path} does not match its recorded sha256")));
            }
            snapshot.files.push(RecordedFile {
                path,
                content,
                sha256,
                mode: file.mode,
                owner: file.owner.clone(),
                group: file.group.clone(),
                managed: file.managed,
                secret: file.secret,
            });
        }
        for script in &meta.scripts {
            let content = self.blob(
                repo,
                &tree,
                &format!("scripts/{}/{}/{}", script.stage, script.phase, script.name),
                oid,
            )?;
            snapshot.scripts.push(RecordedScript {
                stage: script.stage,
                phase: script.phase.clone(),
                name: script.name.clone(),
                sha256: ContentHash::of(&content),
                content,
            });
        }
        for (path, link) in &meta.links {
            snapshot.links.push(RecordedLink {
                path: NodePath::parse(path).map_err(|err| corrupt(err.to_string()))?,
                target: link.target.clone(),
                managed: link.managed,
            });
        }
        for (path, dir) in &meta.dirs {
            snapshot.dirs.push(RecordedDir {
                path: NodePath::parse(path).map_err(|err| corrupt(err.to_string()))?,
                mode: dir.mode,
                owner: dir.owner.clone(),
                group: dir.group.clone(),
            });
        }
        snapshot.normalize();
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_values_survive_newlines_and_percents() {
        let value = "odd\nnode 100%";
        assert_eq!(unescape(&escape(value)), value);
        assert!(!escape(value).contains('\n'));
        let parsed = trailers("summary\n\nPacha-Node: a%0Ab\nPacha-Event: push\n");
        assert_eq!(parsed["Node"], "a\nb");
    }

    #[test]
    fn git_names_are_escaped_in_trees() {
        let path = NodePath::parse("/etc/.git/config").unwrap();
        assert_eq!(tree_path(&path), "files/etc/%2Egit/config");
        assert_eq!(
            tree_path(&NodePath::parse("/x/%2Egit/.GIT").unwrap()),
            "files/x/%252Egit/%2EGIT"
        );
    }

    #[test]
    fn node_refs_are_valid_for_any_name() {
        assert_eq!(node_ref("web 1"), "refs/pacha/nodes/7765622031");
        assert!(git2::Reference::is_valid_name(&node_ref("it's $(x); ..")));
    }
}
