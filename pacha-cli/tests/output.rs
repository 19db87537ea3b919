//! What people read and scripts parse: the text and `--json` output of push, diff, log, show
//! and status, and a command's error under `--json`, as insta snapshots. Revisions, times,
//! durations and temp folders are normalised; everything else must match exactly.

use std::path::Path;

use crate::common::run_in;

/// A copy of the demo master (two `transport: local` nodes and a meta node).
fn demo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fixtures::copy_master("demo", tmp.path()).unwrap();
    tmp
}

/// Runs pacha in `master`; its exit code and stdout, normalised.
fn run(master: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = run_in(master, args);
    assert!(code == 0 || code == 2, "pacha {args:?} exited {code}: {stderr}");
    format!("exit {code}\n{stdout}")
}

macro_rules! snapshot {
    ($name:expr, $master:expr, $text:expr) => {
        let master = $master.display().to_string();
        insta::with_settings!({filters => vec![
            (master.as_str(), "[MASTER]"),
            (r"\b[0-9a-f]{40}\b", "[REV]"),
            (r"\b[0-9a-f]{12}\b", "[REV12]"),
            (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "[TIME]"),
            (r#""timestamp": \d+"#, r#""timestamp": [TS]"#),
            (r#""(connect|inspect|apply|total)_ms": \d+"#, r#""${1}_ms": [MS]"#),
            (r"\(\d+\.\d\d s\)", "([S])"),
            (r"\[TIME\]  [^<\n]* <[^>\n]*>  ", "[TIME]  [AUTHOR]  "),
            (r#""author": "[^"]*""#, r#""author": "[AUTHOR]""#),
        ]}, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

#[test]
fn push_diff_log_show_and_status_read_as_documented() {
    let tmp = demo();
    let master = tmp.path();
    snapshot!("push_text", master, run(master, &["push", "webservers", "production"]));
    snapshot!(
        "push_again_json",
        master,
        run(master, &["push", "webservers", "production", "--json"])
    );

    fixtures::write(
        master,
        "templates/motd/default/motd.hbs",
        "{{motd_banner}}\nnode {{pacha.node}}\n",
    );
    snapshot!("diff_text", master, run(master, &["diff", "web1", "production"]));
    snapshot!(
        "diff_json",
        master,
        run(master, &["diff", "web1", "production", "--json"])
    );
    snapshot!(
        "dry_run_text",
        master,
        run(master, &["push", "web1", "production", "--dry-run"])
    );
    snapshot!(
        "push_one_json",
        master,
        run(master, &["push", "web1", "production", "--json"])
    );

    snapshot!("log_text", master, run(master, &["log", "web1"]));
    snapshot!("log_json", master, run(master, &["log", "web1", "--json"]));
    snapshot!("show_text", master, run(master, &["show", "web1"]));
    snapshot!("show_json", master, run(master, &["show", "web1", "--json"]));

    std::fs::write(master.join("nodes-root/web2/etc/motd"), "edited by hand\n").unwrap();
    snapshot!("status_text", master, run(master, &["status"]));
    snapshot!("status_json", master, run(master, &["status", "--json"]));
}

#[test]
fn an_error_under_json_is_a_document_with_kind_message_and_hints() {
    let tmp = demo();
    let master = tmp.path();
    let (code, stdout, stderr) = run_in(master, &["push", "wbe1", "production", "--json"]);
    assert_eq!(code, 1);
    let error: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(error["error"]["kind"], "unknown-node");
    assert!(error["error"]["hints"][0].as_str().unwrap().contains("pacha nodes"));
    snapshot!("error_json", master, stdout);
    snapshot!("error_text", master, stderr);

    let nowhere = tempfile::tempdir().unwrap();
    let (code, stdout, _) = crate::common::outcome(
        crate::common::pacha()
            .current_dir(nowhere.path())
            .args(["log", "web1", "--json"]),
    );
    assert_eq!(code, 1);
    let error: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(error["error"]["kind"], "no-master");
    assert!(
        error["error"]["hints"][0].as_str().unwrap().contains("--master"),
        "the CLI, not the library, names its flags: {error}"
    );

    let missing = nowhere.path().join("no-master-here");
    let (code, stdout, _) = crate::common::outcome(crate::common::pacha().current_dir(nowhere.path()).args([
        "--json",
        "pull",
        "web1",
        "production",
        "--from",
        missing.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    let error: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(error["error"]["kind"], "no-master", "{error}");
    assert!(
        error["error"]["message"].as_str().unwrap().contains("no-master-here"),
        "a missing --from folder is named: {error}"
    );
}
