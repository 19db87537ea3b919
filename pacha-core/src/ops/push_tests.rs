//! Push orchestration against in-memory nodes, with faults injected.

use std::sync::Arc;

use super::*;
use crate::edges::connection::FileStat;
use crate::edges::report::Quiet;
use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::node::TransportKind;
use crate::model::settings::SshSettings;
use crate::model::target::Target;
use crate::testing::{Memory, MemoryFile};

/// A push that records nothing (the engine's tests cover recording).
fn push(plans: &[Plan], connector: &dyn Connector, options: &PushOptions, reporter: &dyn Reporter) -> Vec<NodeReport> {
    push_plans(plans, connector, options, reporter, &NoBooks)
}

fn plan(node: &str, files: &[(&str, &str)]) -> Plan {
    let script = |stage, name: &str| PlannedScript {
        stage,
        phase: "p".into(),
        name: name.into(),
        source: format!("scripts/{stage}/p/{name}"),
        content: Arc::from(&b"#!/bin/sh\n"[..]),
        sha256: ContentHash::of(b"#!/bin/sh\n"),
        handles: Vec::new(),
    };
    Plan {
        node: node.into(),
        state: "production".into(),
        target: Target {
            transport: TransportKind::Local,
            host: format!("{node}.example.com"),
            port: None,
            user: None,
            root: "/".into(),
            ssh: SshSettings::default(),
        },
        files: files
            .iter()
            .map(|(path, content)| PlannedFile {
                destination: NodePath::parse(path).unwrap(),
                app: "app".into(),
                source: format!("templates/app/default{path}"),
                owner: None,
                group: None,
                mode: Mode::FILE,
                dir_mode: Mode::EXECUTABLE,
                content: Arc::from(content.as_bytes()),
                sha256: ContentHash::of(content.as_bytes()),
                secret: false,
                validate: None,
            })
            .collect(),
        scripts: vec![script(Stage::Pre, "10-pre"), script(Stage::Post, "10-post")],
        secrets: Vec::new(),
        absent: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
        script_timeout: None,
        keep_on_failure: false,
        expect: None,
        confirm_ssh: None,
    }
}

fn memory(nodes: &[&str]) -> Memory {
    Memory::with_nodes(nodes)
}

fn options() -> PushOptions {
    PushOptions {
        jobs: 4,
        ..PushOptions::default()
    }
}

#[test]
fn first_push_places_and_second_changes_nothing() {
    let memory = memory(&["a", "b"]);
    let plans = [
        plan("a", &[("/etc/x", "1"), ("/etc/y", "2")]),
        plan("b", &[("/etc/x", "3")]),
    ];
    let reports = push(&plans, &memory, &options(), &Quiet);
    assert_eq!(
        reports.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [Outcome::Changed, Outcome::Changed]
    );
    assert_eq!(reports[0].changes.len(), 2);
    assert_eq!(memory.0.lock().unwrap()["a"].ran, ["pre/p/10-pre", "post/p/10-post"]);

    let again = push(&plans, &memory, &options(), &Quiet);
    assert!(
        again
            .iter()
            .all(|r| r.outcome == Outcome::Unchanged && r.changes.is_empty())
    );
    let nodes = memory.0.lock().unwrap();
    assert_eq!(nodes["a"].applies, 1, "an unchanged node gets no write and no script");
    assert_eq!(nodes["a"].ran.len(), 2);
}

#[test]
fn only_changed_files_are_placed_and_mode_changes_count() {
    let memory = memory(&["a"]);
    let mut p = plan("a", &[("/etc/x", "1"), ("/etc/y", "2")]);
    push(std::slice::from_ref(&p), &memory, &options(), &Quiet);
    p.files[1].mode = Mode::parse("0600").unwrap();
    let reports = push(&[p], &memory, &options(), &Quiet);
    assert_eq!(reports[0].changes.len(), 1);
    assert_eq!(reports[0].changes[0].kind, ChangeKind::Attributes);
    assert_eq!(
        reports[0].changes[0].mode,
        Some((Mode::FILE, Mode::parse("0600").unwrap()))
    );
}

