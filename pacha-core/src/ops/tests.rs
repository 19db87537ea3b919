//! The engine's operations end to end over in-memory nodes and history: push and its record,
//! rollback, status, capture, and both ends of pull and watch through the wire protocol.

use crate::edges::history::{History, HistoryError};
use crate::edges::link::{LinkError, MasterLink};
use crate::edges::report::{NodeError, Outcome, Quiet};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::master::Master;
use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::snapshot::EventKind;
use crate::ops::pull::pull;
use crate::ops::push::PushOptions;
use crate::ops::serve::Server;
use crate::ops::status::Drift;
use crate::ops::watch::{WatchSession, Watcher};
use crate::testing::{Memory, MemoryFile, MemoryHistory, StaticPlanner};

fn path(text: &str) -> NodePath {
    NodePath::parse(text).unwrap()
}

/// A master with node `n1` (tracking `/etc/tracked/*`) and node `n2`.
fn master() -> (tempfile::TempDir, Master) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pacha.yaml"), "states: [default, production]\n").unwrap();
    for (node, text) in [("n1", "track: [\"/etc/tracked/*\"]\n"), ("n2", "")] {
        std::fs::create_dir_all(dir.path().join(format!("nodes/{node}"))).unwrap();
        std::fs::write(dir.path().join(format!("nodes/{node}/{node}.conf")), text).unwrap();
    }
    let master = Master::open(dir.path()).unwrap();
    (dir, master)
}

fn edit(memory: &Memory, node: &str, file: &str, content: &str) {
    memory.0.lock().unwrap().get_mut(node).unwrap().files.insert(
        path(file),
        MemoryFile {
            content: content.as_bytes().to_vec(),
            mode: Mode::FILE,
            owner: "root".into(),
        },
    );
}

#[test]
fn a_push_through_the_engine_is_recorded_and_one_that_changes_nothing_is_not() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    let reports = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    let entry = reports[0].recorded.clone().unwrap();
    assert_eq!(entry.summary, "push n1 production: 1 file changed");
    let again = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    assert_eq!(again[0].outcome, Outcome::Unchanged);
    assert_eq!(again[0].recorded, None);
    assert_eq!(history.log("n1").unwrap().len(), 1);
    let dry = PushOptions {
        dry_run: true,
        ..PushOptions::default()
    };
    planner.set_files(&[("/etc/a", "two")]);
    let dry = engine.push("n1", "production", &dry, &Quiet).unwrap();
    assert_eq!(dry[0].outcome, Outcome::WouldChange);
    assert_eq!(history.log("n1").unwrap().len(), 1, "a dry run records nothing");
}

#[test]
fn a_push_keeps_the_tracked_files_captured_before() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    edit(&memory, "n1", "/etc/tracked/x", "by hand");
    let captured = engine.capture("n1", &[], "test").unwrap();
    assert_eq!(captured.changed, [path("/etc/tracked/x")]);
    planner.set_files(&[("/etc/a", "two")]);
    let reports = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    let snapshot = history
        .snapshot("n1", &reports[0].recorded.clone().unwrap().revision)
        .unwrap();
    assert!(
        snapshot.file(&path("/etc/tracked/x")).is_some(),
        "the tracked file captured before stays recorded"
    );
}

#[test]
fn a_history_that_cannot_record_fails_the_node_but_keeps_its_outcome() {
    struct Broken;
    impl History for Broken {
        fn record(&self, _: &crate::Event, _: &crate::Snapshot) -> Result<crate::Entry, HistoryError> {
            Err(HistoryError::Storage {
                path: "hosts".into(),
                context: "recording the commit".into(),
                source: "read-only file system".into(),
            })
        }
        fn log(&self, _: &str) -> Result<Vec<crate::Entry>, HistoryError> {
            Ok(Vec::new())
        }
        fn latest(&self, _: &str) -> Result<Option<crate::Entry>, HistoryError> {
            Ok(None)
        }
        fn entry(&self, node: &str, revision: &str) -> Result<crate::Entry, HistoryError> {
            Err(HistoryError::UnknownRevision {
                node: node.into(),
                revision: revision.into(),
            })
        }
        fn snapshot(&self, node: &str, revision: &str) -> Result<crate::Snapshot, HistoryError> {
            self.entry(node, revision).map(|_| crate::Snapshot::default())
        }
    }
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let memory = Memory::with_nodes(&["n1"]);
    let engine = Engine::new(&master, &planner, &memory, &Broken);
    let report = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()
        .remove(0);
    assert_eq!(report.outcome, Outcome::Changed);
    assert!(report.failed());
    let error = report.error.unwrap();
    assert_eq!(error.kind(), "history");
    assert!(matches!(error, NodeError::History(_)));
    assert!(error.to_string().contains("read-only file system"), "{error}");
}

