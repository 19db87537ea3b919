//! The edge between pacha and a node: what a connection must do, in plain types.
//!
//! `pacha-transport` implements [`Connector`] over the system's OpenSSH and locally; tests may
//! implement it in memory to inject faults (the `testing` feature has such a connector).

use std::sync::Arc;

use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::plan::{PlannedDir, PlannedScript};
use crate::model::target::Target;

/// What a path on a node is right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveFile {
    /// Nothing is there.
    Missing,
    /// A regular file.
    File(FileStat),
    /// A symbolic link, with its target as written: placing a file there replaces the link,
    /// it never writes through it.
    Symlink(String),
    /// A folder, with its attributes.
    Directory(DirStat),
    /// A special file (device, socket, fifo): pacha will not replace it.
    Other,
    /// A regular file this connection may not read.
    Unreadable,
}

/// A regular file's attributes and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// The hash of its contents.
    pub sha256: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// Its permission bits.
    pub mode: Mode,
    /// The owner's uid.
    pub uid: u32,
    /// The group's gid.
    pub gid: u32,
    /// The owner's name (`UNKNOWN` or empty when the node has none).
    pub owner: String,
    /// The group's name (`UNKNOWN` or empty when the node has none).
    pub group: String,
}

impl FileStat {
    /// The owner as history records it: the name, or the uid when the node has no name for it.
    pub fn recorded_owner(&self) -> String {
        name_or_id(&self.owner, self.uid)
    }

    /// The group as history records it: the name, or the gid when the node has no name for it.
    pub fn recorded_group(&self) -> String {
        name_or_id(&self.group, self.gid)
    }

    /// Whether the file is owned by `owner` (a user name or a numeric uid).
    pub fn owner_is(&self, owner: &str) -> bool {
        self.owner == owner || owner.parse::<u32>().is_ok_and(|uid| uid == self.uid)
    }

    /// Whether the file's group is `group` (a name or a numeric gid).
    pub fn group_is(&self, group: &str) -> bool {
        self.group == group || group.parse::<u32>().is_ok_and(|gid| gid == self.gid)
    }
}

/// A folder's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirStat {
    /// Its permission bits.
    pub mode: Mode,
    /// The owner's uid.
    pub uid: u32,
    /// The group's gid.
    pub gid: u32,
    /// The owner's name (`UNKNOWN` or empty when the node has none).
    pub owner: String,
    /// The group's name (`UNKNOWN` or empty when the node has none).
    pub group: String,
}

impl DirStat {
    /// The owner as history records it: the name, or the uid when the node has no name for it.
    pub fn recorded_owner(&self) -> String {
        name_or_id(&self.owner, self.uid)
    }

    /// The group as history records it: the name, or the gid when the node has no name for it.
    pub fn recorded_group(&self) -> String {
        name_or_id(&self.group, self.gid)
    }
}

fn name_or_id(name: &str, id: u32) -> String {
    if name.is_empty() || name == "UNKNOWN" {
        id.to_string()
    } else {
        name.to_owned()
    }
}

/// What to read from a node.
#[derive(Debug, Clone, Copy)]
pub struct Inspect<'a> {
    /// Paths as the node sees them (the connection puts the node's root in front).
    pub paths: &'a [NodePath],
    /// Also read the contents of the regular files among them.
    pub contents: bool,
    /// Take the node's lock, held until the connection is closed: a second pacha working on
    /// the same node waits for it, or fails clearly, but never interleaves with it.
    pub lock: Option<&'a str>,
}

/// What a node holds at the inspected paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// One entry per inspected path, in order.
    pub files: Vec<LiveFile>,
    /// Contents of the regular files, when asked for (`None` for other entries).
    pub contents: Vec<Option<Vec<u8>>>,
    /// Post scripts an earlier push left due: the paths it changed. A push that placed files
    /// and died before its post scripts succeeded leaves this behind.
    pub pending_post: Option<Vec<NodePath>>,
    /// The journal the last apply stored, as it stored it.
    pub journal: Option<Vec<u8>>,
}

/// One file to place on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Where it goes, as the node sees it.
    pub destination: NodePath,
    /// Its contents.
    pub content: Arc<[u8]>,
    /// The hash of `content`.
    pub sha256: ContentHash,
    /// The owner to set (`None`: the connecting user's).
    pub owner: Option<String>,
    /// The group to set (`None`: the connecting user's).
    pub group: Option<String>,
    /// Its permission bits.
    pub mode: Mode,
    /// The mode of folders that must be created for it.
    pub dir_mode: Mode,
    /// A command that checks the staged file before anything is renamed (`%s`: its path).
    pub validate: Option<String>,
}

