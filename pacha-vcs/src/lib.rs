//! pacha's history in git: [`GitHistory`] implements [`pacha_core::History`] over git2.
//!
//! The history is an ordinary bare git repository (`hosts/` by default) with one commit per
//! push, capture, rollback or rebuild of a node, on `main`. Each commit's tree holds every
//! node's latest recorded state: `<node>/files/<path>` (the files as placed),
//! `<node>/scripts/<stage>/<phase>/<name>`, and `<node>/meta.yaml` with owner, group, mode and
//! SHA-256 of each file. Commit messages say what happened (`push web1 production: 3 files
//! changed`) and end with `Pacha-*` trailers; `git log` and `git show` read it as people do.
//! Commits are written from memory (no working tree), and `refs/pacha/nodes/<node>` points at
//! each node's newest commit, so a node's log never walks the others' commits.
//!
//! ```
//! use std::sync::Arc;
//! use pacha_core::{ContentHash, Event, EventKind, History, Mode, NodePath, RecordedFile, Snapshot};
//! use pacha_vcs::{Author, GitHistory};
//!
//! let dir = tempfile::tempdir()?;
//! let history = GitHistory::open(&dir.path().join("hosts"), Author::new("Ada", "ada@example.com"))?;
//! let content: Arc<[u8]> = Arc::from(&b"hello\n"[..]);
//! let snapshot = Snapshot {
//!     files: vec![RecordedFile {
//!         path: NodePath::parse("/etc/motd")?,
//!         sha256: ContentHash::of(&content),
//!         content,
//!         mode: Mode::FILE,
//!         owner: "root".into(),
//!         group: "root".into(),
//!         managed: true,
//!         secret: false,
//!     }],
//!     ..Snapshot::default()
//! };
//! let event = Event {
//!     kind: EventKind::Push,
//!     host: None,
//!     at: None,
//!     node: "web1".into(),
//!     state: Some("production".into()),
//!     changed: vec![NodePath::parse("/etc/motd")?],
//!     failed: false,
//!     detail: None,
//! };
//! let entry = history.record(&event, &snapshot)?;
//! assert_eq!(entry.summary, "push web1 production: 1 file changed");
//! assert_eq!(history.log("web1")?.len(), 1);
//! assert_eq!(history.snapshot("web1", &entry.revision)?, snapshot);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod git;
mod master;
mod meta;

pub use git::{Author, GitHistory, Remote, Synced};

/// Lets the C allocator keep freed memory for reuse instead of handing it back to the system
/// after every object libgit2 writes: each write sets up zlib (about 300 KB, allocated,
/// zeroed and freed), and glibc, by default, returns that to the system every time, so a record
/// spent half its time in page faults. Call it once, early, in a program that records
/// (the `pacha` binary does); it is process-wide and safe to skip.
///
/// How: glibc raises its mmap and trim thresholds to the size of a large block freed after it
/// was mapped (here 1 MiB, so it keeps up to 2 MiB free at the top of the heap). Other
/// allocators just allocate and free one megabyte.
pub fn keep_freed_memory() {
    drop(std::hint::black_box(vec![0u8; 1 << 20]));
}
pub use master::MasterRevision;
