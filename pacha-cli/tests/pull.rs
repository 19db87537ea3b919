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