/// Everything to do on a node in one exchange: pre scripts, files, post scripts.
#[derive(Debug, Clone)]
pub struct Apply<'a> {
    /// The node's name (scripts see it as `PACHA_NODE`).
    pub node: &'a str,
    /// The state pushed (scripts see it as `PACHA_STATE`).
    pub state: &'a str,
    /// Run in order before anything is placed; the first failure stops the node.
    pub pre: &'a [&'a PlannedScript],
    /// Each placed atomically: temp file in the same folder, fsync, owner/mode, rename.
    pub files: &'a [Placement],
    /// Run in order after the files are placed. Before placing, the node records that they
    /// are due, and clears that only once they all succeed.
    pub post: &'a [&'a PlannedScript],
    /// The paths the post scripts are told changed (`PACHA_CHANGED`).
    pub changed: &'a [NodePath],
    /// Files and symlinks to remove once the files are placed (`PACHA_REMOVED`).
    pub remove: &'a [NodePath],
    /// Folders to remove when they are empty (`absent:` paths that are folders).
    pub remove_dirs: &'a [NodePath],
    /// Symbolic links to create or point again (path and target), each placed atomically.
    pub links: &'a [(NodePath, String)],
    /// Folders to create, or whose owner, group and mode to correct.
    pub dirs: &'a [PlannedDir],
    /// Run after the post scripts; like them, a failure puts the node back (unless `keep`).
    pub health: &'a [&'a PlannedScript],
    /// Whether a failing post script or health check puts back what was there before
    /// (previous files, links, folders, removed files, the journal) and runs the post
    /// scripts again; else the new files stay and the post scripts are due.
    pub revert_on_failure: bool,
    /// Confirm or revert (`health: {ssh: true}`): once the change is in place and checked,
    /// a new SSH connection must reach the node, and the node waits at most these seconds
    /// for pacha's confirmation before it puts everything back by itself.
    pub confirm: Option<u64>,
    /// Seconds each script may run before its whole process group is killed.
    pub script_timeout: Option<u64>,
    /// The node's journal after this apply: what pacha manages there. Stored before anything
    /// is renamed, so a placement the history misses is found by the next inspect.
    pub journal: &'a [u8],
}

/// How one script run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRun {
    /// `pre/<phase>/<name>` or `post/<phase>/<name>`.
    pub id: String,
    /// Its exit status.
    pub status: i32,
    /// Its standard output and error, interleaved.
    pub output: Vec<u8>,
}

impl ScriptRun {
    /// Whether it exited 0.
    pub fn succeeded(&self) -> bool {
        self.status == 0
    }
}

/// What an [`Apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Every script that ran, in order.
    pub scripts: Vec<ScriptRun>,
    /// Whether the files were placed (false when a pre script failed first).
    pub placed: bool,
    /// Attributes of each placed file after placement, in the order of `Apply::files`.
    pub placed_stats: Vec<LiveFile>,
    /// The check that refused a staged file, when one did (then nothing was placed).
    pub validation: Option<FailedValidation>,
    /// Whether a post script or health check failed and the node was put back as it was.
    pub rolled_back: bool,
    /// The post scripts run again on the restored files, after a roll back.
    pub after_rollback: Vec<ScriptRun>,
    /// Whether something could not be put back during the roll back.
    pub restore_incomplete: bool,
    /// Why the new SSH connection of confirm or revert failed, when it did (then the node
    /// was put back).
    pub probe_failed: Option<String>,
}

/// A `validate` command that refused its staged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedValidation {
    /// The file it checked.
    pub path: NodePath,
    /// The command as written (with `%s`).
    pub command: String,
    /// Its exit status.
    pub status: i32,
    /// What it printed (standard output and error).
    pub output: Vec<u8>,
}

impl Applied {
    /// The first script that failed.
    pub fn failed_script(&self) -> Option<&ScriptRun> {
        self.scripts.iter().find(|run| !run.succeeded())
    }
}

