//! The node's journal: what pacha manages on a node (each path with the hash and mode it
//! placed), stored on the node by every apply before anything is renamed. The next command
//! that takes the node's lock compares it with the node's latest history entry: a difference is
//! a placement the history missed (pacha killed, the connection cut, the history unwritable),
//! and is recorded as `recovered` before anything else happens.

use std::collections::BTreeMap;

use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::snapshot::Snapshot;

/// The first line of a journal, with its format's version. Version 2 ends with [`END`]: a node
/// may write its journal in place (not by a rename), so a journal cut short by a crash must be
/// told from a whole one. Version 1 (always renamed into place, so always whole) is still read.
const HEADER: &str = "pacha-journal 2";
const HEADER_1: &str = "pacha-journal 1";
/// The last line of a version 2 journal.
const END: &str = "end";

/// Path, hash and mode of every file pacha manages on a node.
pub(crate) type Managed = BTreeMap<NodePath, (ContentHash, Mode)>;

/// A node's journal: who placed last, in which state, and what pacha manages there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Journal {
    /// The pacha that placed (its lock holder text: command, user, host, pid).
    pub(crate) by: String,
    /// The state it placed.
    pub(crate) state: String,
    pub(crate) files: Managed,
}

/// A path on one line: `%` and newlines escaped.
fn escape(path: &str) -> String {
    path.replace('%', "%25").replace('\n', "%0A")
}

fn unescape(text: &str) -> String {
    text.replace("%0A", "\n").replace("%25", "%")
}

/// The journal's bytes.
pub(crate) fn encode(journal: &Journal) -> Vec<u8> {
    let mut text = format!(
        "{HEADER}\nby {}\nstate {}\n",
        escape(&journal.by),
        escape(&journal.state)
    );
    for (path, (sha256, mode)) in &journal.files {
        text.push_str(&format!("{sha256} {mode} {}\n", escape(path.as_str())));
    }
    text.push_str(END);
    text.push('\n');
    text.into_bytes()
}

/// Reads a journal; `None` when it is not one this pacha writes, or is cut short (then it is not
/// trusted: nothing was renamed after a journal that was not written whole).
pub(crate) fn decode(bytes: &[u8]) -> Option<Journal> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (header, body) = text.split_once('\n')?;
    let body = match header {
        // `end` as a line of its own, not the end of a path's line.
        HEADER => body
            .strip_suffix(&format!("{END}\n"))
            .filter(|rest| rest.is_empty() || rest.ends_with('\n'))?,
        HEADER_1 => body,
        _ => return None,
    };
    let mut lines = body.lines();
    let mut journal = Journal {
        by: unescape(lines.next()?.strip_prefix("by ")?),
        state: unescape(lines.next()?.strip_prefix("state ")?),
        files: Managed::new(),
    };
    for line in lines {
        let (sha256, rest) = line.split_once(' ')?;
        let (mode, path) = rest.split_once(' ')?;
        journal.files.insert(
            NodePath::parse(&unescape(path)).ok()?,
            (ContentHash::parse(sha256)?, Mode::parse(mode).ok()?),
        );
    }
    Some(journal)
}

/// What a snapshot says pacha manages on the node.
pub(crate) fn of_snapshot(snapshot: Option<&Snapshot>) -> Managed {
    snapshot
        .into_iter()
        .flat_map(|snapshot| &snapshot.files)
        .filter(|file| file.managed)
        .map(|file| (file.path.clone(), (file.sha256, file.mode)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_round_trip_any_path() {
        let mut journal = Journal {
            by: "pacha push by ada@admin\n(pid 7)".into(),
            state: "production".into(),
            files: Managed::new(),
        };
        journal.files.insert(
            NodePath::parse("/etc/odd\nname 100%").unwrap(),
            (ContentHash::of(b"x"), Mode::FILE),
        );
        journal.files.insert(
            NodePath::parse("/etc/motd").unwrap(),
            (ContentHash::of(b"y"), Mode::EXECUTABLE),
        );
        // Last in the journal, a path whose line ends as the journal does.
        journal.files.insert(
            NodePath::parse("/zz/backend").unwrap(),
            (ContentHash::of(b"z"), Mode::FILE),
        );
        let bytes = encode(&journal);
        assert_eq!(decode(&bytes), Some(journal.clone()));
        assert_eq!(decode(b"something else\n"), None);
        // Cut short anywhere (a crash while the node wrote it in place): never trusted, even
        // where the cut falls at the end of a line.
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        // Version 1, renamed into place by an earlier pacha, is read as it was.
        let old = String::from_utf8(bytes)
            .unwrap()
            .replace("pacha-journal 2", "pacha-journal 1");
        let old = old.strip_suffix("end\n").unwrap();
        assert_eq!(decode(old.as_bytes()), Some(journal));
        assert_eq!(decode(&encode(&Journal::default())), Some(Journal::default()));
    }
}
