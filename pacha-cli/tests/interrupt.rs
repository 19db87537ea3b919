//! A push interrupted at any point (connection lost, pacha killed) leaves every file either
//! old or new, never partial; the next push completes.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::SshMaster;

const FILES: usize = 120;
const SIZE: usize = 48 * 1024;

fn content(version: u8, index: usize) -> Vec<u8> {
    // The versions differ in size, so a test can see the first new file land.
    let mut bytes = vec![version; SIZE + index + usize::from(version)];
    bytes[..8].copy_from_slice(&(index as u64).to_le_bytes());
    bytes
}

fn write_version(master: &SshMaster, version: u8) {
    for index in 0..FILES {
        fixtures::write(
            master.dir.path(),
            &format!("templates/big/default/f{index:03}.bin"),
            content(version, index),
        );
    }
}

/// Pids of the ssh master processes whose control socket is under `dir`.
fn ssh_masters(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("ssh"))
            && args.iter().any(|a| a.starts_with(&needle))
            && args.iter().any(|a| a == "-M")
        {
            pids.push(pid);
        }
    }
    pids
}

/// Every file is exactly the old or the new version, and no temp file is left.
fn check_node(root: &Path) -> (usize, usize) {
    let (mut old, mut new) = (0, 0);
    for index in 0..FILES {
        let path = root.join(format!("data/f{index:03}.bin"));
        let bytes = fs::read(&path).unwrap();
        if bytes == content(1, index) {
            old += 1;
        } else if bytes == content(2, index) {
            new += 1;
        } else {
            panic!("{} is neither old nor new ({} bytes)", path.display(), bytes.len());
        }
    }
    (old, new)
}

fn leftovers(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("data"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".pacha-"))
        .collect()
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// When to interrupt a push.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the node started receiving files.
    AfterUploadStarts(Duration),
    /// As soon as the first new file is in place: in the middle of the renames.
    FirstFilePlaced,
}

/// Runs a push in the background, interrupts it at `moment` (by killing either the ssh
/// master or pacha itself), then checks the node.
fn interrupted_push(master: &SshMaster, moment: Moment, kill_pacha: bool) -> (usize, usize) {
    let root = master.root("web1");
    let runtime = master.dir.path().join("run");
    write_version(master, 2);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("NO_COLOR", "1")
        .arg("--master")
        .arg(master.dir.path())
        .args(["push", "web1", "production"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = root.join("var/lib/pacha");
    // The apply has begun once its staging folder is there (a plain placement makes no run
    // folder in the state folder).
    let data = root.join("data");
    let applying = || {
        fs::read_dir(&data)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with(".pacha-"))
            })
            .unwrap_or(false)
    };
    let first = root.join("data/f000.bin");
    let placed = || fs::metadata(&first).is_ok_and(|meta| meta.len() as usize == content(2, 0).len());
    let started = Instant::now();
    let reached = || match moment {
        Moment::AfterUploadStarts(_) => applying(),
        Moment::FirstFilePlaced => placed(),
    };
    while !reached() {
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::hint::spin_loop();
    }
    if let Moment::AfterUploadStarts(delay) = moment {
        thread::sleep(delay);
    }
    if kill_pacha {
        let _ = child.kill();
    } else {
        for pid in ssh_masters(&runtime) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
    let _ = child.wait();
    let (old, new) = check_node(&root);
    assert_eq!(old + new, FILES);
    eprintln!(
        "interrupted at {moment:?} (killing {}): {old} old, {new} new",
        if kill_pacha { "pacha" } else { "ssh" }
    );
    // The node cleans up after itself once it notices the connection is gone.
    wait_for("temp files to be removed", || leftovers(&root).is_empty());
    wait_for("the lock to be released", || !state.join("lock").exists());
    (old, new)
}

#[test]
fn killed_mid_push_every_file_is_old_or_new() {
    let master = SshMaster::new(&["web1"]);
    master.write("templates/big/app.yaml", "dest: /data\n");
    master.write(
        "nodes/web1/web1.conf",
        &format!("host: web1\nroot: {}\napps: [big]\n", master.root("web1").display()),
    );
    write_version(&master, 1);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");

    let moments = [
        (Moment::AfterUploadStarts(Duration::ZERO), false),
        (Moment::AfterUploadStarts(Duration::from_millis(5)), false),
        (Moment::AfterUploadStarts(Duration::from_millis(5)), true),
        (Moment::FirstFilePlaced, false),
        (Moment::FirstFilePlaced, true),
        (Moment::FirstFilePlaced, false),
        (Moment::FirstFilePlaced, true),
    ];
    let mut mixed = false;
    for (moment, kill_pacha) in moments {
        let (old, new) = interrupted_push(&master, moment, kill_pacha);
        mixed |= old > 0 && new > 0;
        // Back to the old version everywhere for the next round.
        write_version(&master, 1);
        let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
        assert_eq!(
            code, 0,
            "after an interruption at {moment:?}, the next push completes: {stdout}{stderr}"
        );
        assert_eq!(check_node(&master.root("web1")), (FILES, 0));
        // Whatever the interrupted push placed was recorded on the way: history and node agree.
        let (code, status, _) = master.run(&["status", "web1"]);
        assert_eq!(code, 0, "after an interruption at {moment:?}: {status}");
    }
    // At least one interruption must have landed in the middle of the renames, or this test
    // proved nothing about them.
    assert!(mixed, "no interruption hit the middle of placing files");
}
