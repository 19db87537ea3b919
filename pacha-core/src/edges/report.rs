//! The reporter edge: what an operation tells its caller while it runs, and the [`NodeReport`]
//! it gives back per node, with a typed [`NodeError`] when the node failed.

use std::sync::Arc;
use std::time::Duration;

use crate::edges::connection::{LiveFile, ScriptRun, TransportError};
use crate::edges::history::HistoryError;
use crate::edges::link::LinkError;
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::plan::{Plan, Seen};
use crate::model::snapshot::Entry;

/// How a file on the node differs from its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path on the node.
    pub destination: NodePath,
    /// What kind of change.
    pub kind: ChangeKind,
    /// Mode before and after, when it changes on an existing file.
    pub mode: Option<(Mode, Mode)>,
    /// Owner before and after, when it changes.
    pub owner: Option<(String, String)>,
    /// Group before and after, when it changes.
    pub group: Option<(String, String)>,
    /// The live contents before the push, when asked for.
    pub before: Option<Vec<u8>>,
}

/// What kind of change a push makes to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The file does not exist yet.
    Create,
    /// The contents differ (owner, group or mode may too).
    Update,
    /// Only owner, group or mode differ.
    Attributes,
    /// A symbolic link stands where the file goes; it is replaced, not followed.
    ReplaceSymlink,
    /// pacha placed it and the plan no longer has it, or it must be absent: it goes.
    Remove,
    /// A managed symbolic link is created or pointed at its target again.
    Link,
    /// A managed folder is created, or its owner, group or mode corrected.
    Directory,
}

impl ChangeKind {
    /// The name `--json` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Attributes => "attributes",
            ChangeKind::ReplaceSymlink => "replace-symlink",
            ChangeKind::Remove => "remove",
            ChangeKind::Link => "link",
            ChangeKind::Directory => "directory",
        }
    }
}

/// How a node's push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing differed; nothing was written and no script ran.
    Unchanged,
    /// Files were placed and/or scripts ran, all successfully.
    Changed,
    /// `--dry-run`: something would change.
    WouldChange,
    /// The node failed: see [`NodeReport::error`].
    Failed,
    /// A post script or health check failed after placing, and the node was put back as it
    /// was before the push (post scripts run again): see [`NodeReport::error`].
    RolledBack,
    /// A saved plan's node no longer holds what the plan saw: nothing was done.
    Refused,
    /// The node was never started: see [`NodeReport::skipped`] for why.
    Skipped,
}

/// Why a node was never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The operation was interrupted (Ctrl-C) first.
    Interrupted,
    /// A node of an earlier batch (`--serial`) failed.
    BatchFailed,
    /// As many nodes as `--max-fail` allows had failed.
    MaxFail,
}

impl Skip {
    /// The name `--json` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Interrupted => "interrupted",
            Skip::BatchFailed => "batch-failed",
            Skip::MaxFail => "max-fail",
        }
    }
}

impl Outcome {
    /// The name `--json` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Changed => "changed",
            Outcome::WouldChange => "would-change",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Refused => "refused",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Time spent per step of a node's push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Opening every connection (the first phase of a push, shared by all nodes).
    pub connect: Duration,
    /// Reading the node's files.
    pub inspect: Duration,
    /// Placing files and running scripts.
    pub apply: Duration,
    /// From the start of the push to this node's end.
    pub total: Duration,
}

/// Why one node failed. An embedder matches on it; [`NodeError::kind`] names it for JSON.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// The node could not be reached, read or written (connection, host key, lock, placement).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Another node's host key failed, so nothing was placed on any node.
    #[error("not pushed: host key verification failed for {} (nothing was placed on any node)", nodes.join(", "))]
    HostKeyElsewhere {
        /// The nodes whose host key failed.
        nodes: Vec<String>,
    },
    /// Something stands at a planned path that pacha will not replace: a folder where a file
    /// or link is planned, a file or link where a folder is planned, or a device, socket or pipe.
    #[error(
        "{path} on the node is not what the plan places there (a folder where a file or link is planned, a file where a folder is, or a device, socket or pipe); pacha will not replace it"
    )]
    NotAFile {
        /// The planned path.
        path: NodePath,
    },
    /// A pre or post script failed.
    #[error("script {id} failed with exit status {status} ({})", if *placed { "files were placed; the post scripts run again on the next push" } else { "nothing was placed" })]
    Script {
        /// `pre/<phase>/<name>` or `post/<phase>/<name>`.
        id: String,
        /// Its exit status.
        status: i32,
        /// Whether the files were placed before it failed.
        placed: bool,
    },
    /// A saved plan's node changed since the plan was made.
    #[error("the node changed since the plan was made: {}; make a new plan", paths.iter().map(NodePath::as_str).collect::<Vec<_>>().join(", "))]
    Moved {
        /// The paths that hold something else now.
        paths: Vec<NodePath>,
    },
    /// A post script or health check failed after placing, and the node was put back.
    #[error("{} {id} {}: the node was put back as it was before this push ({}, {})", if id.starts_with("health/") { "health check" } else { "script" }, timed_out.map_or_else(|| format!("failed with exit status {status}"), |seconds| format!("timed out after {seconds} s")), if *restore_incomplete { "some of it could not be restored: see the node" } else { "previous files restored" }, if *post_failed_again { "and the post scripts failed again on them" } else { "post scripts run again" })]
    RolledBack {
        /// `post/<phase>/<name>` or `health/<phase>/<name>`.
        id: String,
        /// Its exit status.
        status: i32,
        /// The timeout it ran past, if it did.
        timed_out: Option<u64>,
        /// Whether something could not be put back.
        restore_incomplete: bool,
        /// Whether a post script failed again on the restored files.
        post_failed_again: bool,
    },
    /// A file's `validate` command refused the staged file: nothing of the node was replaced.
    #[error("validation of {path} failed: `{command}` exited with status {status}; nothing was placed{}", if output.is_empty() { String::new() } else { format!(":\n{output}") })]
    Validation {
        /// The file it checked.
        path: NodePath,
        /// The command as written.
        command: String,
        /// Its exit status.
        status: i32,
        /// What it printed, secrets replaced (or a note when the file holds secrets).
        output: String,
    },
    /// A pre or post script ran past its `timeout` and was killed with its processes.
    #[error("script {id} timed out after {seconds} s ({})", if *placed { "files were placed; the post scripts run again on the next push" } else { "nothing was placed" })]
    ScriptTimeout {
        /// `pre/<phase>/<name>` or `post/<phase>/<name>`.
        id: String,
        /// The timeout.
        seconds: u64,
        /// Whether the files were placed before it.
        placed: bool,
    },
    /// What was placed could not be recorded in the history.
    #[error("recording the history failed: {0}")]
    History(Arc<HistoryError>),
    /// What was placed could not be recorded in the master's history (`pacha pull`).
    #[error("recording in the master's history failed: {0}")]
    MasterHistory(Arc<LinkError>),
}

