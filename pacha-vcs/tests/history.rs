use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pacha_core::{
    ContentHash, Event, EventKind, History, HistoryError, Mode, NodePath, RecordedDir, RecordedFile, RecordedLink,
    RecordedScript, Snapshot, Stage,
};
use pacha_vcs::{Author, GitHistory};

fn file(path: &str, content: &[u8], mode: &str, owner: &str) -> RecordedFile {
    RecordedFile {
        path: NodePath::parse(path).unwrap(),
        content: Arc::from(content),
        sha256: ContentHash::of(content),
        mode: Mode::parse(mode).unwrap(),
        owner: owner.into(),
        group: "adm".into(),
        managed: true,
        secret: false,
    }
}

fn snapshot(version: &str) -> Snapshot {
    let mut snapshot = Snapshot {
        files: vec![
            file("/etc/motd", format!("motd {version}\n").as_bytes(), "0644", "root"),
            file("/usr/local/bin/tool", b"\x7fELF\x00\x01binary", "4755", "root"),
            file("/etc/sticky dir/it's here.conf", b"x", "1777", "www-data"),
            file("/etc/secret.key", b"k", "0600", "1001"),
            file("/etc/.git/config", b"[core]\n", "0644", "root"),
        ],
        scripts: vec![RecordedScript {
            stage: Stage::Post,
            phase: "reload".into(),
            name: "10-reload".into(),
            content: Arc::from(&b"#!/bin/sh\necho reload\n"[..]),
            sha256: ContentHash::of(b"#!/bin/sh\necho reload\n"),
        }],
        links: vec![RecordedLink {
            path: NodePath::parse("/etc/systemd/system/multi-user.target.wants/app.service").unwrap(),
            target: format!("../app-{version}.service"),
            managed: true,
        }],
        dirs: vec![RecordedDir {
            path: NodePath::parse("/srv/cache").unwrap(),
            mode: Mode::parse("2770").unwrap(),
            owner: "www-data".into(),
            group: "adm".into(),
        }],
    };
    snapshot.normalize();
    snapshot
}

fn event(kind: EventKind, node: &str, changed: &[&str]) -> Event {
    Event {
        kind,
        node: node.into(),
        state: Some("production".into()),
        changed: changed.iter().map(|path| NodePath::parse(path).unwrap()).collect(),
        failed: false,
        detail: None,
        host: None,
        at: None,
    }
}

fn history(dir: &std::path::Path) -> GitHistory {
    GitHistory::open(&dir.join("hosts"), Author::new("Ada Admin", "ada@example.com")).unwrap()
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir.join("hosts"))
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn records_and_reads_back_every_detail() {
    let tmp = tempfile::tempdir().unwrap();
    let history = history(tmp.path());
    let first = history
        .record(&event(EventKind::Push, "web1", &["/etc/motd"]), &snapshot("one"))
        .unwrap();
    history
        .record(&event(EventKind::Push, "db1", &["/etc/motd"]), &snapshot("db"))
        .unwrap();
    let mut failed = event(EventKind::Push, "web1", &["/etc/motd"]);
    failed.failed = true;
    let second = history.record(&failed, &snapshot("two")).unwrap();

    assert_eq!(first.summary, "push web1 production: 1 file changed");
    assert_eq!(second.summary, "push web1 production (failed): 1 file changed");
    assert!(second.failed);
    assert_eq!(second.author, "Ada Admin <ada@example.com>");
    let log = history.log("web1").unwrap();
    assert_eq!(
        log.iter().map(|e| e.revision.clone()).collect::<Vec<_>>(),
        [second.revision.clone(), first.revision.clone()]
    );
    assert_eq!(log[1].changed, ["/etc/motd"]);
    assert_eq!(history.log("db1").unwrap().len(), 1);
    assert!(history.log("nobody").unwrap().is_empty());
    assert_eq!(history.latest("web1").unwrap().unwrap().revision, second.revision);

    // Contents, all twelve mode bits, owners and scripts come back exactly.
    assert_eq!(history.snapshot("web1", &first.revision).unwrap(), snapshot("one"));
    assert_eq!(history.snapshot("web1", &second.revision).unwrap(), snapshot("two"));

    // A unique prefix is enough; other nodes' revisions and unknown ones are clear errors.
    assert_eq!(history.entry("web1", &first.revision[..10]).unwrap(), first);
    let db = history.latest("db1").unwrap().unwrap();
    let err = history.entry("web1", &db.revision).unwrap_err();
    assert!(matches!(err, HistoryError::OtherNode { .. }), "{err}");
    assert!(err.to_string().contains("records node \"db1\", not \"web1\""), "{err}");
    let err = history.entry("web1", "deadbeef").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no revision \"deadbeef\" in the history of node \"web1\""
    );
    // HEAD and HEAD~N count in the node's own log; git's other syntax is not taken.
    let log = history.log("web1").unwrap();
    assert_eq!(history.entry("web1", "HEAD").unwrap(), log[0]);
    assert_eq!(history.entry("web1", "HEAD~1").unwrap(), log[1]);
    for revision in ["HEAD~99", "HEAD^", "main~1", "HEAD~x"] {
        assert!(
            matches!(
                history.entry("web1", revision),
                Err(HistoryError::UnknownRevision { .. })
            ),
            "{revision}"
        );
    }
}

