//! `pacha pull` run "on the node": the master is reached over a real sshd and runs the built
//! pacha there; the node applies locally and the master records it.

use std::fs;

use crate::common::{SshMaster, outcome, pacha};

#[test]
fn a_node_pulls_its_plan_and_the_master_records_it() {
    let master = SshMaster::new(&["web1"]);
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let elsewhere = tempfile::tempdir().unwrap();
    let from = format!("web1:{}", master.dir.path().display());
    let pull = |node: &str| {
        outcome(
            pacha()
                .current_dir(elsewhere.path())
                .args([
                    "pull",
                    node,
                    "production",
                    "--from",
                    &from,
                    "--remote-pacha",
                    bin.to_str().unwrap(),
                    "-F",
                ])
                .arg(&master.sshd.config),
        )
    };
    let (code, stdout, stderr) = pull("web1");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("reloaded web1"),
        "the post scripts ran on the node: {stdout}"
    );
    assert!(stdout.contains("recorded "), "{stdout}");
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/motd")).unwrap(),
        "hello from web1 (production)\n"
    );

    let (_, log, _) = master.run(&["log", "web1"]);
    assert!(log.contains("pull web1 production: 2 files changed"), "{log}");
    let (code, status, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("pushed production") && status.contains("in sync"),
        "{status}"
    );

    // Nothing changed: nothing placed, nothing recorded.
    let (code, stdout, stderr) = pull("web1");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("web1 unchanged"), "{stdout}");
    let (_, again, _) = master.run(&["log", "web1", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again).unwrap()["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A bad node name is the master's error, told on the node.
    let (code, _, stderr) = pull("nosuch");
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown node \"nosuch\""), "{stderr}");
}

#[test]
fn a_node_pulls_from_a_master_folder_on_the_same_machine() {
    let tmp = tempfile::tempdir().unwrap();
    fixtures::copy_master("demo", tmp.path()).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let pull = |args: &[&str]| {
        outcome(
            pacha()
                .current_dir(elsewhere.path())
                .arg("pull")
                .args(args)
                .arg("--from")
                .arg(tmp.path()),
        )
    };
    let (code, stdout, stderr) = pull(&["web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("web1 changed"), "{stdout}");
    let motd = tmp.path().join("nodes-root/web1/etc/motd");
    assert!(motd.is_file());
    let (_, log, _) = crate::common::run_in(tmp.path(), &["log", "web1", "--json"]);
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(log["entries"][0]["event"], "pull");

    // Without a state: the last recorded one.
    fs::remove_file(&motd).unwrap();
    let (code, stdout, stderr) = pull(&["web1", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["state"], "production");
    assert_eq!(report["outcome"], "changed");
    assert!(motd.is_file());

    // A node never recorded has no last state.
    let (code, _, stderr) = pull(&["web2"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no recorded history"), "{stderr}");
}