#[test]
fn capture_skips_unreadable_files_and_keeps_their_recorded_version() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "a1"), ("/etc/b", "b1")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    edit(&memory, "n1", "/etc/a", "a2");
    edit(&memory, "n1", "/etc/b", "b2");
    memory
        .0
        .lock()
        .unwrap()
        .get_mut("n1")
        .unwrap()
        .unreadable
        .push(path("/etc/b"));
    let captured = engine.capture("n1", &[], "test").unwrap();
    assert_eq!(captured.changed, [path("/etc/a")]);
    assert_eq!(captured.skipped, [(path("/etc/b"), "not readable".to_owned())]);
    let entry = captured.recorded.unwrap();
    let snapshot = history.snapshot("n1", &entry.revision).unwrap();
    assert_eq!(&*snapshot.file(&path("/etc/a")).unwrap().content, b"a2");
    assert_eq!(
        &*snapshot.file(&path("/etc/b")).unwrap().content,
        b"b1",
        "the unreadable file keeps its recorded version"
    );
}

#[test]
fn status_reports_drift_and_rollback_restores() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let memory = Memory::with_nodes(&["n1", "n2"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    let first = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()[0]
        .recorded
        .clone()
        .unwrap();
    planner.set_files(&[("/etc/a", "two")]);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    let nodes = ["n1".to_owned(), "n2".to_owned()];
    let clean = engine.status(&nodes, 2);
    assert!(clean[0].as_ref().unwrap().drift.is_empty());
    assert!(clean[1].as_ref().unwrap().latest.is_none(), "n2 was never pushed");
    memory
        .0
        .lock()
        .unwrap()
        .get_mut("n1")
        .unwrap()
        .files
        .remove(&path("/etc/a"));
    let drifted = engine.status(&nodes[..1], 1).remove(0).unwrap();
    assert_eq!(
        drifted.drift,
        [Drift {
            path: path("/etc/a"),
            what: "missing".into()
        }]
    );

    edit(&memory, "n1", "/etc/tracked/new.conf", "made by hand");
    edit(&memory, "n1", "/etc/untracked", "not tracked");
    let drifted = engine.status(&nodes[..1], 1).remove(0).unwrap();
    assert_eq!(
        drifted.drift,
        [
            Drift {
                path: path("/etc/a"),
                what: "missing".into()
            },
            Drift {
                path: path("/etc/tracked/new.conf"),
                what: "new (matches a track glob)".into()
            }
        ]
    );

    let done = engine
        .rollback("n1", &first.revision, &PushOptions::default(), &Quiet)
        .unwrap();
    assert_eq!(done.report.outcome, Outcome::Changed);
    assert_eq!(done.report.recorded.as_ref().unwrap().kind, EventKind::Rollback);
    assert_eq!(memory.content("n1", "/etc/a").unwrap(), b"one");
    assert_eq!(history.log("n1").unwrap()[0].kind, EventKind::Rollback);
    assert!(matches!(
        engine.rollback("n1", "ffff", &PushOptions::default(), &Quiet),
        Err(EngineError::History(HistoryError::UnknownRevision { .. }))
    ));
}

/// A link that hands each message to a server in the same process, as `pacha-transport`'s
/// local link does.
struct InProcess<'a>(Server<'a>);

impl MasterLink for InProcess<'_> {
    fn describe(&self) -> String {
        "in-process".into()
    }

    fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, LinkError> {
        Ok(self.0.answer(message))
    }
}

#[test]
fn a_pull_is_recorded_in_the_masters_history_and_a_restricted_session_serves_one_node() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let master_side = Memory::default();
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &master_side, &history);
    let here = Memory::with_nodes(&["n1"]);

    let mut link = InProcess(engine.serve(Some("n1")));
    let report = pull(
        &mut link,
        "n1",
        Some("production"),
        &here,
        &PushOptions::default(),
        &Quiet,
    )
    .unwrap()
    .report;
    assert_eq!(report.outcome, Outcome::Changed);
    assert_eq!(report.recorded.unwrap().kind, EventKind::Pull);
    assert_eq!(here.content("n1", "/etc/a").unwrap(), b"one");
    assert_eq!(history.log("n1").unwrap().len(), 1);

    // Without a state: the last recorded one.
    planner.set_files(&[("/etc/a", "two")]);
    let report = pull(&mut link, "n1", None, &here, &PushOptions::default(), &Quiet)
        .unwrap()
        .report;
    assert_eq!(report.state, "production");

    let refused = pull(
        &mut link,
        "n2",
        Some("production"),
        &here,
        &PushOptions::default(),
        &Quiet,
    )
    .unwrap_err();
    assert!(
        matches!(&refused, EngineError::Link(LinkError::Refused { kind, .. }) if kind == "refused"),
        "{refused}"
    );
    assert!(history.log("n2").unwrap().is_empty());
}

