//! The edge between pacha and a node: what a connection must do, in plain types.
//!
//! `pacha-transport` implements [`Connector`] over the system's OpenSSH and locally; tests may
//! implement it in memory to inject faults.

use std::sync::Arc;

use crate::master::Target;
use crate::mode::Mode;
use crate::path::NodePath;
use crate::plan::{ContentHash, PlannedScript};

/// What a path on a node is right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveFile {
    Missing,
    File(FileStat),
    /// A symbolic link: placing a file there replaces the link, it never writes through it.
    Symlink,
    /// A folder or special file: pacha will not replace it.
    Other,
    /// A regular file this connection may not read.
    Unreadable,
}

/// A regular file's attributes and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub sha256: ContentHash,
    pub size: u64,
    pub mode: Mode,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
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
}

/// One file to place on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub destination: NodePath,
    pub content: Arc<[u8]>,
    pub sha256: ContentHash,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Mode,
    /// The mode of folders that must be created for it.
    pub dir_mode: Mode,
}

/// Everything to do on a node in one exchange: pre scripts, files, post scripts.
#[derive(Debug, Clone)]
pub struct Apply<'a> {
    pub node: &'a str,
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
}

/// How one script run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRun {
    /// `pre/<phase>/<name>` or `post/<phase>/<name>`.
    pub id: String,
    pub status: i32,
    /// Its standard output and error, interleaved.
    pub output: Vec<u8>,
}

impl ScriptRun {
    pub fn succeeded(&self) -> bool {
        self.status == 0
    }
}

/// What an [`Apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub scripts: Vec<ScriptRun>,
    /// Whether the files were placed (false when a pre script failed first).
    pub placed: bool,
    /// Attributes of each placed file after placement, in the order of `Apply::files`.
    pub placed_stats: Vec<LiveFile>,
}

impl Applied {
    /// The first script that failed.
    pub fn failed_script(&self) -> Option<&ScriptRun> {
        self.scripts.iter().find(|run| !run.succeeded())
    }
}

/// Why talking to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: host key verification failed: {detail}")]
    HostKey { host: String, detail: String },
    #[error("{host}: cannot connect: {detail}")]
    Connect { host: String, detail: String },
    #[error("{host}: the node is busy: {holder}; try again when it is done")]
    Locked { host: String, holder: String },
    #[error("{host}: {step} failed (exit status {status}){}", tail(stderr))]
    Remote {
        host: String,
        step: &'static str,
        status: i32,
        stderr: String,
    },
    #[error("{host}: {step}: the connection was lost{}", tail(detail))]
    Disconnected {
        host: String,
        step: &'static str,
        detail: String,
    },
    #[error("{host}: {step}: unexpected answer from the node: {detail}")]
    Protocol {
        host: String,
        step: &'static str,
        detail: String,
    },
    #[error("{host}: {context}: {source}")]
    Io {
        host: String,
        context: String,
        source: std::io::Error,
    },
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

    /// Releases the node's lock and the connection.
    fn close(self: Box<Self>) -> Result<(), TransportError>;
}

/// Opens connections to nodes.
pub trait Connector: Sync {
    fn connect(&self, node: &str, target: &Target) -> Result<Box<dyn Connection>, TransportError>;
}
