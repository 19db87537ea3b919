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

    // A pull's record names the revision too (read when the record is made).
    std::fs::remove_file(master.root("web1").join("etc/motd")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let elsewhere = tempfile::tempdir().unwrap();
    let pulled = Command::new(&bin)
        .current_dir(elsewhere.path())
        .args([
            "pull",
            "web1",
            "production",
            "--remote-pacha",
            bin.to_str().unwrap(),
            "--from",
        ])
        .arg(format!("web1:{}", master.dir.path().display()))
        .arg("-F")
        .arg(&master.sshd.config)
        .output()
        .unwrap();
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
    let entry = latest(&master, "web1");
    assert_eq!(entry["event"], "pull", "{entry}");
    assert_eq!(entry["master"], commit_after.as_str());

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

/// A bare repository reached over a test sshd of its own, as a team's git server.
struct GitServer {
    sshd: fixtures::Sshd,
    _dir: tempfile::TempDir,
    bare: std::path::PathBuf,
    url: String,
}

impl GitServer {
    fn start() -> GitServer {
        let sshd = fixtures::Sshd::start(&["git-server"]);
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("pacha-history.git");
        let status = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&bare)
            .status()
            .unwrap();
        assert!(status.success());
        let url = format!("ssh://git-server{}", bare.display());
        GitServer {
            sshd,
            _dir: dir,
            bare,
            url,
        }
    }

    /// How git reaches it (the user's own ssh setup, in a real team).
    fn ssh_command(&self) -> String {
        format!("ssh -F {} -o BatchMode=yes", self.sshd.config.display())
    }

    fn log(&self) -> Vec<String> {
        git(&self.bare, &["log", "--format=%H %s", "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A second master: a clone of `master`'s files (same nodes, same roots) with a history
/// folder of its own.
fn clone_master(master: &SshMaster) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for item in ["pacha.yaml", "templates", "scripts", "nodes"] {
        let from = master.dir.path().join(item);
        if from.is_dir() {
            fixtures::copy_tree(&from, &dir.path().join(item)).unwrap();
        } else {
            std::fs::copy(&from, dir.path().join(item)).unwrap();
        }
    }
    dir
}

fn pacha_at(master: &Path, server: &GitServer, args: &[&str]) -> Command {
    let runtime = master.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("pacha"));
    command
        .env_remove("PACHA_MASTER")
        .env("NO_COLOR", "1")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("GIT_SSH_COMMAND", server.ssh_command())
        .arg("--master")
        .arg(master)
        .args(args);
    command
}

fn finished(command: &mut Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs both at once; both must succeed.
fn at_once(mut first: Command, mut second: Command) -> (String, String) {
    let quiet = |command: &mut Command| {
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let one = quiet(&mut first);
    let two = quiet(&mut second);
    let one = one.wait_with_output().unwrap();
    let two = two.wait_with_output().unwrap();
    let (one_err, two_err) = (
        String::from_utf8_lossy(&one.stderr).into_owned(),
        String::from_utf8_lossy(&two.stderr).into_owned(),
    );
    assert!(one.status.success(), "{one_err}");
    assert!(two.status.success(), "{two_err}");
    (one_err, two_err)
}

#[test]
fn two_masters_share_one_history_through_a_git_server() {
    let mut server = GitServer::start();
    let ada = SshMaster::new(&["web1", "db1"]);
    let settings = std::fs::read_to_string(ada.dir.path().join("pacha.yaml")).unwrap();
    ada.write(
        "pacha.yaml",
        &format!("{settings}history:\n  path: hosts\n  remote: {}\n", server.url),
    );
    let bob = clone_master(&ada);
    let (ada_dir, bob_dir) = (ada.dir.path(), bob.path());

    // Different nodes at the same time: both records land.
    let (one, two) = at_once(
        pacha_at(ada_dir, &server, &["push", "web1", "production"]),
        pacha_at(bob_dir, &server, &["push", "db1", "production"]),
    );
    assert!(!one.contains("not yet") && !two.contains("not yet"), "{one}{two}");
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter()
            .any(|line| line.ends_with("push web1 production: 2 files changed")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|line| line.ends_with("push db1 production: 2 files changed")),
        "{log:?}"
    );

    // The same node from both at the same time: the node's lock lets one apply at a time,
    // each records before it lets the lock go, and the later record points at the earlier;
    // the history's latest is what web1 holds, whichever came second.
    fixtures::write(ada_dir, "templates/motd/default/motd.hbs", "from ada\n");
    fixtures::write(bob_dir, "templates/motd/default/motd.hbs", "from bob\n");
    at_once(
        pacha_at(ada_dir, &server, &["push", "web1", "production"]),
        pacha_at(bob_dir, &server, &["push", "web1", "production"]),
    );
    let live = std::fs::read_to_string(ada.root("web1").join("etc/motd")).unwrap();
    let log = server.log();
    assert_eq!(log.len(), 4, "{log:?}");
    let newest = log[0].split(' ').next().unwrap();
    let older = log[1].split(' ').next().unwrap();
    let message = git(&server.bare, &["log", "-1", "--format=%B", newest]);
    assert!(message.contains(&format!("Pacha-Previous: {older}")), "{message}");
    assert!(message.contains("Pacha-Node: web1"), "{message}");
    assert!(!log[..2].iter().any(|line| line.contains("recovered")), "{log:?}");
    let shown = git(&server.bare, &["show", &format!("{newest}:web1/files/etc/motd")]);
    assert_eq!(shown, live, "the history's latest is what web1 holds");

    // The git server goes away: the push still succeeds, its record stays local and says so.
    server.sshd.stop();
    fixtures::write(
        ada_dir,
        "templates/motd/default/motd.hbs",
        "while the server was down\n",
    );
    let (code, _, stderr) = finished(&mut pacha_at(ada_dir, &server, &["push", "db1", "production"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 record not yet in the shared history"), "{stderr}");
    // (Ada's history has not seen Bob's last push of web1 yet: status calls it drift.)
    let (code, stdout, stderr) = finished(&mut pacha_at(ada_dir, &server, &["status"]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains("1 record not yet in the shared history"), "{stdout}");
    assert!(stdout.contains("push db1 production"), "{stdout}");
    let (code, _, stderr) = finished(&mut pacha_at(ada_dir, &server, &["history", "sync"]));
    assert_eq!(code, 1, "still unreachable: {stderr}");
    server.sshd.resume();
    assert_eq!(server.log().len(), 4);
    let (code, stdout, stderr) = finished(&mut pacha_at(ada_dir, &server, &["history", "sync"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 record sent"), "{stdout}");
    let (code, json, stderr) = finished(&mut pacha_at(ada_dir, &server, &["history", "sync", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let synced: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (synced["sent"].as_u64(), synced["remote"].as_str()),
        (Some(0), Some(server.url.as_str()))
    );
    let (code, json, _) = finished(&mut pacha_at(ada_dir, &server, &["status", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["unsynced"], serde_json::json!([]));
    assert_eq!(code, 0, "with Bob's records fetched, nothing drifted: {json}");

    // The remote reads as Ada's history does, and Bob's next command starts from it.
    assert_eq!(server.log().len(), 5);
    let local: Vec<String> = git(&ada_dir.join("hosts"), &["log", "--format=%H %s", "main"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(local, server.log());
    let (code, _, stderr) = finished(&mut pacha_at(bob_dir, &server, &["diff", "db1", "production"]));
    assert!(code == 0 || code == 2, "{stderr}");
    let (_, bob_log, _) = finished(&mut pacha_at(bob_dir, &server, &["log", "db1", "--json"]));
    let (_, ada_log, _) = finished(&mut pacha_at(ada_dir, &server, &["log", "db1", "--json"]));
    assert_eq!(bob_log, ada_log);
}

#[test]
fn a_shared_history_is_checked_before_any_node_is_touched() {
    let master = SshMaster::new(&["web1"]);
    let settings = std::fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write(
        "pacha.yaml",
        &format!("{settings}history: {{remote: --upload-pack=touch /tmp/x}}\n"),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("pacha.yaml") && stderr.contains("not a git URL or path"),
        "{stderr}"
    );
    master.write(
        "pacha.yaml",
        &format!("{settings}history: {{remote: x.git, branch: \"a..b\"}}\n"),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a git branch name"), "{stderr}");
    master.write(
        "pacha.yaml",
        &format!("{settings}history: {{remote: x.git, branches: main}}\n"),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("{path, remote, branch}"), "{stderr}");

    // Secrets and no age recipients: they would reach the remote in plaintext.
    master.write(
        "pacha.yaml",
        &format!("{settings}secrets: {{token: hunter2}}\nhistory: {{remote: shared.git}}\n"),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("needs age recipients"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
    assert!(!master.root("web1").join("etc/motd").exists(), "nothing was pushed");
}

/// A node behind a bastion: the ssh_config's `ProxyJump` is all it takes, for push, status
/// and rollback alike.
#[test]
fn nodes_behind_a_proxy_jump_are_pushed_checked_and_rolled_back() {
    let mut bastion = fixtures::Sshd::start(&["bastion"]);
    let master = SshMaster::new(&["web1"]);
    let dir = master.dir.path();
    let known = dir.join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "{}{}",
            std::fs::read_to_string(&master.sshd.known_hosts).unwrap(),
            std::fs::read_to_string(&bastion.known_hosts).unwrap()
        ),
    )
    .unwrap();
    let config = dir.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host web1\n  ProxyJump bastion\n\nMatch all\nInclude {}\nInclude {}\n",
            master.sshd.config.display(),
            bastion.config.display()
        ),
    )
    .unwrap();
    let settings = std::fs::read_to_string(dir.join("pacha.yaml")).unwrap();
    let settings: String = settings
        .lines()
        .filter(|line| !line.starts_with("  config_file:") && !line.starts_with("  known_hosts:"))
        .map(|line| format!("{line}\n"))
        .collect();
    master.write(
        "pacha.yaml",
        &settings.replace(
            "ssh:\n",
            &format!(
                "ssh:\n  config_file: {}\n  known_hosts: {}\n",
                config.display(),
                known.display()
            ),
        ),
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let first = serde_json::from_str::<serde_json::Value>(&master.run(&["log", "web1", "--json"]).1).unwrap()
        ["entries"][0]["revision"]
        .as_str()
        .unwrap()
        .to_owned();
    master.write("templates/motd/default/motd.hbs", "changed through the bastion\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = master.run(&["status", "web1"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("in sync"), "{stdout}");
    let (code, _, stderr) = master.run(&["rollback", "web1", &first]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(master.root("web1").join("etc/motd")).unwrap(),
        "hello from web1 (production)\n"
    );
    // It really went through the bastion: without it, web1 cannot be reached.
    master.run(&["disconnect"]);
    bastion.stop();
    let (code, _, stderr) = master.run(&["status", "web1"]);
    assert_eq!(code, 1, "{stderr}");
}