impl NodeError {
    /// The category `--json` prints: `connection`, `host-key`, `lock`, `placement`, `script` or
    /// `history`.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::Transport(TransportError::HostKey { .. }) | NodeError::HostKeyElsewhere { .. } => "host-key",
            NodeError::Transport(TransportError::Locked { .. }) => "lock",
            NodeError::Transport(
                TransportError::Remote {
                    step: crate::edges::connection::Step::Apply,
                    ..
                }
                | TransportError::Protocol {
                    step: crate::edges::connection::Step::Apply,
                    ..
                },
            )
            | NodeError::Transport(TransportError::Symlinked { .. })
            | NodeError::NotAFile { .. } => "placement",
            NodeError::Transport(_) => "connection",
            NodeError::Script { .. } | NodeError::ScriptTimeout { .. } => "script",
            NodeError::Validation { .. } => "validation",
            NodeError::Moved { .. } => "refused",
            NodeError::RolledBack { id, .. } if id.starts_with("health/") => "health",
            NodeError::RolledBack { .. } => "script",
            NodeError::History(_) | NodeError::MasterHistory(_) => "history",
        }
    }
}

/// Everything about one node's push (or rollback, rebuild, pull).
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The node's name.
    pub node: String,
    /// Its SSH destination.
    pub host: String,
    /// The state pushed.
    pub state: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What differed on the node from the plan (files to remove included).
    pub changes: Vec<Change>,
    /// Files pacha placed that the plan no longer has, kept on the node, with why (edited by
    /// hand since pacha placed them: `--force` removes them).
    pub kept: Vec<(NodePath, String)>,
    /// Post scripts an interrupted earlier push left due (run now unless `--dry-run`).
    pub pending_post: Option<Vec<NodePath>>,
    /// Every script that ran.
    pub scripts: Vec<ScriptRun>,
    /// Whether files were placed.
    pub placed: bool,
    /// Each planned file's state on the node after the push (as inspected when nothing was
    /// placed), in plan order; empty when the node could not be read.
    pub live: Vec<LiveFile>,
    /// Why the node failed, when it did. A push whose recording failed keeps its outcome and
    /// has [`NodeError::History`] here.
    pub error: Option<NodeError>,
    /// The history entry recorded for it, when it changed the node.
    pub recorded: Option<Entry>,
    /// The `recovered` entry recorded first, when the node held a placement the history had
    /// missed (an interrupted push).
    pub recovered: Option<Entry>,
    /// Time spent per step.
    pub timings: Timings,
    /// Why the node was never started, when its outcome is [`Outcome::Skipped`].
    pub skipped: Option<Skip>,
    /// What the node held at every path the plan places, links, manages or removes, as
    /// inspected (what a saved plan expects).
    pub seen: Vec<Seen>,
}

impl NodeReport {
    /// A report of `plan`'s node that has not got anywhere yet.
    pub(crate) fn new(plan: &Plan) -> NodeReport {
        NodeReport {
            node: plan.node.clone(),
            host: plan.target.host.clone(),
            state: plan.state.clone(),
            outcome: Outcome::Failed,
            changes: Vec::new(),
            kept: Vec::new(),
            pending_post: None,
            scripts: Vec::new(),
            placed: false,
            live: Vec::new(),
            error: None,
            recorded: None,
            recovered: None,
            timings: Timings::default(),
            skipped: None,
            seen: Vec::new(),
        }
    }

    /// Marks the node failed with `error`.
    pub(crate) fn fail(&mut self, error: NodeError) {
        self.outcome = Outcome::Failed;
        self.error = Some(error);
    }

    /// Whether the node failed, was rolled back, was skipped, or its result could not be
    /// recorded.
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Failed | Outcome::RolledBack | Outcome::Refused | Outcome::Skipped
        ) || self.error.is_some()
    }
}

/// What an operation tells its caller while it runs. Every method has a default that does
/// nothing.
pub trait Reporter: Sync {
    /// A node moves on to a step (`connect`, `inspect`, `apply`, `record`).
    fn step(&self, _node: &str, _step: &str) {}
    /// A node is done (and recorded): `index` is its place in the expanded order.
    fn finished(&self, _index: usize, _report: &NodeReport) {}
}

/// A reporter that reports nothing.
pub struct Quiet;

impl Reporter for Quiet {}
