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
    // The host did it: it is the author (and in a trailer); the master's user commits.
    let host: String = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .chars()
        .filter(|character| character.is_ascii_alphanumeric() || ".-_".contains(*character))
        .collect();
    let git = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(master.dir.path().join("hosts"))
        .args([
            "log",
            "-1",
            "--format=%an|%ae|%cn|%(trailers:key=Pacha-Host,valueonly)",
            "main",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&git.stdout);
    assert!(
        said.starts_with(&format!("pacha@{host}|pacha@{host}|"))
            && !said.contains(&format!("|pacha@{host}|pacha@{host}|")),
        "{said}"
    );
    assert!(said.trim_end().ends_with(&host), "{said}");
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

/// `pacha authorize` gives a host's key a forced `pacha serve --node`: it pulls its own node,
/// is refused another node's plan, and gets no shell.
#[test]
fn an_authorized_key_reaches_its_own_node_only() {
    let master = SshMaster::new(&["web1", "web2"]);
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let pubkey = master.sshd.dir().join("client_key.pub");
    let (code, line, stderr) = master.run(&[
        "authorize",
        "web1",
        pubkey.to_str().unwrap(),
        "--program",
        bin.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        line.starts_with("command=\"") && line.contains(" serve --master ") && line.contains(",restrict ssh-ed25519 "),
        "{line}"
    );
    assert!(line.trim_end().ends_with(" pacha:web1"), "{line}");
    fs::write(master.sshd.dir().join("authorized_keys"), &line).unwrap();

    let elsewhere = tempfile::tempdir().unwrap();
    let from = format!("web1:{}", master.dir.path().display());
    let pull = |node: &str| {
        outcome(
            pacha()
                .current_dir(elsewhere.path())
                .args(["pull", node, "production", "--from", &from, "-F"])
                .arg(&master.sshd.config),
        )
    };
    let (code, stdout, stderr) = pull("web1");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/motd")).unwrap(),
        "hello from web1 (production)\n"
    );
    let (code, stdout, stderr) = pull("web2");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("web2"), "{stderr}");
    assert!(!master.root("web2").join("etc/motd").exists());
    // The master logs it (the sshd gives its sessions HOME=<sshd>/home).
    let log = fs::read_to_string(master.sshd.dir().join("home/.local/state/pacha/serve.log")).unwrap();
    assert!(log.contains("(key of node \"web1\") asking for node \"web2\""), "{log}");

    // A shell command through that key runs `pacha serve`, not the command.
    let marker = elsewhere.path().join("shell-ran");
    let _ = std::process::Command::new("ssh")
        .arg("-F")
        .arg(&master.sshd.config)
        .args(["-o", "ControlPath=none", "web1", "touch"])
        .arg(&marker)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!marker.exists(), "the key got a shell");
}

/// `pull --wait`: a master that cannot be reached yet (a host whose network comes up late) is
/// tried again until it answers.
#[test]
fn a_pull_waits_for_a_master_that_is_not_reachable_yet() {
    let master = SshMaster::new(&["web1"]);
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let up = master.dir.path().join("network-up");
    // Until the flag exists, web1 is a port where nothing listens.
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
    let from = format!("web1:{}", master.dir.path().display());
    let elsewhere = tempfile::tempdir().unwrap();
    let pull = std::process::Command::new(&bin)
        .current_dir(elsewhere.path())
        .args([
            "pull",
            "web1",
            "production",
            "--from",
            &from,
            "--wait",
            "60",
            "--remote-pacha",
        ])
        .arg(&bin)
        .arg("-F")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    fs::write(&up, "").unwrap();
    let output = pull.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot reach the master") && stderr.contains("trying again in 1 s"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/motd")).unwrap(),
        "hello from web1 (production)\n"
    );

    // Without --wait, the first failure is final.
    fs::remove_file(&up).unwrap();
    let (code, _, stderr) = outcome(
        pacha()
            .current_dir(elsewhere.path())
            .args(["pull", "web1", "production", "--from", &from, "-F"])
            .arg(&config),
    );
    assert_eq!(code, 1);
    assert!(!stderr.contains("trying again"), "{stderr}");
}