#[test]
fn a_master_of_another_protocol_version_is_a_clear_error() {
    struct Future;
    impl MasterLink for Future {
        fn describe(&self) -> String {
            "master:/opt/pacha".into()
        }
        fn exchange(&mut self, _: &[u8]) -> Result<Vec<u8>, LinkError> {
            Ok(br#"{"type":"hello","version":99,"pacha":"9.0.0"}"#.to_vec())
        }
    }
    let here = Memory::with_nodes(&["n1"]);
    let err = pull(&mut Future, "n1", None, &here, &PushOptions::default(), &Quiet).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("protocol 99 (pacha 9.0.0)"), "{text}");
    assert!(
        text.contains(&format!("speaks {}", crate::ops::wire::PROTOCOL_VERSION)),
        "{text}"
    );
}

#[test]
fn a_watcher_spools_hand_edits_sends_them_and_records_nothing_when_the_files_match() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one"), ("/etc/b", "b")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    let state = tempfile::tempdir().unwrap();

    let mut link = InProcess(engine.serve(Some("n1")));
    let mut session = WatchSession::open(&mut link).unwrap();
    let mut watcher = Watcher::open("n1", &memory, state.path()).unwrap();
    assert!(!watcher.ready());
    assert!(!watcher.look().unwrap(), "no list, no look");
    watcher.refresh(&mut session).unwrap();
    assert_eq!(watcher.watched(), 2);
    assert!(!watcher.look().unwrap(), "nothing changed by hand");

    edit(&memory, "n1", "/etc/a", "edited");
    memory
        .0
        .lock()
        .unwrap()
        .get_mut("n1")
        .unwrap()
        .files
        .remove(&path("/etc/b"));
    edit(&memory, "n1", "/etc/tracked/new", "new");
    assert!(watcher.look().unwrap());
    assert_eq!(watcher.pending().unwrap(), 1);
    let entries = watcher.send(&mut session).unwrap();
    assert_eq!(watcher.pending().unwrap(), 0, "recorded, so forgotten");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].summary, "capture n1 production (watch): 3 files changed");
    let now = history.snapshot("n1", &entries[0].revision).unwrap();
    assert_eq!(&*now.file(&path("/etc/a")).unwrap().content, b"edited");
    assert!(now.file(&path("/etc/b")).is_none());
    assert_eq!(
        now.file(&path("/etc/tracked/new")).unwrap().sha256,
        ContentHash::of(b"new")
    );
    assert!(!watcher.look().unwrap(), "a change is sent once");

    // A push the watcher sees land is the history already: it records nothing.
    planner.set_files(&[("/etc/a", "pushed"), ("/etc/tracked/new", "new")]);
    let pushed = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    assert!(pushed[0].recorded.is_some());
    let entries = history.log("n1").unwrap().len();
    assert!(watcher.look().unwrap(), "the watcher saw the files change");
    assert_eq!(watcher.send(&mut session).unwrap(), []);
    assert_eq!(history.log("n1").unwrap().len(), entries);
    // After a refresh the watcher starts from the history: the push is no change at all.
    planner.set_files(&[("/etc/a", "pushed again"), ("/etc/tracked/new", "new")]);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    watcher.refresh(&mut session).unwrap();
    assert!(!watcher.look().unwrap());
}

