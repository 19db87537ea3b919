//! History through the binary against a real sshd and a real git repository: push, log,
//! rollback, rebuild, capture, status, show, secrets.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::common::SshMaster;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

fn revisions(master: &SshMaster, node: &str) -> Vec<String> {
    let (code, stdout, stderr) = master.run(&["log", node, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    json(&stdout)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["revision"].as_str().unwrap().to_owned())
        .collect()
}

fn attributes(path: &std::path::Path) -> (Vec<u8>, u32, u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (
        fs::read(path).unwrap(),
        meta.permissions().mode() & 0o7777,
        meta.uid(),
        meta.gid(),
    )
}

/// A user and group that exist on Debian besides root.
fn other_ids() -> (u32, u32) {
    let id = |args: &[&str]| -> u32 {
        let output = Command::new("id").args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().parse().unwrap()
    };
    (id(&["-u", "nobody"]), id(&["-g", "nobody"]))
}

#[test]
fn push_log_rollback_restores_everything_byte_for_byte() {
    let master = SshMaster::new(&["web1"]);
    let group_of_nobody =
        String::from_utf8(Command::new("id").args(["-gn", "nobody"]).output().unwrap().stdout).unwrap();
    master.write(
        "templates/motd/app.yaml",
        "dest: /etc\nowner: root\ngroup: root\nfiles:\n  - match: \"app/*\"\n    mode: \"4750\"\n",
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("recorded "), "{stdout}");
    let conf = master.root("web1").join("etc/app/app.conf");
    let motd = master.root("web1").join("etc/motd");
    let first = (attributes(&conf), attributes(&motd));
    assert_eq!(first.0.1, 0o4750);

    // Change contents, owner, group and mode; push again.
    master.write("templates/motd/default/motd.hbs", "second version of {{pacha.node}}\n");
    master.write(
        "templates/motd/app.yaml",
        &format!(
            "dest: /etc\nowner: nobody\ngroup: {}\nfiles:\n  - match: \"app/*\"\n    mode: \"0600\"\n",
            group_of_nobody.trim()
        ),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(attributes(&conf).2, other_ids().0);
    let log = revisions(&master, "web1");
    assert_eq!(log.len(), 2);

    // An unchanged push records nothing.
    let (code, _, _) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0);
    assert_eq!(revisions(&master, "web1").len(), 2);

    let (code, stdout, stderr) = master.run(&["rollback", "web1", &log[1][..10]]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        (attributes(&conf), attributes(&motd)),
        first,
        "content, mode, owner and group as recorded"
    );
    let after = revisions(&master, "web1");
    assert_eq!(after.len(), 3);
    let (_, stdout, _) = master.run(&["log", "web1"]);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains(&format!("rollback web1 production to {}", &log[1][..12])),
        "{stdout}"
    );

    // Plain git reads the history.
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(master.dir.path().join("hosts"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(git(&["log", "--format=%s"]).lines().count(), 3);
    assert_eq!(
        git(&["show", &format!("{}:web1/files/etc/motd", log[1])]),
        "hello from web1 (production)\n"
    );
}

#[test]
fn rollback_to_unknown_or_foreign_revisions_is_a_clear_error() {
    let master = SshMaster::new(&["web1", "web2"]);
    for node in ["web1", "web2"] {
        let (code, _, stderr) = master.run(&["push", node, "production"]);
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, _, stderr) = master.run(&["rollback", "web1", "0123456789abcdef"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no revision \"0123456789abcdef\" in the history of node \"web1\""),
        "{stderr}"
    );
    let web2 = revisions(&master, "web2");
    let (code, _, stderr) = master.run(&["rollback", "web1", &web2[0]]);
    assert_eq!(code, 1);
    assert!(stderr.contains("records node \"web2\", not \"web1\""), "{stderr}");
    let (code, _, stderr) = master.run(&["rollback", "web1", "not-a-rev"]);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn rebuild_onto_an_empty_root_reproduces_the_node_and_leaves_its_history_alone() {
    let master = SshMaster::new(&["web1"]);
    master.write("templates/motd/default/bin/tool", "#!/bin/sh\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let fresh = master.dir.path().join("fresh-root");
    let (code, stdout, stderr) = master.run(&[
        "rebuild",
        "web1",
        "--host",
        "web1",
        "--root",
        fresh.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done = json(&stdout);
    assert!(
        done["node"]["scripts"][0]["output"]
            .as_str()
            .unwrap()
            .contains("reloaded web1"),
        "the scripts ran: {done}"
    );
    assert_eq!(done["recorded"], serde_json::Value::Null, "{done}");
    for path in ["etc/motd", "etc/app/app.conf", "etc/bin/tool"] {
        assert_eq!(
            attributes(&fresh.join(path)),
            attributes(&master.root("web1").join(path)),
            "{path}"
        );
    }
    assert_eq!(
        revisions(&master, "web1").len(),
        1,
        "a rebuild elsewhere is no event of web1"
    );

    // Onto the node itself (its root wiped): that is web1's event.
    fs::remove_dir_all(master.root("web1")).unwrap();
    let (code, stdout, stderr) = master.run(&["rebuild", "web1"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(master.root("web1").join("etc/bin/tool").is_file());
    let (_, stdout, _) = master.run(&["log", "web1"]);
    assert!(
        stdout.contains("rebuild web1 production onto web1: 3 files changed"),
        "{stdout}"
    );

    let (code, _, stderr) = master.run(&["rebuild", "web1", "--root", "relative/root"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--root \"relative/root\"") && stderr.contains("absolute"),
        "{stderr}"
    );
}

#[test]
fn capture_records_a_hand_edit_and_status_sees_drift_until_then() {
    let master = SshMaster::new(&["web1"]);
    master.add_to_node("web1", "track: [\"/etc/extra/*.conf\"]\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = master.run(&["status"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("in sync"), "{stdout}");

    let motd = master.root("web1").join("etc/motd");
    fs::write(&motd, "edited by hand\n").unwrap();
    fs::create_dir_all(master.root("web1").join("etc/extra")).unwrap();
    fs::write(master.root("web1").join("etc/extra/local.conf"), "tracked\n").unwrap();
    let blob: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    fs::write(master.root("web1").join("etc/extra/blob.conf"), &blob).unwrap();
    let (code, stdout, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 2, "drift: {stdout}");
    assert!(
        stdout.contains("DRIFTED (3 files)")
            && stdout.contains("/etc/motd: content")
            && stdout.contains("/etc/extra/local.conf: new (matches a track glob)"),
        "a hand edit and new tracked files are drift: {stdout}"
    );

    let (code, stdout, stderr) = master.run(&["capture", "web1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("captured 3 changed files"), "{stdout}");
    let (code, stdout, _) = master.run(&["status", "web1", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(json(&stdout)["drifted"], false);
    let (_, stdout, _) = master.run(&["show", "web1", "--json"]);
    let shown = json(&stdout);
    assert!(
        shown["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|file| file["path"] == "/etc/extra/local.conf"),
        "{shown}"
    );
    let (_, stdout, _) = master.run(&["show", "web1", &revisions(&master, "web1")[0], "/etc/motd"]);
    assert_eq!(stdout, "edited by hand\n");
    let runtime = master.dir.path().join("run");
    let shown = crate::common::pacha()
        .env("XDG_RUNTIME_DIR", &runtime)
        .arg("--master")
        .arg(master.dir.path())
        .args(["show", "web1", &revisions(&master, "web1")[0], "/etc/extra/blob.conf"])
        .output()
        .unwrap();
    assert_eq!(shown.stdout, blob, "binary files are kept as they are");
    // Nothing new: capture records nothing.
    let (_, stdout, _) = master.run(&["capture", "web1"]);
    assert!(stdout.contains("nothing recorded"), "{stdout}");
    assert_eq!(revisions(&master, "web1").len(), 2);
}

#[test]
fn a_push_whose_post_script_fails_is_recorded_as_failed() {
    let master = SshMaster::new(&["web1"]);
    master.write("scripts/post/reload/10-reload", "#!/bin/sh\necho broken >&2\nexit 4\n");
    let (code, stdout, _) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1, "{stdout}");
    let (_, stdout, _) = master.run(&["log", "web1", "--json"]);
    let entry = &json(&stdout)["entries"][0];
    assert_eq!(entry["failed"], true);
    assert!(entry["summary"].as_str().unwrap().contains("(failed)"));
}

#[test]
fn secrets_are_rendered_but_never_printed() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "templates/motd/default/db.conf.hbs",
        "password = {{db_password}}\ntoken = {{token}}\n",
    );
    master.add_to_node(
        "web1",
        "secrets:\n  db_password: hunter2-very-secret\nvars:\n  token: {secret: true, value: tok-123456}\n",
    );
    master.write(
        "scripts/post/reload/10-reload",
        "#!/bin/sh\ncat \"$PACHA_ROOT/etc/db.conf\"\n",
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/db.conf")).unwrap(),
        "password = hunter2-very-secret\ntoken = tok-123456\n"
    );
    assert!(
        stdout.contains("password = <redacted>"),
        "script output is redacted: {stdout}"
    );
    fs::write(
        master.root("web1").join("etc/db.conf"),
        "password = hunter2-very-secret\ntoken = changed\n",
    )
    .unwrap();
    let mut printed = String::new();
    for args in [
        vec!["diff", "web1", "production"],
        vec!["diff", "web1", "production", "--json"],
        vec!["push", "web1", "production", "--dry-run", "--json"],
        vec!["push", "web1", "production", "--json"],
        vec!["log", "web1"],
        vec!["show", "web1"],
        vec!["render", "web1", "production", "--json"],
    ] {
        let (_, stdout, stderr) = master.run(&args);
        printed.push_str(&stdout);
        printed.push_str(&stderr);
    }
    let (_, stdout, _) = master.run(&["show", "web1", &revisions(&master, "web1")[0], "/etc/db.conf"]);
    assert_eq!(stdout, "<redacted>\n", "a file that holds secrets is not shown at all");
    printed.push_str(&stdout);
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(
        !printed.contains("hunter2") && !printed.contains("tok-123456"),
        "a secret was printed:\n{printed}"
    );
}

#[test]
fn a_push_removes_what_the_plan_dropped_and_what_must_be_absent() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "scripts/post/reload/10-reload",
        "#!/bin/sh\necho \"reloaded $PACHA_NODE\"\nprintf 'removed: %s\\n' \"$PACHA_REMOVED\"\n",
    );
    master.write("templates/motd/default/app/extra.conf", "extra\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let root = master.root("web1");
    // What a distro ships and the admin wants gone: a default site and an empty folder.
    fs::create_dir_all(root.join("etc/app/conf.d")).unwrap();
    fs::write(root.join("etc/app/default-site"), "it works\n").unwrap();
    master.write(
        "templates/motd/app.yaml",
        "dest: /etc\nabsent: [app/default-site, app/conf.d]\n",
    );
    fs::remove_file(master.dir.path().join("templates/motd/default/app/extra.conf")).unwrap();
    fs::write(root.join("etc/app/app.conf"), "port = 8080 # by hand\n").unwrap();
    master.write("templates/motd/default/app/app.conf", "port = 81\n");

    let (code, diff, _) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 2, "{diff}");
    for line in [
        "remove /etc/app/extra.conf",
        "remove /etc/app/default-site",
        "remove /etc/app/conf.d",
        "update /etc/app/app.conf",
    ] {
        assert!(diff.contains(line), "{line:?} in {diff}");
    }
    assert!(root.join("etc/app/extra.conf").is_file(), "diff removes nothing");

    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = &json(&stdout)["nodes"][0];
    let kinds: Vec<(String, String)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            (
                change["destination"].as_str().unwrap().to_owned(),
                change["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("/etc/app/extra.conf".into(), "remove".into())),
        "{kinds:?}"
    );
    let output = report["scripts"][0]["output"].as_str().unwrap();
    assert!(
        output.contains("removed: ") && output.contains("/etc/app/extra.conf"),
        "{output}"
    );
    for gone in ["etc/app/extra.conf", "etc/app/default-site", "etc/app/conf.d"] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
    }
    let latest = revisions(&master, "web1")[0].clone();
    let (code, _, _) = master.run(&["show", "web1", &latest, "/etc/app/extra.conf"]);
    assert_eq!(code, 1, "the history no longer has the removed file");
    let (code, status, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 0, "in sync after removing: {status}");
}

/// The red-team repro: pacha killed while a post script runs leaves files the history never
/// got; the next push records them (`recovered`) and the node is in sync again.
#[test]
fn a_push_killed_during_its_post_scripts_is_recovered_by_the_next_push() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "scripts/post/reload/10-reload",
        "#!/bin/sh\n[ -f \"$PACHA_ROOT/slow\" ] && sleep 3\necho \"reloaded $PACHA_NODE\"\n",
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    fs::write(master.root("web1").join("slow"), "").unwrap();
    master.write("templates/motd/default/motd.hbs", "changed for {{pacha.node}}\n");

    let runtime = master.dir.path().join("run");
    let mut push = Command::new(assert_cmd::cargo::cargo_bin("pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("NO_COLOR", "1")
        .arg("--master")
        .arg(master.dir.path())
        .args(["push", "web1", "production"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let motd = master.root("web1").join("etc/motd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fs::read_to_string(&motd).unwrap_or_default() != "changed for web1\n" {
        assert!(std::time::Instant::now() < deadline, "the push never placed the file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    push.kill().unwrap();
    push.wait().unwrap();
    assert_eq!(revisions(&master, "web1").len(), 1, "the killed push recorded nothing");

    fs::remove_file(master.root("web1").join("slow")).unwrap();
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("recovered "), "{stdout}");
    let (_, log, _) = master.run(&["log", "web1", "--json"]);
    let log = json(&log);
    assert_eq!(log["entries"][0]["event"], "recovered", "{log}");
    let (code, status, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 0, "in sync: {status}");
    let latest = revisions(&master, "web1")[0].clone();
    let (_, shown, _) = master.run(&["show", "web1", &latest, "/etc/motd"]);
    assert_eq!(shown, "changed for web1\n");
}

#[test]
fn a_history_that_cannot_be_written_refuses_the_push_before_any_node_is_touched() {
    let master = SshMaster::new(&["web1"]);
    // The history would go inside a file: nothing can be recorded there.
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write("pacha.yaml", &format!("{settings}history: pacha.yaml/hosts\n"));
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(json(&stdout)["error"]["kind"], "history", "{stdout}");
    assert!(stderr.contains("the history cannot be written"), "{stderr}");
    assert!(!master.root("web1").join("etc/motd").exists(), "nothing was placed");
}

/// A folder under the root that is a symlink out of it: push, diff and capture refuse to go
/// through it, and nothing lands outside. A symlink that stays inside (a merged-usr `lib ->
/// usr/lib`) is the node's own business.
#[test]
fn a_symlinked_folder_that_leaves_the_root_is_refused_for_push_diff_and_capture() {
    let master = SshMaster::new(&["web1"]);
    master.add_to_node("web1", "track: [\"/srv/app/*.conf\"]\n");
    master.write("templates/site/app.yaml", "dest: /srv/app\n");
    master.write("templates/site/default/site.conf", "listen 80\n");
    master.write("templates/inside/app.yaml", "dest: /lib/inside\n");
    master.write("templates/inside/default/ok.conf", "fine\n");
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write(
        "nodes/web1/web1.conf",
        &text.replace("apps: [motd]", "apps: [motd, site, inside]"),
    );
    let root = master.root("web1");
    let outside = master.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret.conf"), "not yours\n").unwrap();
    fs::create_dir_all(root.join("srv")).unwrap();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("srv/app")).unwrap();
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();

    for args in [&["push", "web1", "production"][..], &["diff", "web1", "production"]] {
        let (code, stdout, stderr) = master.run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.contains("srv/app is a symlink that leads out of the node's root"),
            "{args:?}: {stdout}"
        );
    }
    assert!(
        !outside.join("site.conf").exists(),
        "nothing was placed outside the root"
    );
    assert!(!root.join("etc/motd").exists(), "nothing was placed at all");

    // Without the app behind the link, the push goes through the inside link.
    master.write(
        "nodes/web1/web1.conf",
        &text.replace("apps: [motd]", "apps: [motd, inside]"),
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(root.join("usr/lib/inside/ok.conf").is_file());
    // Capture looks for tracked files below the link: refused too.
    let (code, _, stderr) = master.run(&["capture", "web1"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("srv/app is a symlink that leads out"), "{stderr}");
}

/// Links and folders are managed like files: placed (a link atomically), reported, recorded as
/// git symlinks and in meta.yaml, restored by rollback, removed when dropped.
#[test]
fn links_and_folders_are_placed_recorded_rolled_back_and_removed() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "templates/motd/app.yaml",
        "dest: /etc\nlinks:\n  systemd/system/multi-user.target.wants/app.service: /lib/systemd/system/app.service\n  localtime: /usr/share/zoneinfo/Europe/Paris\ndirs:\n  app/cache: {mode: \"2750\"}\n",
    );
    let root = master.root("web1");
    let (code, diff, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 2, "{diff}{stderr}");
    assert!(
        diff.contains("link /etc/localtime -> /usr/share/zoneinfo/Europe/Paris"),
        "{diff}"
    );
    assert!(diff.contains("dir /etc/app/cache"), "{diff}");

    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let kinds: Vec<String> = json(&stdout)["nodes"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"link".to_owned()) && kinds.contains(&"directory".to_owned()),
        "{kinds:?}"
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants/app.service");
    assert_eq!(
        fs::read_link(&wants).unwrap(),
        std::path::Path::new("/lib/systemd/system/app.service")
    );
    assert_eq!(
        fs::metadata(root.join("etc/app/cache")).unwrap().permissions().mode() & 0o7777,
        0o2750
    );
    let first = revisions(&master, "web1")[0].clone();
    let (code, _, _) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0);
    assert_eq!(revisions(&master, "web1").len(), 1, "a second push changes nothing");

    // Hand changes are drift.
    fs::remove_file(root.join("etc/localtime")).unwrap();
    std::os::unix::fs::symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
    fs::set_permissions(root.join("etc/app/cache"), fs::Permissions::from_mode(0o755)).unwrap();
    let (code, status, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 2, "{status}");
    assert!(
        status.contains("/etc/localtime: points to /usr/share/zoneinfo/UTC"),
        "{status}"
    );
    assert!(status.contains("/etc/app/cache: mode 2750 -> 0755"), "{status}");
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        fs::read_link(root.join("etc/localtime")).unwrap(),
        std::path::Path::new("/usr/share/zoneinfo/Europe/Paris"),
        "the link is pointed at its target again"
    );

    // Dropped from app.yaml: the link goes, the empty folder goes.
    master.write("templates/motd/app.yaml", "dest: /etc\n");
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(fs::symlink_metadata(&wants).is_err(), "{stdout}");
    assert!(!root.join("etc/app/cache").exists(), "{stdout}");

    // Rollback to the first push brings them back, exactly.
    let (code, stdout, stderr) = master.run(&["rollback", "web1", &first]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        fs::read_link(&wants).unwrap(),
        std::path::Path::new("/lib/systemd/system/app.service")
    );
    assert_eq!(
        fs::metadata(root.join("etc/app/cache")).unwrap().permissions().mode() & 0o7777,
        0o2750
    );
    let (code, status, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 0, "in sync after the rollback: {status}");
}

#[test]
fn a_forced_push_and_a_changed_script_are_recorded_and_a_tracked_link_is_captured_as_a_link() {
    let master = SshMaster::new(&["web1"]);
    master.add_to_node("web1", "track: [\"/etc/extra/*\"]\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = master.run(&["push", "web1", "production", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, log, _) = master.run(&["log", "web1"]);
    assert!(log.contains("push web1 production (forced): 2 files changed"), "{log}");

    master.write(
        "scripts/post/reload/10-reload",
        "#!/bin/sh\necho \"reloaded again $PACHA_NODE\"\n",
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report = &json(&stdout)["nodes"][0];
    assert_eq!(report["outcome"], "unchanged");
    let latest = report["recorded"]
        .as_str()
        .expect("a changed script is recorded")
        .to_owned();
    let (code, stdout, _) = master.run(&["show", "web1", &latest, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        json(&stdout)["entry"]["summary"],
        "push web1 production: 0 files changed"
    );

    fs::create_dir_all(master.root("web1").join("etc/extra")).unwrap();
    std::os::unix::fs::symlink("../motd", master.root("web1").join("etc/extra/alias")).unwrap();
    let (code, stdout, stderr) = master.run(&["capture", "web1"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, shown, _) = master.run(&["show", "web1", "--json"]);
    let links = &json(&shown)["links"];
    assert_eq!(links[0]["path"], "/etc/extra/alias", "{shown}");
    assert_eq!(links[0]["target"], "../motd");
    assert_eq!(links[0]["managed"], false);
    // A push keeps the captured link recorded and leaves it on the node.
    master.write("templates/motd/default/motd.hbs", "changed {{pacha.node}}\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(fs::symlink_metadata(master.root("web1").join("etc/extra/alias")).is_ok());
    let (_, shown, _) = master.run(&["show", "web1", "--json"]);
    assert_eq!(json(&shown)["links"][0]["path"], "/etc/extra/alias", "{shown}");
}

#[test]
fn names_from_the_node_are_printed_with_control_characters_escaped() {
    let master = SshMaster::new(&["web1"]);
    master.add_to_node("web1", "track: [\"/etc/extra/*\"]\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    fs::create_dir_all(master.root("web1").join("etc/extra")).unwrap();
    fs::write(master.root("web1").join("etc/extra/\x1b[2Jgotcha\nline"), "x").unwrap();
    for args in [&["status", "web1"][..], &["capture", "web1"], &["log", "web1"]] {
        let (_, stdout, stderr) = master.run(args);
        assert!(!stdout.contains('\x1b'), "{args:?} printed a raw escape: {stdout:?}");
        assert!(stdout.contains("\\x1b[2Jgotcha\\nline"), "{args:?}: {stdout}{stderr}");
    }
}

/// A file whose rendering read a secret is secret-bearing, whatever helper the value went
/// through: diff, show and errors never print it (old or new) unless --show-secrets asks.
#[test]
fn secret_bearing_files_are_never_shown_by_taint_not_by_string_matching() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "templates/motd/default/tls.key.hbs",
        "key:\n{{indent 4 tls_key}}\nshout {{upper api_token}}\njson {{json api_token}}\n",
    );
    master.add_to_node(
        "web1",
        "secrets:\n  tls_key: \"-----BEGIN KEY-----\\nAAAAsecretkeybody\\n-----END KEY-----\"\n  api_token: rotate-me-one\n",
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let first = revisions(&master, "web1")[0].clone();

    // Rotate the token: the diff says the file changed, and prints neither value.
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write("nodes/web1/web1.conf", &text.replace("rotate-me-one", "rotate-me-two"));
    for args in [
        &["diff", "web1", "production"][..],
        &["diff", "web1", "production", "--json"],
    ] {
        let (code, stdout, stderr) = master.run(args);
        assert_eq!(code, 2, "{stdout}{stderr}");
        for secret in [
            "AAAAsecretkeybody",
            "ROTATE-ME-ONE",
            "ROTATE-ME-TWO",
            "rotate-me-one",
            "rotate-me-two",
        ] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{args:?} leaked {secret}: {stdout}"
            );
        }
        assert!(stdout.contains("holds secrets"), "{args:?}: {stdout}");
    }
    let (_, stdout, _) = master.run(&["diff", "web1", "production", "--show-secrets"]);
    assert!(stdout.contains("ROTATE-ME-TWO"), "--show-secrets prints it: {stdout}");

    // The old value in the history stays unshown too.
    let (_, shown, _) = master.run(&["show", "web1", &first, "/etc/tls.key"]);
    assert_eq!(shown, "<redacted>\n");
    let (_, shown, _) = master.run(&["show", "web1", &first, "/etc/tls.key", "--show-secrets"]);
    assert!(shown.contains("ROTATE-ME-ONE"), "{shown}");

    // A helper error names no value.
    master.write("templates/motd/default/tls.key.hbs", "{{add api_token 1}}\n");
    let (code, _, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(!stderr.contains("rotate-me"), "{stderr}");
    assert!(stderr.contains("not a number"), "{stderr}");
}

/// A push whose `mv` fails in its second folder has placed the first folder's files: the
/// history has them after the next push (`recovered`), and node and history agree.
#[test]
fn a_failing_rename_in_the_second_folder_is_recovered_by_the_next_push() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "scripts/pre/block/10-block",
        "#!/bin/sh\n[ -f \"$PACHA_ROOT/block\" ] || exit 0\nrm -f \"$PACHA_ROOT/etc/motd\"\nmkdir -p \"$PACHA_ROOT/etc/motd/in-the-way\"\n",
    );
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write(
        "nodes/web1/web1.conf",
        &text.replace("scripts:\n", "scripts:\n  pre: [block]\n"),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let root = master.root("web1");
    fs::write(root.join("block"), "").unwrap();
    // Both folders change: /etc/app first, then /etc, whose rename the pre script blocks.
    master.write("templates/motd/default/app/app.conf", "port = 81\n");
    master.write("templates/motd/default/motd.hbs", "changed {{pacha.node}}\n");
    let (code, stdout, _) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        fs::read_to_string(root.join("etc/app/app.conf")).unwrap(),
        "port = 81\n"
    );
    assert_eq!(revisions(&master, "web1").len(), 1, "the failed push recorded nothing");

    fs::remove_file(root.join("block")).unwrap();
    fs::remove_dir_all(root.join("etc/motd")).unwrap();
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = &json(&stdout)["nodes"][0];
    assert!(
        report["recovered"].is_string(),
        "the placed app.conf was recovered: {report}"
    );
    let (code, status, _) = master.run(&["status", "web1"]);
    assert_eq!(code, 0, "{status}");
    let recovered = report["recovered"].as_str().unwrap().to_owned();
    let (_, shown, _) = master.run(&["show", "web1", &recovered, "/etc/app/app.conf"]);
    assert_eq!(shown, "port = 81\n");
}

/// Secrets encrypted with age in the master (`pacha secret set`) are rendered on the node and
/// nowhere else: not in `secret list`, not in plaintext in the history (files that hold them
/// are stored encrypted), and rollback decrypts them again. A wrong identity touches no node.
#[test]
fn age_secrets_in_the_master_and_the_history() {
    let master = SshMaster::new(&["web1"]);
    let recipient = fixtures::age_identity(master.dir.path(), "keys/admin.txt");
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write(
        "pacha.yaml",
        &format!("{settings}age:\n  recipients: [{recipient}]\n  identity: keys/admin.txt\n"),
    );
    master.write(
        "templates/motd/default/token.conf.hbs",
        "token = {{api_token}}\nkey = {{tls_key}}\n",
    );
    let set = |args: &[&str], value: &str| {
        let (code, stdout, stderr) = crate::common::outcome(master.command().args(args).write_stdin(value));
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            !stdout.contains(value.trim()) && !stderr.contains(value.trim()),
            "{stdout}{stderr}"
        );
        stdout
    };
    let said = set(&["secret", "set", "api_token"], "tok-master-123\n");
    assert!(said.contains("secrets/api_token.age"), "{said}");
    set(&["secret", "set", "--node", "web1", "tls_key"], "key-node-456");
    for file in ["secrets/api_token.age", "nodes/web1/secrets/tls_key.age"] {
        let text = fs::read_to_string(master.dir.path().join(file)).unwrap();
        assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"), "{file}: {text}");
        assert!(!text.contains("tok-master") && !text.contains("key-node"), "{file}");
    }

    let (code, listed, _) = master.run(&["secret", "list"]);
    assert_eq!(code, 0);
    assert!(
        listed.contains("api_token") && listed.contains("node web1") && listed.contains(&recipient),
        "{listed}"
    );
    let (_, listed_json, _) = master.run(&["secret", "list", "--json"]);
    let listed_json = json(&listed_json);
    assert_eq!(listed_json["secrets"][1]["node"], "web1", "{listed_json}");
    assert_eq!(listed_json["secrets"][1]["encrypted"], true);
    assert!(!format!("{listed}{listed_json}").contains("tok-master-123"));

    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let placed = master.root("web1").join("etc/token.conf");
    assert_eq!(
        fs::read_to_string(&placed).unwrap(),
        "token = tok-master-123\nkey = key-node-456\n"
    );
    let first = revisions(&master, "web1")[0].clone();

    // Rotate, push, and look at the history as git sees it: armour, never the values.
    set(&["secret", "set", "api_token"], "tok-rotated-789\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(fs::read_to_string(&placed).unwrap().contains("tok-rotated-789"));
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("--git-dir")
            .arg(master.dir.path().join("hosts"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let everything = git(&["log", "-p", "--all"]);
    for value in ["tok-master-123", "tok-rotated-789", "key-node-456"] {
        assert!(!everything.contains(value), "the history holds {value} in plaintext");
    }
    let stored = git(&["show", "main:web1/files/etc/token.conf"]);
    assert!(stored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"), "{stored}");
    assert!(
        git(&["show", "main:web1/files/etc/motd"]).starts_with("hello"),
        "only files that hold secrets are encrypted"
    );

    // Show decrypts when asked; rollback and rebuild place the old value again.
    let (_, shown, _) = master.run(&["show", "web1", &first, "/etc/token.conf"]);
    assert_eq!(shown, "<redacted>\n");
    let (_, shown, _) = master.run(&["show", "web1", &first, "/etc/token.conf", "--show-secrets"]);
    assert_eq!(shown, "token = tok-master-123\nkey = key-node-456\n");
    let (code, stdout, stderr) = master.run(&["rollback", "web1", &first]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(fs::read_to_string(&placed).unwrap().contains("tok-master-123"));
    fs::remove_file(&placed).unwrap();
    let (code, _, stderr) = master.run(&["rebuild", "web1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(fs::read_to_string(&placed).unwrap().contains("tok-master-123"));

    // A saved plan holds the new value sealed; applying it decrypts it.
    set(&["secret", "set", "api_token"], "tok-plan-555\n");
    let plan_file = master.dir.path().join("rotate.plan");
    let (code, stdout, stderr) = master.run(&["plan", "web1", "production", "-o", plan_file.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stdout.contains("(secrets encrypted)") && !stdout.contains("tok-plan-555"),
        "{stdout}"
    );
    let saved = fs::read_to_string(&plan_file).unwrap();
    assert!(
        saved.contains("BEGIN AGE ENCRYPTED FILE") && !saved.contains("tok-plan-555"),
        "{saved}"
    );
    assert!(!saved.contains("tok-master-123"), "no secret value in the plan file");
    let (code, stdout, stderr) = master.run(&["apply", plan_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(fs::read_to_string(&placed).unwrap().contains("tok-plan-555"));

    // Another identity: refused before any node is touched, naming the file.
    fixtures::age_identity(master.dir.path(), "keys/other.txt");
    master.write("templates/motd/default/motd.hbs", "changed\n");
    let motd_before = fs::read(master.root("web1").join("etc/motd")).unwrap();
    let (code, stdout, stderr) =
        crate::common::outcome(master.command().env("PACHA_AGE_IDENTITY", "keys/other.txt").args([
            "push",
            "web1",
            "production",
            "--json",
        ]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let error = &json(&stdout)["error"];
    assert_eq!(error["kind"], "secret", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("secrets/api_token.age cannot be decrypted") && message.contains("keys/other.txt"),
        "{message}"
    );
    assert_eq!(fs::read(master.root("web1").join("etc/motd")).unwrap(), motd_before);

    // No recipients: `secret set` says how to get one and writes nothing.
    master.write("pacha.yaml", &settings);
    let (code, _, stderr) = crate::common::outcome(master.command().args(["secret", "set", "other"]).write_stdin("v"));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no age recipients") && stderr.contains("age-keygen"),
        "{stderr}"
    );
    assert!(!master.dir.path().join("secrets/other.age").exists());
}

/// Revisions as an admin types them: `show NODE PATH` for the latest, `HEAD` and `HEAD~N`
/// (in the node's own log) wherever a revision goes, and `log -n`/`--path`.
#[test]
fn head_revisions_show_without_a_revision_and_a_filtered_log() {
    let master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    master.write("templates/motd/default/motd.hbs", "second\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    master.write("templates/motd/default/app/app.conf", "port = 8080\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let all = revisions(&master, "web1");
    assert_eq!(all.len(), 3);

    let (code, shown, stderr) = master.run(&["show", "web1", "/etc/motd"]);
    assert_eq!((code, shown.as_str()), (0, "second\n"), "{stderr}");
    let (_, shown, _) = master.run(&["show", "web1", "HEAD~2", "/etc/motd"]);
    assert_eq!(shown, "hello from web1 (production)\n");
    let (_, head, _) = master.run(&["show", "web1", "HEAD", "--json"]);
    assert_eq!(json(&head)["entry"]["revision"], all[0].as_str(), "{head}");
    let (code, _, stderr) = master.run(&["show", "web1", "HEAD~3"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("HEAD~3"), "{stderr}");

    let (_, log, _) = master.run(&["log", "web1", "-n", "1", "--json"]);
    assert_eq!(json(&log)["entries"].as_array().unwrap().len(), 1);
    let (_, log, _) = master.run(&["log", "web1", "--path", "/etc/app", "--json"]);
    let log = json(&log);
    let touched: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["revision"].as_str().unwrap())
        .collect();
    assert_eq!(
        touched,
        [all[0].as_str(), all[2].as_str()],
        "the app.conf change and the first push"
    );

    let (code, _, stderr) = master.run(&["rollback", "web1", "HEAD~1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/app/app.conf")).unwrap(),
        "port = 80\n"
    );
}

/// `diff NODE --rev A[..B]` reads two recorded revisions: no node, no rendering.
#[test]
fn diff_between_recorded_revisions_never_prints_a_secret() {
    let master = SshMaster::new(&["web1"]);
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write("pacha.yaml", &format!("{settings}secrets:\n  token: first-s3cret\n"));
    master.write("templates/motd/default/token.conf.hbs", "token = {{token}}\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    master.write("templates/motd/default/motd.hbs", "changed motd\n");
    master.write("pacha.yaml", &format!("{settings}secrets:\n  token: second-s3cret\n"));
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, text, stderr) = master.run(&["diff", "web1", "--rev", "HEAD~1"]);
    assert_eq!(code, 2, "{text}{stderr}");
    assert!(text.contains("update /etc/motd"), "{text}");
    assert!(text.contains("+changed motd"), "{text}");
    assert!(text.contains("update /etc/token.conf"), "{text}");
    assert!(text.contains("content changed (holds secrets)"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    let all = revisions(&master, "web1");
    let spec = format!("{}..{}", &all[1][..8], &all[0][..8]);
    let (code, document, _) = master.run(&["diff", "web1", "--rev", &spec, "--json"]);
    assert_eq!(code, 2);
    assert!(!document.contains("s3cret"), "{document}");
    let document = json(&document);
    assert_eq!(document["from"], all[1].as_str());
    assert_eq!(document["to"], all[0].as_str());
    let changes = document["changes"].as_array().unwrap();
    let token = changes
        .iter()
        .find(|change| change["path"] == "/etc/token.conf")
        .unwrap();
    assert_eq!(token["secret"], true);
    assert_eq!(token["diff"], serde_json::Value::Null);

    let (code, text, _) = master.run(&["diff", "web1", "--rev", "HEAD..HEAD"]);
    assert_eq!(code, 0, "{text}");
    let (code, _, stderr) = master.run(&["diff", "web1", "production", "--rev", "HEAD~1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// `adopt`: a live file becomes a template of the master, and the next diff has nothing to do.
#[test]
fn adopt_turns_a_live_file_into_the_masters_own() {
    let master = SshMaster::new(&["web1"]);
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    let live = master.root("web1").join("etc/chrony/chrony.conf");
    fs::create_dir_all(live.parent().unwrap()).unwrap();
    fs::write(&live, "server ntp.example.com iburst\n").unwrap();
    fs::set_permissions(&live, fs::Permissions::from_mode(0o640)).unwrap();

    let (code, text, stderr) = master.run(&["adopt", "web1", "/etc/chrony/chrony.conf", "--app", "chrony"]);
    assert_eq!(code, 0, "{text}{stderr}");
    assert!(text.contains("created templates/chrony/app.yaml"), "{text}");
    let dir = master.dir.path();
    assert_eq!(
        fs::read_to_string(dir.join("templates/chrony/default/chrony.conf")).unwrap(),
        "server ntp.example.com iburst\n"
    );
    let app = fs::read_to_string(dir.join("templates/chrony/app.yaml")).unwrap();
    assert!(app.contains("dest: /etc/chrony"), "{app}");
    assert!(app.contains("mode: \"0640\""), "{app}");
    let node = fs::read_to_string(dir.join("nodes/web1/web1.conf")).unwrap();
    assert!(node.contains("apps: [motd, chrony]"), "{node}");
    let (code, text, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 0, "nothing to change after adopt: {text}{stderr}");

    // Never over a file or a template that is there.
    let (code, _, stderr) = master.run(&["adopt", "web1", "/etc/chrony/chrony.conf", "--app", "chrony"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("never overwrites"), "{stderr}");
    let (code, _, stderr) = master.run(&["adopt", "web1", "/etc/motd", "--app", "motd"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("motd.hbs already exists"), "{stderr}");
    // A file holding a secret value is not copied into the master in plaintext.
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write("pacha.yaml", &format!("{settings}secrets:\n  ntp_key: k3y-4242\n"));
    fs::write(master.root("web1").join("etc/chrony/keys"), "1 SHA1 k3y-4242\n").unwrap();
    let (code, _, stderr) = master.run(&["adopt", "web1", "/etc/chrony/keys", "--app", "chrony"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("holds a secret") && !stderr.contains("k3y-4242"),
        "{stderr}"
    );
    assert!(!dir.join("templates/chrony/default/keys").exists());
    let (code, _, stderr) = master.run(&["adopt", "web1", "/srv/elsewhere", "--app", "motd"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not under /etc") || stderr.contains("has no file"),
        "{stderr}"
    );
}
