//! Teams: the master's git revision in every record, `require_clean_master`.

use std::path::Path;
use std::process::Command;

use crate::common::SshMaster;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The master as a git repository, everything committed (the nodes' roots and pacha's own
/// folders ignored, as an admin's .gitignore would).
fn committed(master: &SshMaster) -> String {
    master.write(".gitignore", "roots/\nrun/\n");
    git(master.dir.path(), &["init", "-q", "-b", "main"]);
    git(master.dir.path(), &["add", "."]);
    git(master.dir.path(), &["commit", "-q", "-m", "the master"]);
    git(master.dir.path(), &["rev-parse", "HEAD"]).trim().to_owned()
}

fn latest(master: &SshMaster, node: &str) -> serde_json::Value {
    let (code, log, stderr) = master.run(&["log", node, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str::<serde_json::Value>(&log).unwrap()["entries"][0].clone()
}

fn message(master: &SshMaster) -> String {
    git(&master.dir.path().join("hosts"), &["log", "-1", "--format=%B", "main"])
}

#[test]
fn every_record_carries_the_master_revision_and_its_uncommitted_files() {
    let master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        latest(&master, "web1")["master"],
        serde_json::Value::Null,
        "no git, no revision"
    );
    assert!(!message(&master).contains("Pacha-Master"));

    let commit = committed(&master);
    master.write("templates/motd/default/motd.hbs", "{{greeting}}, a clean change\n");
    git(master.dir.path(), &["commit", "-q", "-am", "a clean change"]);
    let commit_after = git(master.dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    assert_ne!(commit, commit_after);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(latest(&master, "web1")["master"], commit_after.as_str());
    assert!(message(&master).contains(&format!("Pacha-Master: {commit_after}\n")));
    let (_, text, _) = master.run(&["log", "web1"]);
    assert!(text.contains(&format!("(master {})", &commit_after[..12])), "{text}");

    master.write("templates/motd/default/motd.hbs", "{{greeting}}, not committed\n");
    master.write("templates/motd/default/new.conf", "new and untracked\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        latest(&master, "web1")["master"],
        format!("{commit_after}-dirty").as_str()
    );
    let text = message(&master);
    assert!(
        text.contains("Pacha-Master-Changed: templates/motd/default/motd.hbs, templates/motd/default/new.conf\n"),
        "{text}"
    );
}

#[test]
fn require_clean_master_refuses_push_apply_and_rollback_from_a_dirty_master() {
    let master = SshMaster::new(&["web1"]);
    let settings = std::fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write("pacha.yaml", &format!("{settings}require_clean_master: true\n"));
    // Not in git at all: refused.
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("in no git repository"), "{stderr}");
    committed(&master);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let first = latest(&master, "web1")["revision"].as_str().unwrap().to_owned();
    let motd = master.root("web1").join("etc/motd");
    let pushed = std::fs::read_to_string(&motd).unwrap();

    master.write("templates/motd/default/motd.hbs", "uncommitted\n");
    for args in [
        &["push", "web1", "production"][..],
        &["rollback", "web1", &first],
        &["push", "web1", "production", "--json"],
    ] {
        let (code, stdout, stderr) = master.run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        let said = format!("{stdout}{stderr}");
        assert!(said.contains("templates/motd/default/motd.hbs"), "{args:?}: {said}");
        assert!(said.contains("require_clean_master"), "{said}");
    }
    let (_, json, _) = master.run(&["push", "web1", "production", "--json"]);
    let error: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(error["error"]["kind"], "dirty-master", "{json}");
    assert_eq!(
        std::fs::read_to_string(&motd).unwrap(),
        pushed,
        "nothing changed on the node"
    );

    // A dry run is not refused; a plan made now is, when applied.
    let plan = master.dir.path().join("run/web1.plan");
    let (code, stdout, stderr) = master.run(&["plan", "web1", "production", "-o", plan.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let (code, _, stderr) = master.run(&["apply", plan.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("uncommitted changes"), "{stderr}");
    // Committed, the same plan is still from a dirty master; a new one goes through.
    git(master.dir.path(), &["commit", "-q", "-am", "now committed"]);
    let (code, _, stderr) = master.run(&["apply", plan.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = master.run(&["plan", "web1", "production", "-o", plan.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = master.run(&["apply", plan.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(&motd).unwrap(), "uncommitted\n");
    let commit = git(master.dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(
        latest(&master, "web1")["master"],
        commit.as_str(),
        "the plan's revision"
    );
}
