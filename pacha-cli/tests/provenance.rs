//! Provenance through the binary, over the test sshd: `pacha blame` names the template line and
//! the layer of each variable; `pacha capture --propose` turns hand edits into master changes.

use std::fs;
use std::process::Command;

use crate::common::SshMaster;

/// A master where one line mixes literal text with a variable of the node and one of a meta
/// node, beside a list expanded by `#each`, a file copied as it is and one holding a secret.
fn master() -> SshMaster {
    let master = SshMaster::new(&["web1"]);
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    master.write(
        "pacha.yaml",
        &format!("{settings}secrets:\n  api_key: s3cr3t-api-k3y\n"),
    );
    master.write("templates/site/app.yaml", "dest: /etc/site\n");
    master.write(
        "templates/site/default/site.conf.hbs",
        "# {{greeting}}\nlisten {{port}} tier={{tier}};\nworkers 4;\n{{#each names}}\nalias {{this}};\n{{/each}}\nend\n",
    );
    master.write("templates/site/default/key.conf.hbs", "user web\nkey {{api_key}}\n");
    master.write("templates/site/default/plain.conf", "copied = yes\n");
    master.write(
        "nodes/web/web.conf",
        "# the web tier\ninclude_nodes: [web1]\nvars:\n  tier: gold\n",
    );
    master.add_to_node("web1", "vars:\n  names: [a.example, b.example]\n  port: 8080\n");
    let node = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write(
        "nodes/web1/web1.conf",
        &node.replace("apps: [motd]", "apps: [motd, site]"),
    );
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    master
}