#[test]
fn plain_git_reads_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let history = history(tmp.path());
    let entry = history
        .record(&event(EventKind::Push, "web1", &["/etc/motd"]), &snapshot("one"))
        .unwrap();
    history
        .record(
            &event(EventKind::Capture, "web1", &["/etc/motd"]),
            &snapshot("hand edit"),
        )
        .unwrap();
    let log = git(tmp.path(), &["log", "--format=%s|%an"]);
    assert_eq!(
        log,
        "capture web1 production: 1 file changed|Ada Admin\npush web1 production: 1 file changed|Ada Admin\n"
    );
    assert_eq!(
        git(
            tmp.path(),
            &["show", &format!("{}:web1/files/etc/motd", entry.revision)]
        ),
        "motd one\n"
    );
    let meta = git(tmp.path(), &["show", "main:web1/meta.yaml"]);
    assert!(
        meta.contains("/usr/local/bin/tool:") && meta.contains("mode: '4755'"),
        "{meta}"
    );
    let links = git(
        tmp.path(),
        &[
            "ls-tree",
            "main",
            "web1/files/etc/systemd/system/multi-user.target.wants/",
        ],
    );
    assert!(links.starts_with("120000 blob"), "a link is a git symlink: {links}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tmp.path().join("hosts"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "the history is private whatever the umask");
    git(tmp.path(), &["fsck", "--strict"]);
}

#[test]
fn two_recorders_at_once_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    history(tmp.path());
    std::thread::scope(|scope| {
        for node in ["a", "b", "c"] {
            let dir = tmp.path().to_path_buf();
            scope.spawn(move || {
                let history = history(&dir);
                for round in 0..15 {
                    history
                        .record(
                            &event(EventKind::Push, node, &["/etc/motd"]),
                            &snapshot(&format!("{node}{round}")),
                        )
                        .unwrap();
                }
            });
        }
    });
    let history = history(tmp.path());
    for node in ["a", "b", "c"] {
        assert_eq!(history.log(node).unwrap().len(), 15, "{node}");
    }
    assert_eq!(git(tmp.path(), &["rev-list", "--count", "main"]).trim(), "45");
}

#[test]
fn a_record_cut_short_before_the_node_ref_moved_is_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let history = history(tmp.path());
    let first = history
        .record(&event(EventKind::Push, "web1", &[]), &snapshot("one"))
        .unwrap();
    let second = history
        .record(&event(EventKind::Push, "web1", &[]), &snapshot("two"))
        .unwrap();
    // As if pacha died between moving main and moving the node's ref.
    git(
        tmp.path(),
        &["update-ref", "refs/pacha/nodes/77656231", &first.revision],
    );
    assert_eq!(history.latest("web1").unwrap().unwrap().revision, second.revision);
    assert_eq!(history.log("web1").unwrap().len(), 2);
    history
        .record(&event(EventKind::Push, "db1", &[]), &snapshot("db"))
        .unwrap();
    assert_eq!(
        git(tmp.path(), &["rev-parse", "refs/pacha/nodes/77656231"]).trim(),
        second.revision
    );
}

/// Records in a loop until killed; run by `a_history_written_by_a_killed_process_is_valid`.
#[test]
#[ignore = "a helper process of another test"]
fn recorder_child() {
    let Some(dir) = std::env::var_os("PACHA_VCS_RECORDER_DIR") else {
        return;
    };
    let history = history(std::path::Path::new(&dir));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for round in 0.. {
        let mut snapshot = snapshot(&round.to_string());
        snapshot
            .files
            .push(file(&format!("/var/big{}", round % 7), &big, "0644", "root"));
        snapshot.normalize();
        history
            .record(&event(EventKind::Push, "web1", &["/etc/motd"]), &snapshot)
            .unwrap();
    }
}

#[test]
fn a_history_written_by_a_killed_process_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    history(tmp.path());
    for delay_ms in [0, 1, 3, 7, 15, 30] {
        let before = history(tmp.path()).log("web1").unwrap().len();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "history::recorder_child", "--ignored", "--nocapture"])
            .env("PACHA_VCS_RECORDER_DIR", tmp.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill it while it records: once it has recorded at least once, after a delay.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while history(tmp.path()).log("web1").unwrap().len() <= before {
            assert!(std::time::Instant::now() < deadline, "the recorder never recorded");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        git(tmp.path(), &["fsck", "--strict", "--no-dangling"]);
        let history = history(tmp.path());
        let log = history.log("web1").unwrap();
        assert!(log.len() > before);
        for entry in log.iter().take(3) {
            history.snapshot("web1", &entry.revision).unwrap();
        }
        history
            .record(&event(EventKind::Capture, "web1", &[]), &snapshot("after"))
            .unwrap();
    }
}

#[test]
fn ref_locks_left_by_a_killed_recorder_do_not_block_the_next_record() {
    let tmp = tempfile::tempdir().unwrap();
    let history = history(tmp.path());
    history
        .record(&event(EventKind::Push, "web1", &[]), &snapshot("one"))
        .unwrap();
    // What a recorder killed while moving refs leaves behind (git would refuse to go on too).
    std::fs::write(tmp.path().join("hosts/refs/heads/main.lock"), "").unwrap();
    std::fs::write(tmp.path().join("hosts/refs/pacha/nodes/77656231.lock"), "").unwrap();
    history
        .record(&event(EventKind::Push, "web1", &[]), &snapshot("two"))
        .unwrap();
    assert_eq!(history.log("web1").unwrap().len(), 2);
    git(tmp.path(), &["fsck", "--strict"]);
}
