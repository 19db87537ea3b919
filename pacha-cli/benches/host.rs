//! The host side, through the `pacha` binary against a master behind a local test sshd (20
//! nodes of 20 templated files each, as the push benchmark's fleet):
//!
//! - **edit → commit**: a running `pacha watch` (inotify); the time from writing a file to
//!   its capture being on `main` in the master's history (median of 20 edits);
//! - **idle CPU** of that watcher over `PACHA_BENCH_IDLE` seconds (default 60);
//! - **pull vs push** of the same 20 files onto an empty root, both cold (a new ssh
//!   connection each; median of 10 each);
//! - **master CPU per pull**: the sshd and everything it runs (`pacha serve`), over 200 pulls
//!   from 20 parallel clients, each its own node.
//!
//! Run with `cargo bench -p pacha-cli --bench host`. Needs `/usr/sbin/sshd`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PACHA: &str = env!("CARGO_BIN_EXE_pacha");
const NODES: usize = 20;

struct Bench {
    sshd: fixtures::Sshd,
    dir: tempfile::TempDir,
    leaves: Vec<String>,
}

impl Bench {
    fn new() -> Bench {
        let mut aliases: Vec<String> = (0..NODES).map(|i| format!("node{i}.example.com")).collect();
        aliases.push("master".to_owned());
        let alias_refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
        let sshd = fixtures::Sshd::start(&alias_refs);
        let dir = tempfile::Builder::new().prefix("hb").tempdir().expect("temp dir");
        let leaves = fixtures::ssh_fleet(dir.path(), &sshd, NODES);
        Bench { sshd, dir, leaves }
    }

    fn root(&self, node: usize) -> PathBuf {
        self.dir.path().join("roots").join(format!("node{node}"))
    }

    /// `pacha push NODE production` with a control folder of its own: a cold connection.
    fn push(&self, node: usize, runtime: &Path) {
        std::fs::create_dir_all(runtime).expect("runtime dir");
        let status = Command::new(PACHA)
            .env("XDG_RUNTIME_DIR", runtime)
            .arg("--master")
            .arg(self.dir.path())
            .args(["push", &self.leaves[node], "production"])
            .stdout(Stdio::null())
            .status()
            .expect("pacha push");
        assert!(status.success());
        let _ = Command::new(PACHA)
            .env("XDG_RUNTIME_DIR", runtime)
            .arg("disconnect")
            .output();
    }

    /// `pacha pull NODE production` from the master over ssh.
    fn pull(&self, node: usize) {
        let status = Command::new(PACHA)
            .args([
                "pull",
                &self.leaves[node],
                "production",
                "--remote-pacha",
                PACHA,
                "--from",
            ])
            .arg(format!("master:{}", self.dir.path().display()))
            .arg("-F")
            .arg(&self.sshd.config)
            .stdout(Stdio::null())
            .status()
            .expect("pacha pull");
        assert!(status.success());
    }

    fn main_tip(&self) -> Option<git2::Oid> {
        let repo = git2::Repository::open_bare(self.dir.path().join("hosts")).ok()?;
        repo.refname_to_id("refs/heads/main").ok()
    }
}