fn line_of(master: &SshMaster, file: &str, needle: &str) -> usize {
    fs::read_to_string(master.dir.path().join(file))
        .unwrap()
        .lines()
        .position(|line| line.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn blame_names_the_template_line_and_the_layer_of_each_variable() {
    let master = master();
    let (code, json, stderr) = master.run(&["--json", "blame", "web1", "/etc/site/site.conf"]);
    assert_eq!(code, 0, "{stderr}");
    let blame: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(blame["node"], "web1");
    assert_eq!(blame["path"], "/etc/site/site.conf");
    let lines = blame["lines"].as_array().unwrap();
    let texts: Vec<&str> = lines.iter().map(|line| line["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "# hello",
            "listen 8080 tier=gold;",
            "workers 4;",
            "alias a.example;",
            "alias b.example;",
            "end"
        ]
    );
    let mixed = &lines[1];
    assert_eq!(mixed["number"], 2);
    assert_eq!(mixed["template"], "templates/site/default/site.conf.hbs");
    assert_eq!(mixed["template_line"], 2);
    let vars = mixed["vars"].as_array().unwrap();
    assert_eq!(vars.len(), 2, "{vars:?}");
    assert_eq!(vars[0]["name"], "port");
    assert_eq!(vars[0]["set_in"], "nodes/web1/web1.conf");
    assert_eq!(vars[0]["line"], line_of(&master, "nodes/web1/web1.conf", "port: 8080"));
    assert_eq!(vars[1]["name"], "tier");
    assert_eq!(vars[1]["set_in"], "nodes/web/web.conf");
    assert_eq!(vars[1]["line"], 4);
    assert_eq!(lines[0]["vars"][0]["set_in"], "pacha.yaml");
    assert_eq!(
        lines[0]["vars"][0]["line"],
        line_of(&master, "pacha.yaml", "greeting: hello")
    );
    // The #each lines come from its block; the literal line after it from its own line.
    assert_eq!(lines[3]["template_line"], 4);
    assert_eq!(lines[3]["vars"][0]["name"], "names");
    assert_eq!(lines[5]["template_line"], 7);

    let (code, text, stderr) = master.run(&["blame", "web1", "/etc/site/site.conf", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("from templates/site/default/site.conf.hbs"), "{text}");
    assert!(
        text.lines().any(|line| line.contains("listen 8080 tier=gold;")
            && line.contains("port nodes/web1/web1.conf:")
            && line.contains("tier nodes/web/web.conf:4")),
        "{text}"
    );

    // A line printing a secret reads <redacted>; the value is never shown.
    let (code, json, stderr) = master.run(&["--json", "blame", "web1", "/etc/site/key.conf"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!json.contains("s3cr3t"), "{json}");
    let blame: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(blame["lines"][0]["text"], "user web");
    assert_eq!(blame["lines"][1]["text"], "<redacted>");
    assert_eq!(blame["lines"][1]["vars"][0]["set_in"], "pacha.yaml");
    assert_eq!(blame["lines"][1]["vars"][0]["secret"], true);
    let (_, text, _) = master.run(&["blame", "web1", "/etc/site/key.conf"]);
    assert!(text.contains("<redacted>") && !text.contains("s3cr3t"), "{text}");

    // A copied file, a file no template places, an unknown node.
    let (code, text, _) = master.run(&["blame", "web1", "/etc/site/plain.conf"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("copied as it is") && text.contains("copied = yes"),
        "{text}"
    );
    let (code, _, stderr) = master.run(&["blame", "web1", "/etc/nothing"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("gets no file /etc/nothing"), "{stderr}");
    let (code, _, stderr) = master.run(&["blame", "wbe1", "/etc/motd"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("did you mean \"web1\""), "{stderr}");
}

#[test]
fn propose_turns_hand_edits_into_master_changes_and_lists_conflicts() {
    let master = master();
    let root = master.root("web1");
    let site = root.join("etc/site/site.conf");
    let edited = fs::read_to_string(&site)
        .unwrap()
        .replace("workers 4;", "workers 16;\nkeepalive on;")
        .replace("listen 8080", "listen 8443")
        .replace("tier=gold", "tier=platinum")
        .replace("alias b.example;", "alias c.example;");
    fs::write(&site, edited).unwrap();
    fs::write(root.join("etc/site/plain.conf"), "copied = no\n").unwrap();
    fs::write(root.join("etc/site/key.conf"), "user www\nkey s3cr3t-api-k3y\n").unwrap();
    // A secret value typed by hand into a file that holds none is never put into a template.
    let motd = root.join("etc/motd");
    let mut text = fs::read_to_string(&motd).unwrap();
    text.push_str("token s3cr3t-api-k3y\n");
    fs::write(&motd, text).unwrap();
    let before = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    // A change of the master not pushed yet is not a hand edit: it is left alone.
    let template = master.dir.path().join("templates/site/default/site.conf.hbs");
    let text = fs::read_to_string(&template).unwrap();
    fs::write(&template, text.replace("end\n", "fin\n")).unwrap();

    let (code, patch, stderr) = master.run(&["capture", "web1", "--propose"]);
    assert_eq!(code, 0, "{stderr}");
    // Nothing was recorded or changed by proposing.
    assert_eq!(
        fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap(),
        before
    );
    let (_, log, _) = master.run(&["log", "web1"]);
    assert_eq!(log.lines().filter(|line| line.contains("capture")).count(), 0, "{log}");
    // Literal text → the template; the node's port → the node file; the meta node's tier → the meta node.
    assert!(
        patch.contains("diff --git a/templates/site/default/site.conf.hbs"),
        "{patch}"
    );
    assert!(patch.contains("-workers 4;\n+workers 16;\n+keepalive on;\n"), "{patch}");
    assert!(patch.contains("-  port: 8080\n+  port: 8443\n"), "{patch}");
    assert!(patch.contains("diff --git a/nodes/web/web.conf"), "{patch}");
    assert!(patch.contains("-  tier: gold\n+  tier: platinum\n"), "{patch}");
    // The #each line, the copied file and the secret-bearing file are conflicts.
    assert!(stderr.contains("conflict: /etc/site/site.conf:6:"), "{stderr}");
    assert!(stderr.contains("+alias c.example;"), "{stderr}");
    assert!(
        stderr.contains("conflict: /etc/site/plain.conf: templates/site/default/plain.conf is not a template"),
        "{stderr}"
    );
    assert!(
        stderr.contains("conflict: /etc/site/key.conf: it holds secrets"),
        "{stderr}"
    );
    assert!(
        stderr.contains("conflict: /etc/motd:2: the edit holds a secret value"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t") && !patch.contains("s3cr3t"), "{stderr}");
    assert!(!patch.contains("templates/motd"), "{patch}");
    assert!(
        stderr.contains("left alone: /etc/site/site.conf:7 differs because the master changed"),
        "{stderr}"
    );
    assert!(!patch.contains("+end") && !patch.contains("-fin"), "{patch}");
    let patch_file = master.dir.path().join("proposal.diff");
    fs::write(&patch_file, &patch).unwrap();
    let status = Command::new("git")
        .args(["apply", "--check", "proposal.diff"])
        .current_dir(master.dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "git apply --check takes the proposal");
    fs::remove_file(&patch_file).unwrap();

    let (code, json, stderr) = master.run(&["--json", "capture", "web1", "--propose"]);
    assert_eq!(code, 0, "{stderr}");
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(view["patch"], patch.as_str());
    assert_eq!(view["written"], false);
    assert_eq!(view["conflicts"].as_array().unwrap().len(), 4, "{json}");
    assert!(!json.contains("s3cr3t"), "{json}");
    assert_eq!(
        view["changes"],
        serde_json::json!([
            "nodes/web/web.conf",
            "nodes/web1/web1.conf",
            "templates/site/default/site.conf.hbs"
        ])
    );

    // --write makes the changes; the proposed hunks are then no change, the conflicts still are.
    let (code, text, stderr) = master.run(&["capture", "web1", "--propose", "--write"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("changed nodes/web1/web1.conf"), "{text}");
    let (code, diff, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 2, "the conflicts still differ: {diff}{stderr}");
    for resolved in ["workers", "keepalive", "listen", "tier"] {
        assert!(
            !diff
                .lines()
                .any(|line| (line.starts_with('+') || line.starts_with('-')) && line.contains(resolved)),
            "{resolved} is resolved: {diff}"
        );
    }
    assert!(diff.contains("alias c.example;"), "{diff}");
    assert!(diff.contains("copied = no"), "{diff}");
    assert!(
        diff.contains("+fin"),
        "the master's own change is still to push: {diff}"
    );
    // Proposing again proposes nothing new.
    let (code, patch, _) = master.run(&["capture", "web1", "--propose"]);
    assert_eq!(code, 0);
    assert!(patch.is_empty(), "{patch}");
}
