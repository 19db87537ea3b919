//! `pacha watch` on "the node": hand edits are captured into the master's history over the real
//! sshd, through real inotify events, through an outage of the master and a kill -9. (That a
//! push seen landing records nothing is tested in pacha-core.)

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::SshMaster;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_log(master: &SshMaster, node: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, log, _) = master.run(&["log", node, "--json"]);
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node's entries, newest first.
fn entries(master: &SshMaster, node: &str) -> Vec<serde_json::Value> {
    let (code, log, stderr) = master.run(&["log", node, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str::<serde_json::Value>(&log).unwrap()["entries"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `node` has more than `before` entries and returns the new ones, oldest first.
/// The wait is far below the watcher's one-minute look without events: a change found in
/// time was found through its event.
fn new_entries(master: &SshMaster, node: &str, before: usize, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = entries(master, node);
        if all.len() >= before + count {
            let mut new: Vec<_> = all[..all.len() - before].to_vec();
            new.reverse();
            return new;
        }
        assert!(Instant::now() < deadline, "{count} new entries awaited, have: {all:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pacha watch web1` in the background, keeping its state in the master's temp folder.
fn watcher(master: &SshMaster, extra: &[&str], ssh_config: &Path, errors: &Path) -> Killed {
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    Killed(
        Command::new(&bin)
            .args(["watch", "web1", "--remote-pacha", bin.to_str().unwrap(), "--state"])
            .arg(master.dir.path().join("host-state"))
            .args(extra)
            .arg("--to")
            .arg(format!("web1:{}", master.dir.path().display()))
            .arg("-F")
            .arg(ssh_config)
            .stdout(fs::File::create(master.dir.path().join("watch.out")).unwrap())
            .stderr(fs::File::create(errors).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Waits until the watcher says it is watching (the file events are followed from then on).
fn wait_watching(master: &SshMaster, errors: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(master.dir.path().join("watch.out"))
        .unwrap_or_default()
        .contains("watching")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            fs::read_to_string(errors).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spooled(master: &SshMaster) -> usize {
    fs::read_dir(master.dir.path().join("host-state/watch/web1/spool"))
        .map(|dir| {
            dir.filter(|item| {
                item.as_ref()
                    .is_ok_and(|item| item.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
        .unwrap_or(0)
}

fn changed(entry: &serde_json::Value) -> Vec<String> {
    entry["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|path| path.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_watcher_follows_file_events_edit_create_delete_chmod() {
    let master = SshMaster::new(&["web1"]);
    master.add_to_node("web1", "track: [\"/etc/extra/*.conf\"]\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let errors = master.dir.path().join("watch.err");
    let _watcher = watcher(&master, &[], &master.sshd.config, &errors);
    wait_watching(&master, &errors);
    let root = master.root("web1");

    let before = entries(&master, "web1").len();
    fs::write(root.join("etc/motd"), "edited by hand\n").unwrap();
    let new = new_entries(&master, "web1", before, 1);
    assert_eq!(new[0]["summary"], "capture web1 production (watch): 1 file changed");
    assert_eq!(changed(&new[0]), ["/etc/motd"]);

    // A tracked file in a folder that did not exist yet.
    fs::create_dir_all(root.join("etc/extra")).unwrap();
    fs::write(root.join("etc/extra/new.conf"), "tracked\n").unwrap();
    let new = new_entries(&master, "web1", before + 1, 1);
    assert_eq!(changed(&new[0]), ["/etc/extra/new.conf"]);
    let revision = new[0]["revision"].as_str().unwrap();
    let (_, shown, _) = master.run(&["show", "web1", revision, "/etc/extra/new.conf"]);
    assert_eq!(shown, "tracked\n");

    fs::remove_file(root.join("etc/app/app.conf")).unwrap();
    let new = new_entries(&master, "web1", before + 2, 1);
    assert_eq!(changed(&new[0]), ["/etc/app/app.conf"]);

    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join("etc/motd"), fs::Permissions::from_mode(0o600)).unwrap();
    let new = new_entries(&master, "web1", before + 3, 1);
    assert_eq!(changed(&new[0]), ["/etc/motd"]);
    let (code, status, stderr) = master.run(&["status", "web1", "--json"]);
    assert_eq!(code, 0, "the history is what web1 holds: {status}{stderr}");
}

/// A push that places a file in a new folder makes the watcher ask for its list again when the
/// push ends: a hand edit of that file right after is captured.
#[test]
fn the_watched_set_follows_a_push() {
    let master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let errors = master.dir.path().join("watch.err");
    let _watcher = watcher(&master, &[], &master.sshd.config, &errors);
    wait_watching(&master, &errors);
    master.write("templates/motd/default/newapp/new.conf", "placed by a push\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let before = entries(&master, "web1").len();
    fs::write(master.root("web1").join("etc/newapp/new.conf"), "edited by hand\n").unwrap();
    let new = new_entries(&master, "web1", before, 1);
    assert_eq!(changed(&new[0]), ["/etc/newapp/new.conf"]);
    assert_eq!(
        entries(&master, "web1").len(),
        before + 1,
        "the push itself was not captured"
    );
}

/// The master's sshd goes down (sessions cut) while three changes are made: each is spooled
/// and, once the master is back, recorded as its own capture with the time it was seen.
#[test]
fn changes_during_an_outage_are_each_recorded_with_their_own_time() {
    let mut master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let errors = master.dir.path().join("watch.err");
    let config = master.sshd.config.clone();
    let mut watching = watcher(&master, &[], &config, &errors);
    wait_watching(&master, &errors);
    let before = entries(&master, "web1").len();

    master.sshd.stop();
    let motd = master.root("web1").join("etc/motd");
    let mut seen = Vec::new();
    for (round, text) in ["one\n", "two\n", "three\n"].into_iter().enumerate() {
        // Each change in a second of its own: history times are whole seconds.
        std::thread::sleep(Duration::from_millis(1100));
        fs::write(&motd, text).unwrap();
        seen.push(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while spooled(&master) < round + 1 {
            assert!(
                Instant::now() < deadline,
                "not spooled: {}",
                fs::read_to_string(&errors).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        watching.0.try_wait().unwrap().is_none(),
        "the watcher exited: {}",
        fs::read_to_string(&errors).unwrap()
    );
    assert_eq!(entries(&master, "web1").len(), before, "nothing reached the master");
    let back = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::thread::sleep(Duration::from_millis(1100));
    master.sshd.resume();

    let new = new_entries(&master, "web1", before, 3);
    assert_eq!(new.len(), 3, "{new:#?}");
    let times: Vec<u64> = new.iter().map(|entry| entry["timestamp"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
    for (time, seen) in times.iter().zip(&seen) {
        assert!(
            // The watcher notes the time of the first event of a change (whole seconds).
            *time >= seen - 1 && *time <= seen + 1,
            "recorded at {time}, seen at {seen}"
        );
        assert!(*time < back);
    }
    for (entry, text) in new.iter().zip(["one\n", "two\n", "three\n"]) {
        let (_, shown, _) = master.run(&["show", "web1", entry["revision"].as_str().unwrap(), "/etc/motd"]);
        assert_eq!(shown, text);
        assert!(entry["author"].as_str().unwrap().starts_with("pacha@"), "{entry}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while spooled(&master) > 0 {
        assert!(Instant::now() < deadline, "the spool kept recorded changes");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(watching.0.try_wait().unwrap().is_none(), "the watcher exited");
}

/// A watcher killed with a change in its spool sends it when started again, once.
#[test]
fn a_spooled_change_survives_kill_9_and_arrives_once() {
    let mut master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let errors = master.dir.path().join("watch.err");
    let config = master.sshd.config.clone();
    let mut first = watcher(&master, &[], &config, &errors);
    wait_watching(&master, &errors);
    let before = entries(&master, "web1").len();
    master.sshd.stop();
    fs::write(master.root("web1").join("etc/motd"), "while the master was down\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while spooled(&master) < 1 {
        assert!(
            Instant::now() < deadline,
            "not spooled: {}",
            fs::read_to_string(&errors).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    master.sshd.resume();

    let _second = watcher(&master, &[], &config, &errors);
    let new = new_entries(&master, "web1", before, 1);
    assert_eq!(changed(&new[0]), ["/etc/motd"]);
    // A later change lands after it, and nothing came twice.
    fs::write(master.root("web1").join("etc/motd"), "later\n").unwrap();
    let new = new_entries(&master, "web1", before, 2);
    assert_eq!(new.len(), 2, "{new:#?}");
    let (_, shown, _) = master.run(&["show", "web1", new[0]["revision"].as_str().unwrap(), "/etc/motd"]);
    assert_eq!(shown, "while the master was down\n");
    let (_, shown, _) = master.run(&["show", "web1", new[1]["revision"].as_str().unwrap(), "/etc/motd"]);
    assert_eq!(shown, "later\n");
}

/// The watcher is a daemon: a master it cannot reach is waited for (it never exits), and
/// SIGTERM stops it cleanly.
#[test]
fn the_watcher_waits_for_its_master_and_stops_on_sigterm() {
    let master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let up = master.dir.path().join("network-up");
    let config = master.dir.path().join("late_ssh_config");
    fs::write(
        &config,
        format!(
            "Match host web1 !exec \"test -f {}\"\n  Port 1\nMatch all\nInclude {}\n",
            up.display(),
            master.sshd.config.display()
        ),
    )
    .unwrap();
    let errors = master.dir.path().join("watch.err");
    // Looking every 0.2 s instead of following events: the fallback for filesystems without.
    let mut watcher = watcher(&master, &["--poll", "0.2"], &config, &errors);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&errors).unwrap().contains("trying again in 2 s") {
        assert!(Instant::now() < deadline, "{}", fs::read_to_string(&errors).unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(watcher.0.try_wait().unwrap().is_none(), "the watcher exited");
    fs::write(&up, "").unwrap();
    fs::write(
        master.root("web1").join("etc/motd"),
        "edited while the master was away\n",
    )
    .unwrap();
    wait_for_log(&master, "web1", "capture web1 production (watch): 1 file changed");

    let status = Command::new("kill")
        .args(["-TERM", &watcher.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = watcher.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the watcher");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}: {}", fs::read_to_string(&errors).unwrap());
}
