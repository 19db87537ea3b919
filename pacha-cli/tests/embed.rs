//! Another Rust program embeds pacha the way the CLI does: the four programs of
//! `pacha-cli/examples/`, each a few lines over the library crates alone, give what the CLI
//! gives (a push through the library is recorded exactly as `pacha push` records it).

use std::path::{Path, PathBuf};

use crate::common::{outcome, run_in};

/// The built example `name` (cargo builds examples with the tests).
fn example(name: &str) -> assert_cmd::Command {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join("examples").join(name);
    assert!(path.is_file(), "{} is not built", path.display());
    assert_cmd::Command::new(path)
}

fn run_example(name: &str, args: &[&str]) -> (i32, String, String) {
    outcome(example(name).args(args))
}

fn copy_demo() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    fixtures::copy_master("demo", tmp.path()).unwrap();
    let dir = tmp.path().display().to_string();
    (tmp, dir)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

/// Every file below `dir`, with its contents and mode.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
                files.push((
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                    mode,
                ));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn each_example_is_at_most_25_lines_over_the_library_crates_alone() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["embed_render", "embed_push", "embed_rollback", "embed_pull"] {
        let text = std::fs::read_to_string(examples.join(format!("{name}.rs"))).unwrap();
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("//"))
            .count();
        assert!(lines <= 25, "{name} has {lines} lines");
        assert!(!text.contains("pacha_cli"), "{name} uses the CLI crate");
    }
}

#[test]
fn embed_render_writes_what_pacha_render_out_writes() {
    let (_tmp, master) = copy_demo();
    let scratch = tempfile::tempdir().unwrap();
    let from_cli = scratch.path().join("cli");
    let from_example = scratch.path().join("example");
    let (code, _, stderr) = run_in(
        Path::new(&master),
        &[
            "render",
            "webservers",
            "production",
            "--out",
            from_cli.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run_example(
        "embed_render",
        &[&master, "webservers", "production", from_example.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    let written = tree(&from_example);
    assert!(written.len() > 4, "{written:?}");
    assert_eq!(written, tree(&from_cli));
}

#[test]
fn a_push_and_a_rollback_through_the_library_are_recorded_as_the_cli_records_them() {
    let (_tmp, master) = copy_demo();
    let (code, stdout, stderr) = run_example("embed_push", &[&master, "webservers", "production"]);
    assert_eq!((code, stdout.as_str()), (0, "web1 changed\nweb2 changed\n"), "{stderr}");
    let site = std::fs::read_to_string(Path::new(&master).join("nodes-root/web2/etc/nginx/sites/site.conf")).unwrap();
    assert!(site.contains("server_name web2.example.com;"), "{site}");

    let (code, log, _) = run_in(Path::new(&master), &["log", "web1", "--json"]);
    assert_eq!(code, 0);
    let log = json(&log);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["event"], "push");
    assert_eq!(entries[0]["state"], "production");
    let first = entries[0]["revision"].as_str().unwrap().to_owned();
    let (code, status, _) = run_in(Path::new(&master), &["status", "webservers"]);
    assert_eq!(code, 0, "in sync after the library's push: {status}");

    let (code, stdout, _) = run_example("embed_push", &[&master, "webservers", "production"]);
    assert_eq!((code, stdout.as_str()), (0, "web1 unchanged\nweb2 unchanged\n"));

    let motd = Path::new(&master).join("nodes-root/web1/etc/motd");
    let original = std::fs::read(&motd).unwrap();
    fixtures::write(
        Path::new(&master),
        "templates/motd/default/motd.hbs",
        "changed for {{pacha.node}}\n",
    );
    let (code, stdout, _) = run_example("embed_push", &[&master, "web1", "production"]);
    assert_eq!((code, stdout.as_str()), (0, "web1 changed\n"));
    assert_eq!(std::fs::read_to_string(&motd).unwrap(), "changed for web1\n");

    let (code, stdout, stderr) = run_example("embed_rollback", &[&master, "web1", &first[..10]]);
    assert_eq!(code, 0, "{stderr}");
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words[..2], ["web1", "changed"], "{stdout}");
    assert_eq!(std::fs::read(&motd).unwrap(), original);
    let (_, log, _) = run_in(Path::new(&master), &["log", "web1", "--json"]);
    let log = json(&log);
    assert_eq!(log["entries"][0]["event"], "rollback");
    assert_eq!(log["entries"][0]["revision"], words[2]);
    assert_eq!(log["entries"].as_array().unwrap().len(), 3);
}

#[test]
fn embed_pull_applies_a_local_masters_plan_here_and_records_it_there() {
    let (_tmp, master) = copy_demo();
    let (code, stdout, stderr) = run_example("embed_pull", &[&master, "web1", "production"]);
    assert_eq!((code, stdout.as_str()), (0, "web1 changed\n"), "{stderr}");
    assert!(Path::new(&master).join("nodes-root/web1/etc/motd").is_file());
    let (_, log, _) = run_in(Path::new(&master), &["log", "web1", "--json"]);
    let log = json(&log);
    assert_eq!(log["entries"][0]["event"], "pull", "{log}");
    let (code, stdout, _) = run_example("embed_pull", &[&master, "web1", "production"]);
    assert_eq!((code, stdout.as_str()), (0, "web1 unchanged\n"));
    let (code, _, stderr) = run_example("embed_pull", &[&master, "nobody", "production"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("may only act for node") || stderr.contains("unknown node"),
        "{stderr}"
    );
}