#[test]
fn changes_seen_without_a_master_are_kept_and_each_recorded_once_in_order() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    {
        let mut link = InProcess(engine.serve(Some("n1")));
        let mut session = WatchSession::open(&mut link).unwrap();
        Watcher::open("n1", &memory, state.path())
            .unwrap()
            .refresh(&mut session)
            .unwrap();
    }

    // The master is gone: a watcher started now still looks, from the list it kept.
    let mut watcher = Watcher::open("n1", &memory, state.path()).unwrap();
    assert!(watcher.ready());
    for content in ["two", "three", "four"] {
        edit(&memory, "n1", "/etc/a", content);
        assert!(watcher.look().unwrap());
    }
    assert_eq!(watcher.pending().unwrap(), 3);
    // Killed and started again: the spool is picked up and nothing is seen twice.
    drop(watcher);
    let mut watcher = Watcher::open("n1", &memory, state.path()).unwrap();
    assert_eq!(watcher.pending().unwrap(), 3);
    assert!(!watcher.look().unwrap());

    // Dying after the master recorded the last change but before forgetting it sends it
    // again: the master finds it recorded already.
    let last = state.path().join("spool/000000000003.json");
    let kept = std::fs::read(&last).unwrap();
    let mut link = InProcess(engine.serve(Some("n1")));
    let mut session = WatchSession::open(&mut link).unwrap();
    let entries = watcher.send(&mut session).unwrap();
    let contents: Vec<Vec<u8>> = entries
        .iter()
        .map(|entry| {
            history
                .snapshot("n1", &entry.revision)
                .unwrap()
                .file(&path("/etc/a"))
                .unwrap()
                .content
                .to_vec()
        })
        .collect();
    assert_eq!(contents, [b"two".to_vec(), b"three".to_vec(), b"four".to_vec()]);
    std::fs::write(&last, kept).unwrap();
    let mut watcher = Watcher::open("n1", &memory, state.path()).unwrap();
    watcher.refresh(&mut session).unwrap();
    let entries = watcher.send(&mut session).unwrap();
    assert_eq!(entries, [], "the history already ends with that change");
    assert_eq!(watcher.pending().unwrap(), 0);
}

#[test]
fn a_file_the_plan_drops_is_removed_and_the_history_says_so() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "a"), ("/etc/old", "old"), ("/etc/edited", "e")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    let first = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()[0]
        .recorded
        .clone()
        .unwrap();
    edit(&memory, "n1", "/etc/edited", "changed by hand");
    edit(&memory, "n1", "/etc/tracked/mine", "captured, not placed");
    engine.capture("n1", &[path("/etc/tracked/mine")], "test").unwrap();

    // The dry run says what would go, and what stays.
    planner.set_files(&[("/etc/a", "a")]);
    let dry = PushOptions {
        dry_run: true,
        ..PushOptions::default()
    };
    let report = engine.push("n1", "production", &dry, &Quiet).unwrap().remove(0);
    assert_eq!(report.outcome, Outcome::WouldChange);
    let removed: Vec<&str> = report
        .changes
        .iter()
        .filter(|change| change.kind == crate::ChangeKind::Remove)
        .map(|change| change.destination.as_str())
        .collect();
    assert_eq!(removed, ["/etc/old"]);
    assert!(memory.content("n1", "/etc/old").is_some(), "a dry run removes nothing");

    let report = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()
        .remove(0);
    assert_eq!(report.outcome, Outcome::Changed);
    assert_eq!(memory.content("n1", "/etc/old"), None);
    assert_eq!(
        memory.content("n1", "/etc/edited").unwrap(),
        b"changed by hand",
        "a hand edit is kept"
    );
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].0, path("/etc/edited"));
    assert!(
        memory.content("n1", "/etc/tracked/mine").is_some(),
        "a tracked file is never pacha's to remove"
    );
    let entry = report.recorded.unwrap();
    assert!(entry.changed.contains(&"/etc/old".to_owned()), "{entry:?}");
    let now = history.snapshot("n1", &entry.revision).unwrap();
    assert!(now.file(&path("/etc/old")).is_none());
    assert!(now.file(&path("/etc/edited")).is_some(), "what is kept stays recorded");
    assert!(!now.file(&path("/etc/tracked/mine")).unwrap().managed);

    // --force removes the hand-edited one too.
    let forced = PushOptions {
        force: true,
        ..PushOptions::default()
    };
    engine.push("n1", "production", &forced, &Quiet).unwrap();
    assert_eq!(memory.content("n1", "/etc/edited"), None);

    // Rolling back to the first push brings them back; rolling forward removes them again.
    let back = engine
        .rollback("n1", &first.revision, &PushOptions::default(), &Quiet)
        .unwrap();
    assert_eq!(back.report.outcome, Outcome::Changed, "{:?}", back.report.error);
    assert_eq!(memory.content("n1", "/etc/old").unwrap(), b"old");
    let latest = history.log("n1").unwrap()[1].clone();
    let forward = engine
        .rollback("n1", &latest.revision, &PushOptions::default(), &Quiet)
        .unwrap();
    assert_eq!(forward.report.outcome, Outcome::Changed);
    assert_eq!(
        memory.content("n1", "/etc/old"),
        None,
        "files the target revision lacks are removed"
    );
    assert!(memory.content("n1", "/etc/tracked/mine").is_some());
}

