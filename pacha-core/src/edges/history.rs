//! The history edge: where node histories are kept. `pacha-vcs` stores them in git; rollback
//! and rebuild read from it, and nothing else is needed to rebuild a host.

use crate::master::age::AgeError;
use crate::model::snapshot::{Entry, Event, Snapshot};

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The node was never recorded.
    #[error("node {node:?} has no recorded history yet")]
    Empty {
        /// The node asked for.
        node: String,
    },
    /// No entry of the node has this revision.
    #[error("no revision {revision:?} in the history of node {node:?}")]
    UnknownRevision {
        /// The node asked for.
        node: String,
        /// The revision as given.
        revision: String,
    },
    /// The revision exists but records another node.
    #[error("revision {revision} records node {actual:?}, not {node:?}")]
    OtherNode {
        /// The node asked for.
        node: String,
        /// The full revision.
        revision: String,
        /// The node it records.
        actual: String,
    },
    /// A revision prefix that matches several commits.
    #[error("revision prefix {revision:?} is ambiguous; give more digits")]
    Ambiguous {
        /// The prefix as given.
        revision: String,
    },
    /// The store failed: a git or file system error while doing `context`.
    #[error("{path}: {context}: {source}")]
    Storage {
        /// The history's folder.
        path: String,
        /// What was being done.
        context: String,
        /// The store's own error (a `git2::Error`, an `io::Error`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A recorded file that is stored encrypted cannot be decrypted (or one cannot be
    /// encrypted for the record).
    #[error("revision {revision}: {source}")]
    Age {
        /// The revision read (empty while recording).
        revision: String,
        /// Why.
        #[source]
        source: AgeError,
    },
    /// A revision whose contents are not what pacha writes.
    #[error("revision {revision}: {message}")]
    Corrupt {
        /// The revision read.
        revision: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Where node histories are kept.
pub trait History: Sync {
    /// Records `snapshot` as the node's state after `event`; returns the new entry.
    fn record(&self, event: &Event, snapshot: &Snapshot) -> Result<Entry, HistoryError>;
    /// The node's entries, newest first.
    fn log(&self, node: &str) -> Result<Vec<Entry>, HistoryError>;
    /// The node's newest entry, if any.
    fn latest(&self, node: &str) -> Result<Option<Entry>, HistoryError>;
    /// The entry at `revision` (a unique prefix is enough), which must be the node's.
    fn entry(&self, node: &str, revision: &str) -> Result<Entry, HistoryError>;
    /// The node's snapshot at `revision` (a full revision from an [`Entry`]).
    fn snapshot(&self, node: &str, revision: &str) -> Result<Snapshot, HistoryError>;
    /// Whether a record could be written now; checked before any node is touched, so that a
    /// history that cannot take the record (read-only, locked for good) refuses the push
    /// instead of leaving placements it cannot record.
    fn check_writable(&self) -> Result<(), HistoryError> {
        Ok(())
    }
    /// Brings the history up to date with what others recorded (a shared history fetches its
    /// remote); called under a node's lock, before its latest snapshot is read again.
    fn refresh(&self) -> Result<(), HistoryError> {
        Ok(())
    }
}
