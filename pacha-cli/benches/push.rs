//! Push against N nodes on a local sshd (N = 1, 8, 32), 20 templates each: first push,
//! no-change push, one template changed; and the baselines they are judged against: `ssh
//! host true` and `tar | ssh host tar -x` per node over the same open master connections.
//!
//! Pushes go through the engine as `pacha push` does, so each one that changes a node is also
//! recorded in a real git history.
//!
//! First, before the warm benchmarks, a table of **cold** pushes (every connection new, as a
//! `pacha push` run from a shell is) for N = 1 and 8 (`PACHA_BENCH_COLD=1,8,32` to choose),
//! each cell with its ratio to the floor measured in the same run: one `tar | ssh host tar -x`
//! per node over a new connection. `PACHA_BENCH_COLD=0` skips it; `PACHA_BENCH_TIMINGS=1`
//! prints the first node's connect, inspect and apply times of every push.
//! `PACHA_BENCH_FLEET=100,300` adds hundreds of nodes over 8 sshd instances (see
//! `big_fleets`).
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
    // As the `pacha` binary does: pushes run in this process.
    pacha_vcs::keep_freed_memory();
    let cold = std::env::var("PACHA_BENCH_COLD").unwrap_or_else(|_| "1,8".to_owned());
    let sizes: Vec<usize> = cold
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .filter(|size| *size > 0)
        .collect();
    if !sizes.is_empty() {
        println!("cold pushes (new connections), median of {COLD_SAMPLES}; ratio to one `tar | ssh` per node:");
        println!(
            "{:>5}  {:>10}  {:>16}  {:>16}  {:>16}",
            "nodes", "floor", "first push", "no change", "one change"
        );
        for nodes in sizes {
            cold_row(nodes);
        }
    }
    big_fleets();
    divan::main();
}

const COLD_SAMPLES: usize = 9;

/// One row of the cold table. The samples are taken in rounds (the floor, a first push, a
/// no-change push, a one-template change), so that a machine that slows down or speeds up
/// during the run moves the floor and the pushes alike.
fn cold_row(nodes: usize) {
    let fleet = Fleet::new(nodes);
    let roots = fleet.roots();
    let template = fleet.dir.path().join("templates/base/default/conf0.conf.hbs");
    let original = std::fs::read_to_string(&template).expect("template");
    // Each sample as a `pacha push` run from a shell with no master open: a connector of its
    // own over the control folder the last one left (as the CLI's stays in
    // `$XDG_RUNTIME_DIR/pacha`), every master closed after the sample.
    let push = |expected: Outcome| {
        let connector = SshConnector::new(fleet.dir.path().join("cold")).expect("control dir");
        let time = timed(|| fleet.push_with(&connector, expected));
        // Kept masters would load the next samples' sshd.
        connector.disconnect_all();
        time
    };
    // The empty folders a first push and the floor start from are made by moving the last
    // round's files aside, not by deleting them: on a filesystem without a journal, ext4 skips
    // every inode freed in the last minute when it makes a file, so hundreds deleted just
    // before a sample would charge whoever makes more files for the bench's own clean-up.
    // (Deleted with the bench's folder, at the end.)
    let aside = fleet.dir.path().join("aside");
    std::fs::create_dir_all(&aside).expect("aside");
    let mut samples: [Vec<std::time::Duration>; 4] = Default::default();
    for round in 0..COLD_SAMPLES {
        let _ = std::fs::rename(fleet.dir.path().join("tar-target"), aside.join(format!("tar-{round}")));
        samples[0].push(timed(|| fleet.tar_ssh_cold()));
        std::fs::rename(&roots, aside.join(format!("roots-{round}"))).expect("roots aside");
        samples[1].push(push(Outcome::Changed));
        samples[2].push(push(Outcome::Unchanged));
        std::fs::write(&template, format!("{original}# cold {round}\n")).expect("write");
        samples[3].push(push(Outcome::Changed));
    }
    let [floor, first, unchanged, changed] = samples.map(median);
    let show = |cell: std::time::Duration| {
        format!(
            "{:>7.1} ms {:>4.2}x",
            cell.as_secs_f64() * 1000.0,
            cell.as_secs_f64() / floor.as_secs_f64()
        )
    };
    println!(
        "{nodes:>5}  {:>7.1} ms  {:>16}  {:>16}  {:>16}",
        floor.as_secs_f64() * 1000.0,
        show(first),
        show(unchanged),
        show(changed)
    );
}

fn timed(work: impl FnOnce()) -> std::time::Duration {
    let start = std::time::Instant::now();
    work();
    start.elapsed()
}

fn median(mut samples: Vec<std::time::Duration>) -> std::time::Duration {
    samples.sort();
    samples[samples.len() / 2]
}

