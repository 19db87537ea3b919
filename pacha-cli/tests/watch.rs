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