#[test]
fn a_placement_the_history_missed_is_recovered_before_the_next_push() {
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one"), ("/etc/b", "b")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = MemoryHistory::default();
    let engine = Engine::new(&master, &planner, &memory, &history);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();

    // A push whose record never happened (pacha killed after placing): the node's journal
    // knows, the history does not.
    planner.set_files(&[("/etc/a", "two"), ("/etc/c", "c")]);
    let unrecorded = engine.plans("n1", "production").unwrap();
    let placed = crate::testing::push_unrecorded(&unrecorded, &memory, &PushOptions::default(), &Quiet);
    assert_eq!(placed[0].outcome, Outcome::Changed);
    assert_eq!(history.log("n1").unwrap().len(), 1);

    // The next push finds nothing to place, but records what the node holds first.
    let report = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()
        .remove(0);
    let recovered = report.recovered.clone().expect("the missed placement is recovered");
    assert_eq!(recovered.kind, EventKind::Recovered);
    assert_eq!(
        recovered.summary,
        "recovered n1 production (placed by pacha, not recorded then): 3 files changed"
    );
    let snapshot = history.snapshot("n1", &recovered.revision).unwrap();
    assert_eq!(&*snapshot.file(&path("/etc/a")).unwrap().content, b"two");
    assert!(snapshot.file(&path("/etc/b")).is_none());
    assert_eq!(report.outcome, Outcome::Unchanged, "{report:?}");
    let nodes = ["n1".to_owned()];
    assert!(engine.status(&nodes, 1).remove(0).unwrap().drift.is_empty());

    // Once recorded, nothing more is recovered.
    let again = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()
        .remove(0);
    assert_eq!(again.recovered, None);
    assert_eq!(history.log("n1").unwrap().len(), 2);
}

/// The history that fails its next record once (pacha killed while recording, a disk full):
/// what the push placed is recovered by the next push.
#[test]
fn a_push_whose_record_failed_is_recovered_by_the_next_push() {
    struct FailOnce {
        inner: MemoryHistory,
        fail: std::sync::atomic::AtomicBool,
    }
    impl History for FailOnce {
        fn record(&self, event: &crate::Event, snapshot: &crate::Snapshot) -> Result<crate::Entry, HistoryError> {
            if self.fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Err(HistoryError::Corrupt {
                    revision: String::new(),
                    message: "killed while recording".into(),
                });
            }
            self.inner.record(event, snapshot)
        }
        fn log(&self, node: &str) -> Result<Vec<crate::Entry>, HistoryError> {
            self.inner.log(node)
        }
        fn latest(&self, node: &str) -> Result<Option<crate::Entry>, HistoryError> {
            self.inner.latest(node)
        }
        fn entry(&self, node: &str, revision: &str) -> Result<crate::Entry, HistoryError> {
            self.inner.entry(node, revision)
        }
        fn snapshot(&self, node: &str, revision: &str) -> Result<crate::Snapshot, HistoryError> {
            self.inner.snapshot(node, revision)
        }
    }
    let (_dir, master) = master();
    let planner = StaticPlanner::new(&master, &[("/etc/a", "one")]);
    let memory = Memory::with_nodes(&["n1"]);
    let history = FailOnce {
        inner: MemoryHistory::default(),
        fail: std::sync::atomic::AtomicBool::new(false),
    };
    let engine = Engine::new(&master, &planner, &memory, &history);
    engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap();
    planner.set_files(&[("/etc/a", "two")]);
    history.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()
        .remove(0);
    assert_eq!(report.error.as_ref().map(NodeError::kind), Some("history"));
    assert_eq!(history.log("n1").unwrap().len(), 1);
    let report = engine
        .push("n1", "production", &PushOptions::default(), &Quiet)
        .unwrap()
        .remove(0);
    let recovered = report.recovered.expect("recovered");
    let snapshot = history.snapshot("n1", &recovered.revision).unwrap();
    assert_eq!(&*snapshot.file(&path("/etc/a")).unwrap().content, b"two");
    let nodes = ["n1".to_owned()];
    assert!(engine.status(&nodes, 1).remove(0).unwrap().drift.is_empty());
}