struct Fleet {
    sshd: fixtures::Sshd,
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
            sshd,
            dir,
            leaves,
            connector,
        };
        // Warm the masters: every measurement below runs over open connections.
        fleet.push_all(Outcome::Changed);
        fleet
    }

    fn push_all(&self, expected: Outcome) {
        self.push_with(&self.connector, expected);
    }

    /// A push of the whole fleet through `connector`, as `pacha push fleet production`
    /// does: the master opened, plans rendered, each node pushed and recorded.
    fn push_with(&self, connector: &SshConnector, expected: Outcome) {
        let master = Master::open(self.dir.path()).expect("master");
        let renderer = Renderer::new(&master);
        let history =
            GitHistory::open(&master.history_dir(), Author::new("bench", "bench@example.com")).expect("history");
        let engine = Engine::new(&master, &renderer, connector, &history);
        let options = PushOptions {
            jobs: self.leaves.len().min(32),
            ..PushOptions::default()
        };
        let reports = engine.push("fleet", "production", &options, &Quiet).expect("renders");
        if std::env::var_os("PACHA_BENCH_TIMINGS").is_some() {
            let timings = &reports[0].timings;
            eprintln!(
                "connect {:?} inspect {:?} apply {:?} total {:?}",
                timings.connect, timings.inspect, timings.apply, timings.total
            );
        }
        for report in &reports {
            assert_eq!(report.outcome, expected, "{}: {:?}", report.node, report.error);
        }
    }

    /// The floor: the bytes of a first push as one `tar | ssh host tar -x` per node, each
    /// over a new connection, in parallel as a push goes.
    fn tar_ssh_cold(&self) {
        let out = self.rendered();
        let target = self.dir.path().join("tar-target");
        in_parallel(&self.leaves, 32, |index, node| {
            let mut ssh = Command::new("ssh");
            ssh.arg("-F")
                .arg(&self.sshd.config)
                .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
                .arg(format!("{node}.example.com"));
            tar_over_ssh(&out.join(node), ssh, &target.join(format!("node{index}")));
        });
    }

    /// Every node's rendered files under `rendered/NODE/` (written once).
    fn rendered(&self) -> PathBuf {
        let out = self.dir.path().join("rendered");
        if out.is_dir() {
            return out;
        }
        let master = Master::open(self.dir.path()).expect("master");
        let renderer = Renderer::new(&master);
        for node in &self.leaves {
            let plan = renderer.plan(node, "production").expect("plan");
            for file in &plan.files {
                let path = out.join(node).join(file.destination.relative());
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, &file.content).expect("write");
            }
        }
        out
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