#[test]
fn a_failing_pre_script_places_nothing() {
    let memory = memory(&["a"]);
    memory
        .0
        .lock()
        .unwrap()
        .get_mut("a")
        .unwrap()
        .failing_scripts
        .push("pre/p/10-pre".into());
    let reports = push(&[plan("a", &[("/etc/x", "1")])], &memory, &options(), &Quiet);
    assert_eq!(reports[0].outcome, Outcome::Failed);
    assert!(
        reports[0]
            .error
            .as_ref()
            .map(ToString::to_string)
            .as_deref()
            .unwrap()
            .contains("pre/p/10-pre failed with exit status 3 (nothing was placed)")
    );
    assert!(memory.0.lock().unwrap()["a"].files.is_empty());
}

#[test]
fn post_scripts_left_due_run_on_the_next_push() {
    let memory = memory(&["a"]);
    memory
        .0
        .lock()
        .unwrap()
        .get_mut("a")
        .unwrap()
        .failing_scripts
        .push("post/p/10-post".into());
    let p = plan("a", &[("/etc/x", "1")]);
    let first = push(std::slice::from_ref(&p), &memory, &options(), &Quiet);
    assert_eq!(first[0].outcome, Outcome::Failed);
    memory.0.lock().unwrap().get_mut("a").unwrap().failing_scripts.clear();

    let second = push(std::slice::from_ref(&p), &memory, &options(), &Quiet);
    assert_eq!(second[0].outcome, Outcome::Changed);
    assert!(second[0].changes.is_empty(), "files were already placed");
    assert_eq!(
        second[0].pending_post.as_deref(),
        Some(&[NodePath::parse("/etc/x").unwrap()][..])
    );
    let ran = memory.0.lock().unwrap()["a"].ran.clone();
    assert_eq!(
        ran.as_slice(),
        ["pre/p/10-pre", "post/p/10-post", "post/p/10-post"],
        "no pre script for a pending-only run"
    );

    let third = push(&[p], &memory, &options(), &Quiet);
    assert_eq!(third[0].outcome, Outcome::Unchanged);
}

#[test]
fn an_unknown_host_key_anywhere_stops_every_node() {
    let memory = memory(&["a", "b", "c"]);
    memory.0.lock().unwrap().get_mut("b").unwrap().unknown_host_key = true;
    memory.0.lock().unwrap().get_mut("c").unwrap().unknown_host_key = true;
    let plans = [
        plan("a", &[("/etc/x", "1")]),
        plan("b", &[("/etc/x", "1")]),
        plan("c", &[("/etc/x", "1")]),
    ];
    let reports = push(&plans, &memory, &options(), &Quiet);
    assert!(reports.iter().all(|r| r.outcome == Outcome::Failed));
    assert!(
        reports[0]
            .error
            .as_ref()
            .map(ToString::to_string)
            .as_deref()
            .unwrap()
            .contains("host key verification failed for b, c")
    );
    assert!(
        reports[1..]
            .iter()
            .all(|report| report.error.as_ref().is_some_and(|err| err.kind() == "host-key"))
    );
    assert_eq!(memory.0.lock().unwrap()["a"].applies, 0);
}

#[test]
fn an_unreachable_node_does_not_stop_the_others() {
    let memory = memory(&["a", "b", "c"]);
    memory.0.lock().unwrap().get_mut("b").unwrap().unreachable = true;
    let plans = [
        plan("a", &[("/etc/x", "1")]),
        plan("b", &[("/etc/x", "1")]),
        plan("c", &[("/etc/x", "1")]),
    ];
    let reports = push(&plans, &memory, &options(), &Quiet);
    let outcomes: Vec<Outcome> = reports.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Changed, Outcome::Failed, Outcome::Changed]);
    assert_eq!(
        reports[1].error.as_ref().map(ToString::to_string).as_deref(),
        Some("b.example.com: cannot connect: Connection refused")
    );
}