/// Why talking to a node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The node's host key is unknown or changed: nothing is placed anywhere.
    #[error("{host}: host key verification failed: {detail}")]
    HostKey {
        /// The SSH destination.
        host: String,
        /// What ssh said.
        detail: String,
    },
    /// The node could not be reached.
    #[error("{host}: cannot connect: {detail}")]
    Connect {
        /// The SSH destination.
        host: String,
        /// What ssh said.
        detail: String,
    },
    /// Another pacha holds the node's lock.
    #[error("{host}: the node is busy: {holder}; try again when it is done")]
    Locked {
        /// The SSH destination.
        host: String,
        /// Who holds the lock, as that pacha described itself.
        holder: String,
    },
    /// A step on the node exited with an error.
    #[error("{host}: {step} failed (exit status {status}){}", tail(stderr))]
    Remote {
        /// The SSH destination.
        host: String,
        /// What pacha was doing.
        step: Step,
        /// The exit status on the node.
        status: i32,
        /// Its standard error.
        stderr: String,
    },
    /// The connection went away during a step.
    #[error("{host}: {step}: the connection was lost{}", tail(detail))]
    Disconnected {
        /// The SSH destination.
        host: String,
        /// What pacha was doing.
        step: Step,
        /// What the connection said last.
        detail: String,
    },
    /// The node answered something pacha cannot read.
    #[error("{host}: {step}: unexpected answer from the node: {detail}")]
    Protocol {
        /// The SSH destination.
        host: String,
        /// What pacha was doing.
        step: Step,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A folder between the node's root and a path pacha reads or writes is a symlink that
    /// leads out of the root: nothing is read or placed through it.
    #[error(
        "{host}: {folder} is a symlink that leads out of the node's root; pacha reads and writes nothing through it"
    )]
    Symlinked {
        /// The SSH destination.
        host: String,
        /// The folder, as the node sees it (root included).
        folder: String,
    },
    /// A local I/O error while talking to the node.
    #[error("{host}: {context}: {source}")]
    Io {
        /// The SSH destination.
        host: String,
        /// What pacha was doing.
        context: String,
        /// The error.
        #[source]
        source: Arc<std::io::Error>,
    },
}

/// What pacha was doing on a node when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Starting a command on the node.
    Start,
    /// Running a command on the node.
    Run,
    /// Reading the node's files (and taking its lock).
    Inspect,
    /// Placing files and running scripts.
    Apply,
    /// Listing files below tracked folders.
    Find,
}

impl Step {
    /// How the step reads in a message.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Start => "starting a command",
            Step::Run => "running a command",
            Step::Inspect => "reading the node's files",
            Step::Apply => "placing files",
            Step::Find => "listing tracked files",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn tail(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(5);
    format!(": {}", lines[start..].join(" | "))
}

impl TransportError {
    /// Whether this is a host key problem, which stops a push everywhere before anything is
    /// placed.
    pub fn is_host_key(&self) -> bool {
        matches!(self, TransportError::HostKey { .. })
    }

    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            TransportError::HostKey { host, .. }
            | TransportError::Connect { host, .. }
            | TransportError::Locked { host, .. }
            | TransportError::Remote { host, .. }
            | TransportError::Disconnected { host, .. }
            | TransportError::Protocol { host, .. }
            | TransportError::Symlinked { host, .. }
            | TransportError::Io { host, .. } => host,
        }
    }
}

/// An open connection to one node.
pub trait Connection: Send {
    /// Reads the state of many paths in one round trip (and takes the node's lock when asked).
    fn inspect(&mut self, request: &Inspect<'_>) -> Result<Inspection, TransportError>;

    /// Runs pre scripts, places files and runs post scripts, in one exchange where possible.
    /// A failing script is reported in [`Applied`], not as an error.
    fn apply(&mut self, request: &Apply<'_>) -> Result<Applied, TransportError>;

    /// Every regular file below `folders` (recursively), as the node sees them.
    fn find(&mut self, folders: &[NodePath]) -> Result<Vec<NodePath>, TransportError>;

    /// Which of `programs` the node's `sh` cannot find (`pacha doctor`). A connection that
    /// runs no programs has none missing.
    fn missing_programs(&mut self, _programs: &[&str]) -> Result<Vec<String>, TransportError> {
        Ok(Vec::new())
    }

    /// Releases the node's lock and the connection.
    fn close(self: Box<Self>) -> Result<(), TransportError>;
}

/// Opens connections to nodes.
pub trait Connector: Sync {
    /// Opens a connection to `node` at `target`.
    fn connect(&self, node: &str, target: &Target) -> Result<Box<dyn Connection>, TransportError>;
}