/// Baseline: the same bytes as a first push, shipped with one `tar | ssh` per node into an
/// empty folder (as a first push places them in empty roots).
#[divan::bench(args = NODES, sample_count = 10, sample_size = 1)]
fn baseline_tar_ssh(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    with_fleet(nodes, |fleet| {
        let out = fleet.rendered();
        let sockets: Vec<PathBuf> = (0..nodes).map(|i| fleet.socket(i)).collect();
        let target = fleet.dir.path().join("tar-target");
        bencher
            .with_inputs(|| {
                let _ = std::fs::remove_dir_all(&target);
            })
            .bench_local_values(|()| {
                in_parallel(&sockets, 32, |index, socket| {
                    let mut ssh = Command::new("ssh");
                    ssh.arg("-S")
                        .arg(socket)
                        .args(["-o", "ControlMaster=no", &format!("node{index}.example.com")]);
                    tar_over_ssh(
                        &out.join(format!("node{index}")),
                        ssh,
                        &target.join(format!("node{index}")),
                    );
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

/// One `tar -c` of `source` piped into `ssh` (its options and host given) running `mkdir -p
/// TARGET && tar -x` there: the floor every push is measured against.
fn tar_over_ssh(source: &Path, mut ssh: Command, target: &Path) {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(source)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let status = ssh
        .arg(format!("mkdir -p {0} && tar -C {0} -xf -", target.display()))
        .stdin(tar.stdout.take().map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::null())
        .status()
        .expect("ssh");
    assert!(status.success(), "tar | ssh into {}", target.display());
    assert!(tar.wait().expect("tar ends").success());
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

/// Hundreds of nodes (`PACHA_BENCH_FLEET=100,300`): node aliases spread over 8 test sshd
/// instances, each node with its own root; the `pacha` binary pushes them cold with `--jobs
/// 32` and `--jobs 100`. Wall time, client CPU and peak memory (`/usr/bin/time`), and the
/// floor (one cold `tar | ssh` per node, as parallel) at the same N.
fn big_fleets() {
    let Ok(sizes) = std::env::var("PACHA_BENCH_FLEET") else {
        return;
    };
    let sizes: Vec<usize> = sizes.split(',').filter_map(|size| size.trim().parse().ok()).collect();
    println!("large fleets (8 sshd, cold, one run each): wall s / client CPU s / peak MB");
    for nodes in sizes {
        let dir = tempfile::Builder::new().prefix("pf").tempdir().expect("temp dir");
        let aliases: Vec<String> = (0..nodes).map(|i| format!("node{i}.example.com")).collect();
        let servers: Vec<fixtures::Sshd> = aliases
            .chunks(nodes.div_ceil(8))
            .map(|chunk| fixtures::Sshd::start(&chunk.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect();
        let config = dir.path().join("fleet_ssh_config");
        let known = dir.path().join("fleet_known_hosts");
        let mut includes = String::new();
        let mut keys = String::new();
        for server in &servers {
            includes.push_str(&format!("Include {}\n", server.config.display()));
            keys.push_str(&std::fs::read_to_string(&server.known_hosts).expect("known_hosts"));
        }
        std::fs::write(&config, includes).expect("ssh_config");
        std::fs::write(&known, keys).expect("known_hosts");
        let roots = dir.path().join("roots");
        let shape = fixtures::FleetShape {
            nodes,
            metas: 4,
            templates: 20,
        };
        let leaves = fixtures::generate_fleet(dir.path(), shape, &|i| {
            format!("root: {}\n", roots.join(format!("node{i}")).display())
        });
        let settings = std::fs::read_to_string(dir.path().join("pacha.yaml")).expect("pacha.yaml");
        std::fs::write(
            dir.path().join("pacha.yaml"),
            format!(
                "{settings}ssh:\n  config_file: {}\n  known_hosts: {}\n  connect_timeout: 30\n",
                config.display(),
                known.display()
            ),
        )
        .expect("pacha.yaml");
        let fleet = Fleet {
            sshd: fixtures::Sshd::start(&[]),
            connector: SshConnector::new(dir.path().join("c")).expect("control dir"),
            dir,
            leaves,
        };
        let out = fleet.rendered();
        let template = fleet.dir.path().join("templates/base/default/conf0.conf.hbs");
        let original = std::fs::read_to_string(&template).expect("template");
        // Last runs' files moved aside, not deleted (see `cold_row`).
        let aside = fleet.dir.path().join("aside");
        std::fs::create_dir_all(&aside).expect("aside");
        for jobs in [32, 100] {
            let _ = std::fs::rename(fleet.dir.path().join("tar-target"), aside.join(format!("tar-{jobs}")));
            let floor = timed(|| {
                in_parallel(&fleet.leaves, jobs, |index, node| {
                    let target = fleet.dir.path().join("tar-target");
                    let mut ssh = Command::new("ssh");
                    ssh.arg("-F")
                        .arg(&config)
                        .args(["-o", "ControlMaster=no", "-o", "ControlPath=none", "-o"])
                        .arg(format!("UserKnownHostsFile={}", known.display()))
                        .arg(format!("{node}.example.com"));
                    tar_over_ssh(&out.join(node), ssh, &target.join(format!("n{index}")));
                });
            });
            let _ = std::fs::rename(fleet.roots(), aside.join(format!("roots-{jobs}")));
            let first = pacha_push(&fleet, jobs, "first");
            let unchanged = pacha_push(&fleet, jobs, "unchanged");
            std::fs::write(&template, format!("{original}# jobs {jobs}\n")).expect("write");
            let changed = pacha_push(&fleet, jobs, "changed");
            let ratio = |wall: f64| wall / floor.as_secs_f64();
            println!(
                "N={nodes} --jobs {jobs}: floor {:.2} s | first {} ({:.2}x) | no change {} ({:.2}x) | one change {} ({:.2}x)",
                floor.as_secs_f64(),
                first.1,
                ratio(first.0),
                unchanged.1,
                ratio(unchanged.0),
                changed.1,
                ratio(changed.0)
            );
        }
    }
}

/// `pacha push fleet production --jobs JOBS` under `/usr/bin/time`, cold: wall seconds and
/// "wall / CPU / peak MB".
fn pacha_push(fleet: &Fleet, jobs: usize, what: &str) -> (f64, String) {
    let runtime = fleet.dir.path().join(format!("run-{what}-{jobs}"));
    std::fs::create_dir_all(&runtime).expect("runtime");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "TIME %e %U %S %M"])
        .arg(env!("CARGO_BIN_EXE_pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .arg("--master")
        .arg(fleet.dir.path())
        .args(["push", "fleet", "production", "--jobs", &jobs.to_string()])
        .stdout(Stdio::null())
        .output()
        .expect("pacha push");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = Command::new(env!("CARGO_BIN_EXE_pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .arg("disconnect")
        .output();
    assert!(
        output.status.success(),
        "{what} push with --jobs {jobs}: {}",
        stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    let line = stderr
        .lines()
        .rfind(|line| line.starts_with("TIME "))
        .unwrap_or_default();
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let [wall, user, system, peak] = fields[..] else {
        return (0.0, format!("? ({line})"));
    };
    (
        wall,
        format!("{wall:.2} s / {:.2} s / {:.0} MB", user + system, peak / 1024.0),
    )
}
