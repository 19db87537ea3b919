//! Push against N nodes on a local sshd (N = 1, 8, 32), 20 templates each: first push,
//! no-change push, one template changed; and the baselines they are judged against: `ssh
//! host true` and `tar | ssh host tar -x` per node over the same open master connections.
//!
//! Pushes go through the engine as `pacha push` does, so each one that changes a node is also
//! recorded in a real git history.
//!
//! Run with `cargo bench -p pacha-cli --bench push`. Needs `/usr/sbin/sshd`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex};

use pacha_core::{Engine, Master, Outcome, PushOptions, Quiet};
use pacha_render::Renderer;
use pacha_transport::SshConnector;
use pacha_vcs::{Author, GitHistory};

fn main() {
    divan::main();
}

struct Fleet {
    _sshd: fixtures::Sshd,
    dir: tempfile::TempDir,
    leaves: Vec<String>,
    connector: SshConnector,
}

impl Fleet {
    fn new(nodes: usize) -> Fleet {
        let aliases: Vec<String> = (0..nodes).map(|i| format!("node{i}.example.com")).collect();
        let alias_refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
        let sshd = fixtures::Sshd::start(&alias_refs);
        let dir = tempfile::Builder::new().prefix("pb").tempdir().expect("temp dir");
        let leaves = fixtures::ssh_fleet(dir.path(), &sshd, nodes);
        let connector = SshConnector::new(dir.path().join("c")).expect("control dir");
        let fleet = Fleet {
            _sshd: sshd,
            dir,
            leaves,
            connector,
        };
        // Warm the masters: every measurement below runs over open connections.
        fleet.push_all(Outcome::Changed);
        fleet
    }

    fn push_all(&self, expected: Outcome) {
        let master = Master::open(self.dir.path()).expect("master");
        let renderer = Renderer::new(&master);
        let history =
            GitHistory::open(&master.history_dir(), Author::new("bench", "bench@example.com")).expect("history");
        let engine = Engine::new(&master, &renderer, &self.connector, &history);
        let options = PushOptions {
            jobs: self.leaves.len().min(32),
            ..PushOptions::default()
        };
        let reports = engine.push("fleet", "production", &options, &Quiet).expect("renders");
        for report in &reports {
            assert_eq!(report.outcome, expected, "{}: {:?}", report.node, report.error);
        }
    }

    fn roots(&self) -> PathBuf {
        self.dir.path().join("roots")
    }

    fn socket(&self, node: usize) -> PathBuf {
        let master = Master::open(self.dir.path()).expect("master");
        self.connector
            .socket_path(&master.target(&self.leaves[node]).expect("target"))
    }
}

static FLEETS: LazyLock<Mutex<HashMap<usize, Fleet>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn with_fleet<R>(nodes: usize, run: impl FnOnce(&Fleet) -> R) -> R {
    let mut fleets = FLEETS.lock().expect("fleets");
    let fleet = fleets.entry(nodes).or_insert_with(|| Fleet::new(nodes));
    run(fleet)
}

const NODES: [usize; 3] = [1, 8, 32];

/// Every node brand new: all 20 files placed.
#[divan::bench(args = NODES, sample_count = 10, sample_size = 1)]
fn first_push(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    with_fleet(nodes, |fleet| {
        let roots = fleet.roots();
        bencher
            .with_inputs(|| {
                let _ = std::fs::remove_dir_all(&roots);
            })
            .bench_local_values(|()| fleet.push_all(Outcome::Changed));
    });
}

/// Nothing changed: one round trip per node.
#[divan::bench(args = NODES, sample_count = 20, sample_size = 1)]
fn no_change_push(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    with_fleet(nodes, |fleet| {
        fleet.push_all(Outcome::Unchanged);
        bencher.bench_local(|| fleet.push_all(Outcome::Unchanged));
    });
}

/// One template changed: one file per node placed.
#[divan::bench(args = NODES, sample_count = 20, sample_size = 1)]
fn one_template_changed(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    with_fleet(nodes, |fleet| {
        let template = fleet.dir.path().join("templates/base/default/conf0.conf.hbs");
        let original = std::fs::read_to_string(&template).expect("template");
        let flip = std::cell::Cell::new(false);
        bencher
            .with_inputs(|| {
                flip.set(!flip.get());
                std::fs::write(&template, format!("{original}# flip {}\n", flip.get())).expect("write");
            })
            .bench_local_values(|()| fleet.push_all(Outcome::Changed));
    });
}

/// Baseline: `ssh host true` per node, in parallel, over the open masters.
#[divan::bench(args = NODES, sample_count = 20, sample_size = 1)]
fn baseline_ssh_true(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    with_fleet(nodes, |fleet| {
        let sockets: Vec<PathBuf> = (0..nodes).map(|i| fleet.socket(i)).collect();
        bencher.bench_local(|| {
            in_parallel(&sockets, 32, |index, socket| {
                ssh(socket, &format!("node{index}.example.com"), "true", None)
            });
        });
    });
}

/// Baseline: the same bytes as a first push, shipped with one `tar | ssh` per node.
#[divan::bench(args = NODES, sample_count = 10, sample_size = 1)]
fn baseline_tar_ssh(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    with_fleet(nodes, |fleet| {
        let out = fleet.dir.path().join("rendered");
        let master = Master::open(fleet.dir.path()).expect("master");
        let renderer = Renderer::new(&master);
        for node in &fleet.leaves {
            let plan = renderer.plan(node, "production").expect("plan");
            for file in &plan.files {
                let path = out.join(node).join(file.destination.relative());
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, &file.content).expect("write");
            }
        }
        let sockets: Vec<PathBuf> = (0..nodes).map(|i| fleet.socket(i)).collect();
        let target = fleet.dir.path().join("tar-target");
        bencher.bench_local(|| {
            in_parallel(&sockets, 32, |index, socket| {
                let mut tar = Command::new("tar")
                    .arg("-C")
                    .arg(out.join(format!("node{index}")))
                    .args(["-cf", "-", "."])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("tar");
                let remote = format!(
                    "mkdir -p {0}/node{index} && tar -C {0}/node{index} -xf -",
                    target.display()
                );
                ssh(
                    socket,
                    &format!("node{index}.example.com"),
                    &remote,
                    tar.stdout.take().map(Stdio::from),
                );
                assert!(tar.wait().expect("tar ends").success());
            });
        });
    });
}

/// Runs `work` over `items` on up to `jobs` threads.
fn in_parallel<T: Sync>(items: &[T], jobs: usize, work: impl Fn(usize, &T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    work(index, item);
                }
            });
        }
    });
}

fn ssh(socket: &Path, host: &str, command: &str, stdin: Option<Stdio>) {
    let status = Command::new("ssh")
        .arg("-S")
        .arg(socket)
        .args(["-o", "ControlMaster=no", host, command])
        .stdin(stdin.unwrap_or_else(Stdio::null))
        .stdout(Stdio::null())
        .status()
        .expect("ssh");
    assert!(status.success());
}