#[test]
fn dry_run_writes_nothing_and_reads_contents_for_diffs() {
    let memory = memory(&["a"]);
    let p = plan("a", &[("/etc/x", "new"), ("/etc/y", "2")]);
    memory.0.lock().unwrap().get_mut("a").unwrap().files.insert(
        NodePath::parse("/etc/x").unwrap(),
        MemoryFile {
            content: b"old".to_vec(),
            mode: Mode::FILE,
            owner: "root".into(),
        },
    );
    let options = PushOptions {
        dry_run: true,
        read_contents: true,
        ..options()
    };
    let reports = push(&[p], &memory, &options, &Quiet);
    assert_eq!(reports[0].outcome, Outcome::WouldChange);
    let x = reports[0]
        .changes
        .iter()
        .find(|c| c.destination.as_str() == "/etc/x")
        .unwrap();
    assert_eq!(x.kind, ChangeKind::Update);
    assert_eq!(x.before.as_deref(), Some(&b"old"[..]));
    assert_eq!(memory.0.lock().unwrap()["a"].applies, 0);
}

#[test]
fn force_places_everything_and_runs_every_script() {
    let memory = memory(&["a"]);
    let p = plan("a", &[("/etc/x", "1")]);
    push(std::slice::from_ref(&p), &memory, &options(), &Quiet);
    let reports = push(
        &[p],
        &memory,
        &PushOptions {
            force: true,
            ..options()
        },
        &Quiet,
    );
    assert_eq!(reports[0].outcome, Outcome::Changed);
    assert_eq!(memory.0.lock().unwrap()["a"].ran.len(), 4);
}

#[test]
fn a_folder_where_a_file_goes_is_refused() {
    let memory = memory(&["a"]);
    memory
        .0
        .lock()
        .unwrap()
        .get_mut("a")
        .unwrap()
        .dirs
        .push(NodePath::parse("/etc/x").unwrap());
    let reports = push(&[plan("a", &[("/etc/x", "1")])], &memory, &options(), &Quiet);
    assert_eq!(reports[0].outcome, Outcome::Failed);
    assert!(
        matches!(&reports[0].error, Some(NodeError::NotAFile { path }) if path.as_str() == "/etc/x"),
        "{:?}",
        reports[0].error
    );
    assert_eq!(memory.0.lock().unwrap()["a"].applies, 0);
}

#[test]
fn a_file_where_a_folder_goes_is_refused() {
    let memory = memory(&["a"]);
    memory.0.lock().unwrap().get_mut("a").unwrap().files.insert(
        NodePath::parse("/srv/data").unwrap(),
        MemoryFile {
            content: b"x".to_vec(),
            mode: Mode::FILE,
            owner: "root".into(),
        },
    );
    let mut plan = plan("a", &[("/etc/x", "1")]);
    plan.dirs.push(PlannedDir {
        path: NodePath::parse("/srv/data").unwrap(),
        owner: None,
        group: None,
        mode: Mode::EXECUTABLE,
        app: "app".into(),
    });
    let reports = push(&[plan], &memory, &options(), &Quiet);
    assert_eq!(reports[0].outcome, Outcome::Failed);
    assert!(
        matches!(&reports[0].error, Some(NodeError::NotAFile { path }) if path.as_str() == "/srv/data"),
        "{:?}",
        reports[0].error
    );
    assert_eq!(memory.0.lock().unwrap()["a"].applies, 0);
    assert_eq!(memory.content("a", "/srv/data").as_deref(), Some(&b"x"[..]));
}

#[test]
fn owners_compare_by_name_or_number() {
    let mut p = plan("a", &[("/etc/x", "1")]);
    p.files[0].owner = Some("0".into());
    let stat = FileStat {
        sha256: p.files[0].sha256,
        size: 1,
        mode: Mode::FILE,
        uid: 0,
        gid: 0,
        owner: "root".into(),
        group: "root".into(),
    };
    assert!(changes(&p, &[LiveFile::File(stat.clone())]).is_empty());
    p.files[0].owner = Some("www-data".into());
    let found = changes(&p, &[LiveFile::File(stat)]);
    assert_eq!(found[0].owner, Some(("root".into(), "www-data".into())));
    assert_eq!(
        changes(&p, &[LiveFile::Symlink("/elsewhere".into())])[0].kind,
        ChangeKind::ReplaceSymlink
    );
}

#[test]
fn a_plan_printed_for_debugging_shows_no_secret() {
    let mut plan = plan("a", &[("/etc/app.conf", "password = hunter2\n")]);
    plan.files[0].secret = true;
    plan.secrets.push("hunter2".into());
    let printed = format!("{plan:?} {:#?}", plan.files[0]);
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.contains("<1 redacted>") && printed.contains("<19 bytes>"),
        "{printed}"
    );
}
