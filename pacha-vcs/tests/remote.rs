//! A history shared through a git remote (a bare repository on a path here; over ssh in
//! pacha-cli's tests): records of two masters combine, a record of one node points at that
//! node's previous one wherever it was made, an unreachable remote keeps records local.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use pacha_core::{ContentHash, Event, EventKind, History, Mode, NodePath, RecordedFile, Snapshot};
use pacha_vcs::{Author, GitHistory, Remote};

fn snapshot(content: &str, secret: bool) -> Snapshot {
    Snapshot {
        files: vec![RecordedFile {
            path: NodePath::parse("/etc/motd").unwrap(),
            content: Arc::from(content.as_bytes()),
            sha256: ContentHash::of(content.as_bytes()),
            mode: Mode::FILE,
            owner: "root".into(),
            group: "root".into(),
            managed: true,
            secret,
        }],
        ..Snapshot::default()
    }
}

fn push(node: &str) -> Event {
    Event {
        kind: EventKind::Push,
        node: node.into(),
        state: Some("production".into()),
        changed: vec![NodePath::parse("/etc/motd").unwrap()],
        failed: false,
        detail: None,
        host: None,
        at: None,
    }
}

fn bare(path: &Path) {
    let status = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn shared(dir: &Path, name: &str, remote: &Path) -> GitHistory {
    GitHistory::open(&dir.join(name), Author::new(name, format!("{name}@example.com")))
        .unwrap()
        .with_remote(Remote::new(remote.display().to_string(), "main"))
}

fn remote_log(remote: &Path) -> Vec<String> {
    let output = Command::new("git")
        .arg("--git-dir")
        .arg(remote)
        .args(["log", "--format=%s", "main"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn remote_log_is_empty(remote: &Path) -> bool {
    !Command::new("git")
        .arg("--git-dir")
        .arg(remote)
        .args(["rev-parse", "--verify", "--quiet", "refs/heads/main"])
        .status()
        .unwrap()
        .success()
}

fn message(history: &GitHistory, revision: &str) -> String {
    let output = Command::new("git")
        .arg("--git-dir")
        .arg(history.path())
        .args(["log", "-1", "--format=%B", revision])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn records_of_two_masters_combine_and_each_node_keeps_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    bare(&remote);
    let ada = shared(tmp.path(), "ada", &remote);
    let bob = shared(tmp.path(), "bob", &remote);

    let web1 = ada.record(&push("web1"), &snapshot("web1 by ada\n", false)).unwrap();
    assert_eq!(ada.sync_problem(), None);
    // Bob has not fetched: his record of db1 is built on an older main and still lands.
    let db1 = bob.record(&push("db1"), &snapshot("db1 by bob\n", false)).unwrap();
    assert_eq!(bob.sync_problem(), None);
    let again = bob.record(&push("web1"), &snapshot("web1 by bob\n", false)).unwrap();
    assert_eq!(
        remote_log(&remote),
        [
            "push web1 production: 1 file changed",
            "push db1 production: 1 file changed",
            "push web1 production: 1 file changed"
        ]
    );
    // Bob's record of web1 follows Ada's, though Bob's history never had it before.
    assert!(
        message(&bob, &again.revision).contains(&format!("Pacha-Previous: {}\n", web1.revision)),
        "{}",
        message(&bob, &again.revision)
    );
    assert!(!message(&bob, &db1.revision).contains("Pacha-Previous"));

    // Ada's next record puts hers on top; both read every node's line.
    let after = ada.record(&push("db1"), &snapshot("db1 by ada\n", false)).unwrap();
    assert!(message(&ada, &after.revision).contains(&format!("Pacha-Previous: {}\n", db1.revision)));
    let web1_log: Vec<String> = ada
        .log("web1")
        .unwrap()
        .into_iter()
        .map(|entry| entry.revision)
        .collect();
    assert_eq!(web1_log, [again.revision.clone(), web1.revision.clone()]);
    let snapshot_seen = ada.snapshot("web1", &again.revision).unwrap();
    assert_eq!(&*snapshot_seen.files[0].content, b"web1 by bob\n");
    assert_eq!(ada.unsynced().unwrap(), []);
}

#[test]
fn an_unreachable_remote_keeps_records_local_until_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("not-yet.git");
    let ada = shared(tmp.path(), "ada", &remote);
    let entry = ada.record(&push("web1"), &snapshot("one\n", false)).unwrap();
    let problem = ada.sync_problem().unwrap();
    assert!(problem.contains("not-yet.git"), "{problem}");
    assert_eq!(ada.unsynced().unwrap().len(), 1);
    assert!(ada.sync().is_err(), "still unreachable");

    // Records right after a failed fetch stay local without waiting for the remote again
    // (one push of many nodes pays for an unreachable remote once), until a sync.
    bare(&remote);
    ada.record(&push("db1"), &snapshot("two\n", false)).unwrap();
    assert_eq!(ada.unsynced().unwrap().len(), 2);
    assert!(remote_log_is_empty(&remote));
    let synced = ada.sync().unwrap();
    assert_eq!(synced.sent, 2);
    assert_eq!(ada.sync_problem(), None);
    assert_eq!(ada.unsynced().unwrap(), []);
    assert_eq!(
        remote_log(&remote),
        [
            "push db1 production: 1 file changed",
            "push web1 production: 1 file changed"
        ]
    );
    assert_eq!(ada.latest("web1").unwrap().unwrap().revision, entry.revision);

    // A new master clone starts from the remote.
    let bob = shared(tmp.path(), "bob", &remote);
    bob.fetch_remote().unwrap();
    assert_eq!(bob.latest("web1").unwrap().unwrap().revision, entry.revision);
}

#[test]
fn a_plaintext_secret_never_reaches_the_remote() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    bare(&remote);
    let ada = shared(tmp.path(), "ada", &remote);
    ada.record(&push("web1"), &snapshot("password=hunter2\n", true))
        .unwrap();
    let problem = ada.sync_problem().unwrap();
    assert!(problem.contains("age recipients"), "{problem}");
    assert!(!problem.contains("hunter2"));
    let output = Command::new("git")
        .arg("--git-dir")
        .arg(&remote)
        .args(["log", "--all", "-p"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
    assert_eq!(ada.unsynced().unwrap().len(), 1);
}
