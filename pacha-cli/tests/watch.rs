//! `pacha watch` on "the node": hand edits are captured into the master's history over the real
//! sshd. (That a push seen landing records nothing is tested on one poll, in pacha-core.)

use std::fs;
use std::process::{Command, Stdio};
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

#[test]
fn the_watcher_captures_hand_edits_but_not_pushes() {
    let master = SshMaster::new(&["web1"]);
    master.add_to_node("web1", "track: [\"/etc/extra/*.conf\"]\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let _watcher = Killed(
        Command::new(&bin)
            .args([
                "watch",
                "web1",
                "--interval",
                "0.1",
                "--remote-pacha",
                bin.to_str().unwrap(),
                "--to",
            ])
            .arg(format!("web1:{}", master.dir.path().display()))
            .arg("-F")
            .arg(&master.sshd.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    fs::write(master.root("web1").join("etc/motd"), "edited by hand\n").unwrap();
    wait_for_log(&master, "web1", "capture web1 production (watch): 1 file changed");

    fs::create_dir_all(master.root("web1").join("etc/extra")).unwrap();
    fs::write(master.root("web1").join("etc/extra/new.conf"), "tracked\n").unwrap();
    let log = wait_for_log(&master, "web1", "/etc/extra/new.conf");
    let latest = serde_json::from_str::<serde_json::Value>(&log).unwrap()["entries"][0]["revision"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, shown, _) = master.run(&["show", "web1", &latest, "/etc/extra/new.conf"]);
    assert_eq!(shown, "tracked\n");
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
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let errors = master.dir.path().join("watch.err");
    let mut watcher = Killed(
        Command::new(&bin)
            .args([
                "watch",
                "web1",
                "--interval",
                "0.1",
                "--remote-pacha",
                bin.to_str().unwrap(),
                "--to",
            ])
            .arg(format!("web1:{}", master.dir.path().display()))
            .arg("-F")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&errors).unwrap())
            .spawn()
            .unwrap(),
    );
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
