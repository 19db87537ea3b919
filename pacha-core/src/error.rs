//! [`EngineError`]: why an operation of the engine failed as a whole (a node's own failure is a
//! [`crate::NodeError`] in its report instead).

use std::path::PathBuf;

use crate::edges::connection::TransportError;
use crate::edges::history::HistoryError;
use crate::edges::link::LinkError;
use crate::edges::planner::PlanError;
use crate::master::error::{ConfigError, GraphError};
use crate::model::hash::Damaged;
use crate::model::path::PathError;

/// Why an operation failed before (or instead of) reporting per node.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A master file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Nodes and meta nodes do not fit together, or a name is unknown.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A node's plan could not be rendered; nothing touched any node.
    #[error("{source}")]
    Render {
        /// The node whose plan failed.
        node: String,
        /// The planner's error.
        #[source]
        source: PlanError,
    },
    /// The history could not be read or written.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A node could not be reached or read for an operation on that one node.
    #[error("{doing} {node}: {source}")]
    Transport {
        /// The node.
        node: String,
        /// What was being done (`rolling back`, `capturing`, …).
        doing: &'static str,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The master could not be reached from the node, or refused.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Something received over the wire does not match its hash.
    #[error("received damaged data: {0}")]
    Damaged(#[from] Damaged),
    /// A path given by the caller is not a path on the node.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A watcher's state folder (its watch list, its spool) could not be used.
    #[error("{doing} {}: {source}", path.display())]
    State {
        /// What was being done.
        doing: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file on this machine could not be written (`render --out`).
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// Wraps a transport error of an operation on `node`.
    pub(crate) fn transport(node: &str, doing: &'static str) -> impl FnOnce(TransportError) -> EngineError {
        let node = node.to_owned();
        move |source| EngineError::Transport { node, doing, source }
    }
}
