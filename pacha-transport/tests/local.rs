//! The local transport runs the same snippets with the local `/bin/sh`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pacha_core::testing::push_unrecorded;
use pacha_core::{
    Connector, Inspect, NodePath, Outcome, PushOptions, Quiet, SshSettings, Stage, TransportError, TransportKind,
};
use pacha_transport::LocalConnector;

use crate::support::{file, nasty_files, plan, script, target};

#[test]
fn push_places_files_with_modes_and_runs_scripts_in_order() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let body = format!(
        "#!/bin/sh\necho \"$PACHA_STAGE $PACHA_PHASE $PACHA_SCRIPT $PACHA_NODE\" >> {}\n",
        log.display()
    );
    let p = plan(
        "n1",
        t,
        vec![
            file("/etc/app/a.conf", b"a\n", "0640"),
            file("/etc/app/deep/b.key", b"\x00\xffbin", "0600"),
        ],
        vec![
            script(Stage::Pre, "install", "10-first", &body),
            script(Stage::Pre, "install", "20-second", &body),
            script(Stage::Post, "reload", "10-reload", &body),
        ],
    );
    let reports = push_unrecorded(
        std::slice::from_ref(&p),
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
    let a = root.path().join("etc/app/a.conf");
    assert_eq!(fs::read(&a).unwrap(), b"a\n");
    assert_eq!(fs::metadata(&a).unwrap().permissions().mode() & 0o7777, 0o640);
    assert_eq!(
        fs::read(root.path().join("etc/app/deep/b.key")).unwrap(),
        b"\x00\xffbin"
    );
    assert_eq!(
        fs::metadata(root.path().join("etc/app/deep"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "pre install 10-first n1\npre install 20-second n1\npost reload 10-reload n1\n"
    );
    // Nothing left behind: no temp files, no run folder, no lock, no due post scripts.
    let leftovers: Vec<String> = walk(root.path())
        .into_iter()
        .filter(|p| p.contains(".pacha-") || p.contains("run.") || p.ends_with("pending-post") || p.ends_with("/lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mtime = fs::metadata(&a).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let again = push_unrecorded(&[p], &LocalConnector::default(), &PushOptions::default(), &Quiet);
    assert_eq!(again[0].outcome, Outcome::Unchanged);
    assert_eq!(
        fs::metadata(&a).unwrap().modified().unwrap(),
        mtime,
        "an unchanged push writes nothing"
    );
    assert_eq!(
        fs::read_to_string(&log).unwrap().lines().count(),
        3,
        "and runs no script"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        found.push(path.display().to_string());
        if path.is_dir() && !path.is_symlink() {
            found.extend(walk(&path));
        }
    }
    found
}

#[test]
fn a_symlink_at_the_target_is_replaced_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, "untouched").unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    std::os::unix::fs::symlink(&victim, root.path().join("etc/motd")).unwrap();
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let reports = push_unrecorded(
        &[plan("n1", t, vec![file("/etc/motd", b"new\n", "0644")], vec![])],
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(
        !fs::symlink_metadata(root.path().join("etc/motd"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(root.path().join("etc/motd")).unwrap(), "new\n");
}

#[test]
fn names_and_contents_with_shell_syntax_are_placed_literally() {
    let root = tempfile::tempdir().unwrap();
    let canary = root.path().join("canary");
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let (nasty, files) = nasty_files(&canary);
    let mut p = plan(
        "node 'quoted' $(x)",
        t,
        files,
        vec![script(
            Stage::Post,
            "p",
            "it's",
            "#!/bin/sh\nprintf '%s' \"$PACHA_NODE\" > \"$PACHA_ROOT/node-name\"\n",
        )],
    );
    p.state = "st;ate".into();
    let reports = push_unrecorded(&[p], &LocalConnector::default(), &PushOptions::default(), &Quiet);
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
    for path in nasty {
        let placed = root.path().join(&path[1..]);
        assert!(placed.is_file(), "{path:?} was not placed");
        assert!(fs::read_to_string(placed).unwrap().starts_with("$(touch"));
    }
    assert!(!canary.exists(), "something was executed");
    assert_eq!(
        fs::read_to_string(root.path().join("node-name")).unwrap(),
        "node 'quoted' $(x)"
    );
}

#[test]
fn a_second_push_waits_for_the_lock_then_fails_clearly() {
    let root = tempfile::tempdir().unwrap();
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let connector = LocalConnector::default().with_lock_wait(Duration::from_millis(300));
    let paths = [NodePath::parse("/etc/x").unwrap()];
    let mut first = connector.connect("n1", &t).unwrap();
    first
        .inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: Some("pacha push by alice@admin (pid 1)"),
        })
        .unwrap();
    let mut second = connector.connect("n1", &t).unwrap();
    let err = second
        .inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: Some("bob"),
        })
        .unwrap_err();
    assert!(matches!(err, TransportError::Locked { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "local: the node is busy: pacha push by alice@admin (pid 1); try again when it is done"
    );
    first.close().unwrap();
    second
        .inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: Some("bob"),
        })
        .unwrap();
    second.close().unwrap();
}

/// A lock taken by an older pacha (a folder, its holder in `lock/holder`, no holder line in
/// `lock/pid`) is reported with that holder.
#[test]
fn a_lock_of_an_older_pacha_names_its_holder() {
    let root = tempfile::tempdir().unwrap();
    let lock = root.path().join("var/lib/pacha/lock");
    fs::create_dir_all(&lock).unwrap();
    // Alive: this test's own process.
    fs::write(lock.join("pid"), format!("{}\n", std::process::id())).unwrap();
    fs::write(lock.join("nonce"), "00000000000000cc\n").unwrap();
    fs::write(lock.join("holder"), "pacha push by carol@old (pid 5)\n").unwrap();
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let connector = LocalConnector::default().with_lock_wait(Duration::from_millis(100));
    let paths = [NodePath::parse("/etc/x").unwrap()];
    let err = connector
        .connect("n1", &t)
        .unwrap()
        .inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: Some("bob"),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "local: the node is busy: pacha push by carol@old (pid 5); try again when it is done"
    );
}