fn main() {
    let bench = Bench::new();
    let runtime = bench.dir.path().join("run");
    bench.push(0, &runtime);

    // Pull and push of the same plan onto an empty root.
    let mut pushes = Vec::new();
    let mut pulls = Vec::new();
    for round in 0..10 {
        let _ = std::fs::remove_dir_all(bench.root(1));
        let start = Instant::now();
        bench.push(1, &bench.dir.path().join(format!("run-{round}")));
        pushes.push(start.elapsed());
        let _ = std::fs::remove_dir_all(bench.root(1));
        let start = Instant::now();
        bench.pull(1);
        pulls.push(start.elapsed());
    }
    let (push, pull) = (median(&mut pushes), median(&mut pulls));
    println!(
        "pull of 20 files: {:.0} ms, push of the same plan: {:.0} ms (pull/push {:.2}x)",
        ms(pull),
        ms(push),
        pull.as_secs_f64() / push.as_secs_f64()
    );

    // Master CPU per pull: 20 clients, 10 pulls each, each client its own node.
    let before = tree_cpu(bench.sshd.pid());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for node in 0..NODES {
            let bench = &bench;
            scope.spawn(move || {
                for _ in 0..10 {
                    bench.pull(node);
                }
            });
        }
    });
    let wall = start.elapsed();
    // The listener adds a session's time once it has reaped it.
    std::thread::sleep(Duration::from_millis(500));
    let used = tree_cpu(bench.sshd.pid()) - before;
    let pulls = NODES * 10;
    println!(
        "master CPU per pull: {:.1} ms ({pulls} pulls from {NODES} clients in {:.1} s, sshd and pacha serve)",
        used * 1000.0 / pulls as f64,
        wall.as_secs_f64()
    );

    // The two halves of it: an ssh session doing nothing, and pacha serve answering a pull's
    // plan request without ssh.
    let before = tree_cpu(bench.sshd.pid());
    for _ in 0..50 {
        let status = Command::new("ssh")
            .arg("-F")
            .arg(&bench.sshd.config)
            .args(["master", "true"])
            .status()
            .expect("ssh");
        assert!(status.success());
    }
    std::thread::sleep(Duration::from_millis(500));
    let session = (tree_cpu(bench.sshd.pid()) - before) * 1000.0 / 50.0;
    let me = std::process::id();
    let before = tree_cpu(me);
    for _ in 0..50 {
        serve_plan(bench.dir.path(), &bench.leaves[1]);
    }
    let serve = (tree_cpu(me) - before) * 1000.0 / 50.0;
    println!("  of which an ssh session alone: {session:.1} ms, pacha serve alone (one plan): {serve:.1} ms");

    // Edit → commit with a running watcher.
    let state = bench.dir.path().join("host-state");
    let mut watcher = Killed(
        Command::new(PACHA)
            .args(["watch", &bench.leaves[0], "--remote-pacha", PACHA, "--state"])
            .arg(&state)
            .arg("--to")
            .arg(format!("master:{}", bench.dir.path().display()))
            .arg("-F")
            .arg(&bench.sshd.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("pacha watch"),
    );
    let mut out = std::io::BufReader::new(watcher.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("watching line");
    assert!(line.contains("watching"), "{line}");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let file = bench.root(0).join("etc/base/conf0.conf");
    let mut latencies = Vec::new();
    for edit in 0..20 {
        let tip = bench.main_tip();
        std::fs::write(&file, format!("edited by hand, {edit}\n")).expect("edit");
        let start = Instant::now();
        while bench.main_tip() == tip {
            assert!(start.elapsed() < Duration::from_secs(10), "edit {edit} never recorded");
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let latency = median(&mut latencies);
    latencies.sort();
    println!(
        "edit -> commit: median {:.0} ms, slowest {:.0} ms (20 edits, inotify)",
        ms(latency),
        ms(latencies[latencies.len() - 1])
    );

    let idle: u64 = std::env::var("PACHA_BENCH_IDLE")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(60);
    std::thread::sleep(Duration::from_secs(1));
    let before = process_cpu(watcher.0.id());
    std::thread::sleep(Duration::from_secs(idle));
    let used = process_cpu(watcher.0.id()) - before;
    println!(
        "watcher idle CPU: {:.2} ms over {idle} s ({:.4} %)",
        used * 1000.0,
        used * 100.0 / idle as f64
    );
}

/// Runs `pacha serve` here as a pull's session does: the handshake, one plan request.
fn serve_plan(master: &Path, node: &str) {
    let mut input = Vec::new();
    for message in [
        format!(
            r#"{{"type":"hello","version":1,"pacha":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        format!(r#"{{"type":"plan","node":"{node}","state":"production"}}"#),
    ] {
        input.extend(format!("{}\n{message}", message.len()).into_bytes());
    }
    let mut serve = Command::new(PACHA)
        .arg("--master")
        .arg(master)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pacha serve");
    std::io::Write::write_all(&mut serve.stdin.take().expect("stdin"), &input).expect("requests");
    let output = serve.wait_with_output().expect("pacha serve ends");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(r#""type":"plan""#));
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Seconds of CPU in `/proc/PID/stat` fields from `first` (14 = utime) for `count` fields.
fn stat_cpu(pid: u32, count: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // The command name is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After the name, field 3 (state) is index 0: utime (14) is index 11.
    let ticks: f64 = fields[11..11 + count]
        .iter()
        .map(|field| field.parse::<f64>().expect("ticks"))
        .sum();
    ticks / clock_ticks()
}

/// CPU seconds of a process.
fn process_cpu(pid: u32) -> f64 {
    stat_cpu(pid, 2)
}

/// CPU seconds of a process and its reaped children.
fn tree_cpu(pid: u32) -> f64 {
    stat_cpu(pid, 4)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
