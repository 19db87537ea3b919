//! History speed: `log` of one node in a history of 10,000 commits over 100 nodes, the
//! latest entry and snapshot (what `status` reads), and recording a push of 20 files.
//!
//! Run with `cargo bench -p pacha-vcs`. Targets: log under 100 ms, record under 10 ms.

use std::sync::{Arc, LazyLock};

use pacha_core::{ContentHash, Event, EventKind, History, Mode, NodePath, RecordedFile, Snapshot};
use pacha_vcs::{Author, GitHistory};

fn main() {
    // As the `pacha` binary does.
    pacha_vcs::keep_freed_memory();
    divan::main();
}

fn snapshot(node: usize, round: usize) -> Snapshot {
    let files = (0..20)
        .map(|index| {
            let content = format!(
                "# file {index} of node{node}\nvalue = {}\n",
                if index == 0 { round } else { 0 }
            );
            RecordedFile {
                path: NodePath::parse(&format!("/etc/app/conf{index}.conf")).expect("path"),
                sha256: ContentHash::of(content.as_bytes()),
                content: Arc::from(content.into_bytes()),
                mode: Mode::FILE,
                owner: "root".into(),
                group: "root".into(),
                managed: true,
                secret: false,
            }
        })
        .collect();
    Snapshot {
        files,
        ..Snapshot::default()
    }
}

fn event(node: usize) -> Event {
    Event {
        kind: EventKind::Push,
        host: None,
        at: None,
        node: format!("node{node}"),
        state: Some("production".into()),
        changed: vec![NodePath::parse("/etc/app/conf0.conf").expect("path")],
        failed: false,
        detail: None,
    }
}

struct Big {
    _dir: tempfile::TempDir,
    history: GitHistory,
}

/// 10,000 commits: 100 rounds over 100 nodes.
static BIG: LazyLock<Big> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = GitHistory::open(&dir.path().join("hosts"), Author::new("bench", "bench@example.com")).expect("open");
    for round in 0..100 {
        for node in 0..100 {
            history.record(&event(node), &snapshot(node, round)).expect("record");
        }
    }
    Big { _dir: dir, history }
});

#[divan::bench(sample_count = 20)]
fn log_one_node_of_10000_commits() -> usize {
    let entries = BIG.history.log("node42").expect("log");
    assert_eq!(entries.len(), 100);
    entries.len()
}

#[divan::bench(sample_count = 20)]
fn latest_snapshot_of_one_node() -> usize {
    let entry = BIG.history.latest("node42").expect("latest").expect("some");
    BIG.history
        .snapshot("node42", &entry.revision)
        .expect("snapshot")
        .files
        .len()
}

#[divan::bench(sample_count = 50)]
fn record_a_push_of_20_files(bencher: divan::Bencher<'_, '_>) {
    let history = &BIG.history;
    let mut round = 1000;
    bencher.bench_local(|| {
        round += 1;
        history.record(&event(7), &snapshot(7, round)).expect("record")
    });
}