#[test]
fn a_lock_left_by_a_dead_process_is_taken_over() {
    let root = tempfile::tempdir().unwrap();
    let lock = root.path().join("var/lib/pacha/lock");
    fs::create_dir_all(&lock).unwrap();
    fs::write(lock.join("pid"), "999999999\n").unwrap();
    fs::write(lock.join("holder"), "a pacha that was killed\n").unwrap();
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let reports = push_unrecorded(
        &[plan("n1", t, vec![file("/x", b"x", "0644")], vec![])],
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
}

/// A lock file left by a dead holder names the apply that ran under it (`apply`) and the
/// script group that apply started (`script`): the pacha that takes it over stops both before
/// it places anything, as it does those of an older pacha's lock folder; a process named by an
/// apply that ended (`applied`) is left alone.
#[test]
fn a_dead_holders_lock_file_is_taken_over_and_its_apply_stopped() {
    use std::os::unix::process::CommandExt;
    // A process of a group of its own, reaped as soon as it ends (as init reaps an orphan).
    let spawn = |marker: &str| {
        let mut child = std::process::Command::new("sleep")
            .arg(marker)
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let id = child.id();
        let (ended, status) = std::sync::mpsc::channel();
        std::thread::spawn(move || ended.send(child.wait().unwrap()));
        (id, status)
    };
    // Whether it ends within a few seconds (if not, it is ended here).
    let ends = |id: u32, status: &std::sync::mpsc::Receiver<std::process::ExitStatus>| {
        let ended = status.recv_timeout(Duration::from_secs(5)).is_ok();
        if !ended {
            let _ = std::process::Command::new("kill").arg(id.to_string()).status();
        }
        ended
    };
    // A push onto a node whose lock `lock` writes.
    let push_over = |lock: &dyn Fn(&std::path::Path)| {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("var/lib/pacha");
        fs::create_dir_all(&state).unwrap();
        lock(&state.join("lock"));
        let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
        let reports = push_unrecorded(
            &[plan("n1", t, vec![file("/x", b"x", "0644")], vec![])],
            &LocalConnector::default(),
            &PushOptions::default(),
            &Quiet,
        );
        assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
        assert!(!state.join("lock").exists(), "the lock stays after the push");
    };

    let lock_file = |told: String| {
        move |lock: &std::path::Path| {
            fs::write(
                lock,
                format!("999999999\n00000000000000dd\na pacha that was killed\n{told}"),
            )
            .unwrap();
        }
    };
    let (apply, applying) = spawn("3613");
    let (script, scripting) = spawn("3617");
    push_over(&lock_file(format!("apply {apply}\nscript {script}\n")));
    assert!(ends(apply, &applying), "the dead holder's apply still runs");
    assert!(ends(script, &scripting), "the dead holder's script group still runs");

    // An older pacha's lock folder, its apply and script group in files of their own.
    let (apply, applying) = spawn("3637");
    let (script, scripting) = spawn("3641");
    push_over(&|lock: &std::path::Path| {
        fs::create_dir(lock).unwrap();
        fs::write(lock.join("pid"), "999999999\n").unwrap();
        fs::write(lock.join("apply"), format!("{apply}\n")).unwrap();
        fs::write(lock.join("script"), format!("{script}\n")).unwrap();
    });
    assert!(ends(apply, &applying), "the older dead holder's apply still runs");
    assert!(
        ends(script, &scripting),
        "the older dead holder's script group still runs"
    );

    let (ended, running) = spawn("3619");
    push_over(&lock_file(format!("apply {ended}\napplied {ended}\n")));
    let stopped = running.recv_timeout(Duration::from_millis(300)).is_ok();
    let _ = std::process::Command::new("kill").arg(ended.to_string()).status();
    assert!(!stopped, "an ended apply's pid was stopped");
}

#[test]
fn a_failing_pre_script_places_nothing_and_a_failing_post_script_runs_again() {
    let root = tempfile::tempdir().unwrap();
    let flag = root.path().join("post-may-pass");
    let t = target("local", root.path(), TransportKind::Local, SshSettings::default());
    let failing_pre = plan(
        "n1",
        t.clone(),
        vec![file("/etc/x", b"x", "0644")],
        vec![script(Stage::Pre, "p", "fail", "#!/bin/sh\necho nope >&2\nexit 3\n")],
    );
    let reports = push_unrecorded(
        &[failing_pre],
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(reports[0].outcome, Outcome::Failed);
    assert_eq!(reports[0].scripts[0].output, b"nope\n");
    assert!(
        !root.path().join("etc/x").exists(),
        "a failing pre script stops the node before anything is placed"
    );

    let post = format!(
        "#!/bin/sh\necho \"$PACHA_CHANGED\" >> {0}.log\n[ -f {0} ]\n",
        flag.display()
    );
    let mut p = plan(
        "n1",
        t,
        vec![file("/etc/x", b"x", "0644")],
        vec![script(Stage::Post, "p", "reload", &post)],
    );
    // `on_failure: keep`: the files stay and the post scripts are due (the default rolls back).
    p.keep_on_failure = true;
    let first = push_unrecorded(
        std::slice::from_ref(&p),
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(first[0].outcome, Outcome::Failed);
    assert!(
        root.path().join("etc/x").exists(),
        "files were placed before the post script"
    );
    // A dry run sees the post scripts left due, without taking the lock or running them.
    let dry = push_unrecorded(
        std::slice::from_ref(&p),
        &LocalConnector::default(),
        &PushOptions {
            dry_run: true,
            ..PushOptions::default()
        },
        &Quiet,
    );
    assert_eq!(dry[0].outcome, Outcome::WouldChange);
    assert!(dry[0].changes.is_empty());
    assert_eq!(dry[0].pending_post.as_ref().map(Vec::len), Some(1));
    assert!(!root.path().join("var/lib/pacha/lock").exists());
    fs::write(&flag, "").unwrap();
    let second = push_unrecorded(
        std::slice::from_ref(&p),
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(second[0].outcome, Outcome::Changed, "{:?}", second[0].error);
    assert!(second[0].changes.is_empty());
    let expected_path = root.path().join("etc/x").display().to_string();
    assert_eq!(
        fs::read_to_string(format!("{}.log", flag.display())).unwrap(),
        format!("{expected_path}\n{expected_path}\n")
    );
    let third = push_unrecorded(&[p], &LocalConnector::default(), &PushOptions::default(), &Quiet);
    assert_eq!(third[0].outcome, Outcome::Unchanged);
}

#[test]
fn inspect_reads_link_targets_byte_for_byte_and_folder_attributes() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/conf.d")).unwrap();
    fs::set_permissions(root.path().join("etc/conf.d"), fs::Permissions::from_mode(0o2750)).unwrap();
    let link_target = "../odd\nname  $(x) 'q'";
    std::os::unix::fs::symlink(link_target, root.path().join("etc/link")).unwrap();
    fs::write(root.path().join("etc/file"), "x").unwrap();
    let mut connection = LocalConnector::default()
        .connect(
            "n1",
            &target("n1", root.path(), TransportKind::Local, SshSettings::default()),
        )
        .unwrap();
    let paths = [
        NodePath::parse("/etc/link").unwrap(),
        NodePath::parse("/etc/conf.d").unwrap(),
        NodePath::parse("/etc/file").unwrap(),
    ];
    let inspection = connection
        .inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: None,
        })
        .unwrap();
    connection.close().unwrap();
    assert_eq!(
        inspection.files[0],
        pacha_core::LiveFile::Symlink(link_target.to_owned())
    );
    assert!(
        matches!(&inspection.files[1], pacha_core::LiveFile::Directory(dir) if dir.mode.to_string() == "2750"),
        "{:?}",
        inspection.files[1]
    );
    assert!(matches!(inspection.files[2], pacha_core::LiveFile::File(_)));
}

#[test]
fn post_scripts_get_nul_separated_lists_of_changed_and_removed_files() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let post = format!(
        "#!/bin/sh\ncp \"$PACHA_CHANGED_FILE\" {0}/changed\ncp \"$PACHA_REMOVED_FILE\" {0}/removed\n",
        out.path().display()
    );
    let t = target("n1", root.path(), TransportKind::Local, SshSettings::default());
    let p = plan(
        "n1",
        t,
        vec![file("/etc/two\nlines", b"x", "0644"), file("/etc/plain", b"y", "0644")],
        vec![script(Stage::Post, "p", "list", &post)],
    );
    let reports = push_unrecorded(
        std::slice::from_ref(&p),
        &LocalConnector::default(),
        &PushOptions::default(),
        &Quiet,
    );
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
    let changed = fs::read(out.path().join("changed")).unwrap();
    let listed: Vec<&[u8]> = changed
        .split(|byte| *byte == 0)
        .filter(|entry| !entry.is_empty())
        .collect();
    let expected = [
        format!("{}/etc/plain", root.path().display()),
        format!("{}/etc/two\nlines", root.path().display()),
    ];
    assert_eq!(listed.len(), 2, "{changed:?}");
    for path in &expected {
        assert!(listed.contains(&path.as_bytes()), "{path:?} in {changed:?}");
    }
    assert_eq!(
        fs::read(out.path().join("removed")).unwrap(),
        b"",
        "nothing removed: an empty file"
    );
}
