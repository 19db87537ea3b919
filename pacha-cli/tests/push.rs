//! `push` and `diff` through the binary against a real sshd.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::SshMaster;

#[test]
fn push_then_push_again_then_diff() {
    let master = SshMaster::new(&["web1", "web2"]);
    master.write("nodes/webservers/webservers.conf", "include_nodes: [web2, web1]\n");
    let (code, stdout, stderr) = master.run(&["push", "webservers", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}\n{}", master.sshd.log());
    // Output grouped per node, in the expanded order.
    let web2 = stdout.find("web2 changed").unwrap();
    let web1 = stdout.find("web1 changed").unwrap();
    assert!(web2 < web1, "{stdout}");
    assert!(stdout.contains("reloaded web1"), "{stdout}");
    assert!(stdout.contains("2 nodes: 2 changed"), "{stdout}");
    let motd = master.root("web1").join("etc/motd");
    assert_eq!(fs::read_to_string(&motd).unwrap(), "hello from web1 (production)\n");
    let mtime = fs::metadata(&motd).unwrap().modified().unwrap();
    let masters = ssh_master_pids(&master.dir.path().join("run"));
    assert_eq!(masters.len(), 2, "one kept connection per node");

    let (code, stdout, _) = master.run(&["push", "webservers", "production", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        json["summary"],
        serde_json::json!({"changed": 0, "unchanged": 2, "would_change": 0, "failed": 0, "rolled_back": 0, "refused": 0, "skipped": 0})
    );
    assert_eq!(json["nodes"][0]["node"], "web2");
    assert!(
        json["nodes"][0]["scripts"].as_array().unwrap().is_empty(),
        "no script runs on an unchanged node"
    );
    assert_eq!(
        fs::metadata(&motd).unwrap().modified().unwrap(),
        mtime,
        "an unchanged push writes nothing"
    );

    // Nothing to diff: exit 0. A hand edit: exit 2 with a unified diff.
    let (code, _, _) = master.run(&["diff", "webservers", "production"]);
    assert_eq!(code, 0);
    fs::write(&motd, "hello from web1 (production)\nedited by hand\n").unwrap();
    fs::set_permissions(
        master.root("web1").join("etc/app/app.conf"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, stdout, _) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("-edited by hand"), "{stdout}");
    assert!(stdout.contains("/etc/app/app.conf (mode 0600 -> 0644)"), "{stdout}");
    let (code, stdout, _) = master.run(&["push", "web1", "production", "--dry-run", "--json"]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"][0]["outcome"], "would-change");
    assert_eq!(
        fs::read_to_string(&motd).unwrap(),
        "hello from web1 (production)\nedited by hand\n",
        "a dry run writes nothing"
    );

    let (code, _, _) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0);
    assert_eq!(fs::read_to_string(&motd).unwrap(), "hello from web1 (production)\n");

    // --force runs the scripts although nothing changed.
    let (code, stdout, _) = master.run(&["push", "web1", "production", "--force"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("reloaded web1"), "{stdout}");

    // disconnect closes the kept connections.
    let (code, stdout, _) = master.run(&["disconnect"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, "closed 2 kept connections\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(ssh_master_pids(&master.dir.path().join("run")).is_empty());
}

#[test]
fn an_unreachable_node_fails_alone() {
    let master = SshMaster::new(&["web1", "web2"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    master.write(
        "nodes/down/down.conf",
        &format!(
            "host: 127.0.0.1\nport: {port}\nroot: {}\napps: [motd]\n",
            master.root("down").display()
        ),
    );
    master.write("nodes/all/all.conf", "include_nodes: [web1, down, web2]\n");
    let (code, stdout, stderr) = master.run(&["push", "all", "production"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("down FAILED"), "{stdout}");
    assert!(
        stdout.contains("127.0.0.1: cannot connect:") && stdout.contains("Connection refused"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 3 nodes failed: down"), "{stderr}");
    assert!(master.root("web1").join("etc/motd").exists());
    assert!(master.root("web2").join("etc/motd").exists());
}

#[test]
fn a_render_error_in_one_node_touches_no_node() {
    let master = SshMaster::new(&["web1", "web2"]);
    master.write("templates/broken/default/x.hbs", "{{undefined_thing}}\n");
    master.write(
        "nodes/web2/web2.conf",
        &format!(
            "host: web2\nroot: {}\napps: [motd, broken]\n",
            master.root("web2").display()
        ),
    );
    master.write("nodes/all/all.conf", "include_nodes: [web1, web2]\n");
    let (code, stdout, stderr) = master.run(&["push", "all", "production"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("templates/broken/default/x.hbs:1:1: undefined variable `undefined_thing`"),
        "{stderr}"
    );
    assert!(!master.root("web1").exists(), "web1 must not be touched");
    assert!(!master.root("web2").exists());
}

#[test]
fn an_unknown_host_key_stops_every_node_and_names_them_all() {
    let master = SshMaster::new(&["web1", "web2", "web3"]);
    // web2 and web3 are reached through an ssh_config whose known_hosts file is empty.
    let empty = master.dir.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let config = master
        .sshd
        .config_without_known_hosts(&master.dir.path().join("strangers_config"), &["web2", "web3"]);
    for node in ["web2", "web3"] {
        master.add_to_node(
            node,
            &format!(
                "ssh:\n  config_file: {}\n  known_hosts: {}\n",
                config.display(),
                empty.display()
            ),
        );
    }
    master.write("nodes/all/all.conf", "include_nodes: [web1, web2, web3]\n");
    let (code, stdout, _) = master.run(&["push", "all", "production"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("host key verification failed for web2, web3 (nothing was placed on any node)"),
        "{stdout}"
    );
    assert!(!master.root("web1").exists(), "nothing is placed anywhere");
    // The way out is said: the exact ssh-keyscan, or accept-new.
    let (code, stdout, stderr) = master.run(&["push", "web2", "production"]);
    assert_eq!(code, 1);
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains(&format!("ssh-keyscan -p {} 127.0.0.1 >> KNOWN_HOSTS", master.sshd.port)),
        "{said}"
    );
    assert!(said.contains("host_keys: accept-new"), "{said}");
}

#[test]
fn nodes_on_two_sshd_instances() {
    let master = SshMaster::new(&["web1"]);
    let other = fixtures::Sshd::start(&["far1"]);
    master.add_to_node(
        "far1",
        &format!(
            "ssh:\n  config_file: {}\n  known_hosts: {}\n",
            other.config.display(),
            other.known_hosts.display()
        ),
    );
    master.write("nodes/both/both.conf", "include_nodes: [web1, far1]\n");
    let (code, stdout, stderr) = master.run(&["push", "both", "production", "--jobs", "2"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        fs::read_to_string(master.root("far1").join("etc/motd")).unwrap(),
        "hello from far1 (production)\n"
    );
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/motd")).unwrap(),
        "hello from web1 (production)\n"
    );
    let _ = master.run(&["disconnect"]);
}

/// Pids of the ssh master connections kept under a control folder.
fn ssh_master_pids(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (text.contains(&needle) && text.contains("\0-M\0")).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// A user who is not root can push too: when `<root>/var/lib` is not theirs, the node's state
/// (lock, due post scripts) goes to their own state folder. Switching users needs root, as
/// the suite runs in CI: anywhere else this test fails rather than pass without running.
#[test]
fn a_user_who_is_not_root_pushes_with_state_in_their_own_folder() {
    assert_eq!(
        fixtures::current_user(),
        "root",
        "this test switches to another user and needs root (the suite runs as root in CI)"
    );
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let master = tmp.path().join("master");
    fixtures::copy_master("small", &master).unwrap();
    let root = tmp.path().join("node-root");
    let state = tmp.path().join("state");
    for dir in [&root, &state] {
        fs::create_dir_all(dir).unwrap();
    }
    // The node's root belongs to nobody, but its var/lib does not.
    fs::create_dir_all(root.join("var/lib")).unwrap();
    let chown = |path: &std::path::Path| {
        assert!(
            std::process::Command::new("chown")
                .args(["nobody:", path.to_str().unwrap()])
                .status()
                .unwrap()
                .success()
        );
    };
    chown(&root);
    chown(&root.join("var"));
    chown(&state);
    fixtures::write(
        &master,
        "nodes/app1/app1.conf",
        format!(
            "transport: local\nroot: {}\napps: [hosts]\nvars: {{ip: 10.0.0.5, domain: example.com, extra_hosts: []}}\n",
            root.display()
        ),
    );
    fixtures::write(
        &master,
        "pacha.yaml",
        format!(
            "history: {}\nstates: [default, production]\nvars: {{company: c, motto: m}}\n",
            state.join("hosts").display()
        ),
    );
    for entry in walkdir(&master) {
        chown(&entry);
    }
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("pacha"))
        .arg("--master")
        .arg(&master)
        .args(["push", "app1", "production"])
        .env("XDG_STATE_HOME", &state)
        .env_remove("XDG_RUNTIME_DIR")
        .env("HOME", &state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(root.join("etc/hosts").is_file(), "{text}");
    assert!(!root.join("var/lib/pacha").exists());
    assert!(
        fs::read_dir(state.join("pacha")).unwrap().next().is_some(),
        "the state went to the user's own folder"
    );
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walkdir(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// File contents and script bodies reach the node on standard input only: while a push runs
/// (its pre script sleeping), no process's command line holds a byte of what it places.
#[test]
fn no_rendered_byte_is_in_a_command_line_on_the_node() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "scripts/pre/check/10-wait",
        "#!/bin/sh\n# script-body-marker-77\nsleep 2\n",
    );
    master.write("templates/motd/default/token.conf.hbs", "token = {{api_token}}\n");
    master.add_to_node("web1", "secrets: {api_token: s3cr3t-token-4242}\n");
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write(
        "nodes/web1/web1.conf",
        &text.replace("scripts:\n", "scripts:\n  pre: [check]\n"),
    );
    let runtime = master.dir.path().join("run");
    let mut push = std::process::Command::new(assert_cmd::cargo::cargo_bin("pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .arg("--master")
        .arg(master.dir.path())
        .args(["push", "web1", "production"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut saw_the_push = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while push.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline);
            saw_the_push |= cmdline.contains("10-wait") || cmdline.contains("sleep");
            assert!(
                !cmdline.contains("s3cr3t-token-4242"),
                "a secret in a command line: {cmdline}"
            );
            assert!(
                !cmdline.contains("script-body-marker-77"),
                "a script body in a command line: {cmdline}"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = push.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(saw_the_push, "the scan ran while the push ran");
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/token.conf")).unwrap(),
        "token = s3cr3t-token-4242\n"
    );
}

/// A script that hangs is killed with everything it started once its `timeout` is up, and
/// the node fails saying so.
#[test]
fn a_hanging_script_is_killed_with_its_processes_after_its_timeout() {
    let master = SshMaster::new(&["web1"]);
    master.write("scripts/post/reload/10-reload", "#!/bin/sh\nsleep 3607 &\nsleep 3607\n");
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write(
        "nodes/web1/web1.conf",
        &text.replace("scripts:\n", "scripts:\n  timeout: 1\n"),
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["nodes"][0];
    assert_eq!(report["error"]["kind"], "script", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s"),
        "{report}"
    );
    // Nothing of it is left running.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains("3607"),
                "a process of the script survived: {}",
                String::from_utf8_lossy(&cmdline)
            );
        }
    }
}

/// pacha killed while a post script runs: the node stops that apply and everything it started
/// before it lets the lock go, so no apply runs unlocked, and the next push goes through.
#[test]
fn a_killed_push_stops_its_work_on_the_node_before_the_lock_is_released() {
    killed_push_stops_its_work(None, "3609");
}

/// The same with a script `timeout`: `timeout` puts the script in a process group of its own,
/// which is stopped too.
#[test]
fn a_killed_push_stops_a_script_under_its_timeout_too() {
    killed_push_stops_its_work(Some(600), "3611");
}

fn killed_push_stops_its_work(timeout: Option<u64>, marker: &str) {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "scripts/post/reload/10-reload",
        &format!("#!/bin/sh\nsleep {marker} &\nsleep {marker}\n"),
    );
    if let Some(seconds) = timeout {
        let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
        master.write(
            "nodes/web1/web1.conf",
            &text.replace("scripts:\n", &format!("scripts:\n  timeout: {seconds}\n")),
        );
    }
    let runtime = master.dir.path().join("run");
    let mut push = std::process::Command::new(assert_cmd::cargo::cargo_bin("pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .arg("--master")
        .arg(master.dir.path())
        .args(["push", "web1", "production"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|entry| fs::read(entry.path().join("cmdline")).ok())
            .any(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running() {
        assert!(std::time::Instant::now() < deadline, "the post script never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    push.kill().unwrap();
    push.wait().unwrap();
    let lock = master.root("web1").join("var/lib/pacha/lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while lock.exists() {
        assert!(std::time::Instant::now() < deadline, "the lock was never released");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let alive: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            fs::read(entry.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .map(|entry| fs::read_to_string(entry.path().join("stat")).unwrap_or_default())
        .collect();
    assert!(
        alive.is_empty(),
        "the lock went while the post script still ran: {alive:?}"
    );
    master.write("scripts/post/reload/10-reload", "#!/bin/sh\necho ok\n");
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// Ctrl-C starts no further node: the running one finishes and is recorded, the others are
/// reported skipped, and pacha exits 1.
#[test]
fn ctrl_c_finishes_the_running_node_and_skips_the_rest() {
    let master = SshMaster::new(&["web1", "web2"]);
    master.write("nodes/both/both.conf", "include_nodes: [web1, web2]\n");
    master.write(
        "scripts/post/reload/10-reload",
        "#!/bin/sh\nsleep 1\necho \"reloaded $PACHA_NODE\"\n",
    );
    let runtime = master.dir.path().join("run");
    let push = std::process::Command::new(assert_cmd::cargo::cargo_bin("pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("NO_COLOR", "1")
        .arg("--master")
        .arg(master.dir.path())
        .args(["push", "both", "production", "--jobs", "1", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let motd = master.root("web1").join("etc/motd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !motd.exists() {
        assert!(std::time::Instant::now() < deadline, "web1 was never placed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &push.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = push.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["nodes"][0]["outcome"], "changed", "{report}");
    assert!(report["nodes"][0]["recorded"].is_string(), "{report}");
    assert_eq!(report["nodes"][1]["outcome"], "skipped", "{report}");
    assert!(!master.root("web2").join("etc/motd").exists());
}

/// A state nothing declares is refused before anything renders or touches a node; the
/// declared states carry settings; without STATE each node goes back to its last state.
#[test]
fn states_are_declared_typos_refused_and_the_last_state_is_the_default() {
    let master = SshMaster::new(&["web1"]);
    let root = master.root("web1");
    let (code, stdout, stderr) = master.run(&["push", "web1", "prodution", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let error = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["error"];
    assert_eq!(error["kind"], "unknown-state", "{error}");
    assert_eq!(
        error["message"],
        "unknown state \"prodution\" (states: default, production); did you mean \"production\"?"
    );
    assert!(!root.exists(), "nothing was touched");

    // Never pushed: no state to go back to.
    let (code, _, stderr) = master.run(&["push", "web1"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no recorded history"), "{stderr}");
    assert!(!root.exists());

    // pacha.yaml's state block sits above its vars, below the node's.
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    let declared = settings.replace(
        "states: [default, production]\n",
        "states:\n  default:\n  production:\n    vars: {greeting: prod-hello}\n",
    );
    master.write("pacha.yaml", &declared);
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let motd = root.join("etc/motd");
    assert_eq!(
        fs::read_to_string(&motd).unwrap(),
        "prod-hello from web1 (production)\n"
    );
    let (code, _, _) = master.run(&["push", "web1", "default"]);
    assert_eq!(code, 0);
    assert_eq!(fs::read_to_string(&motd).unwrap(), "hello from web1 (default)\n");
    master.add_to_node("web1", "vars: {greeting: node-hello}\n");
    let (code, _, _) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(&motd).unwrap(),
        "node-hello from web1 (production)\n"
    );

    // No state: the last recorded one, and the report says so.
    master.add_to_node("web1", "");
    let (code, stdout, stderr) = master.run(&["push", "web1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("no state given: each node goes to its last recorded state (web1 production)"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(&motd).unwrap(),
        "prod-hello from web1 (production)\n"
    );
    let (code, stdout, _) = master.run(&["diff", "web1", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["state_from_history"], true);
    assert_eq!(report["nodes"][0]["state"], "production");

    // With a declaration, a state folder or `states:` key it does not name is a load error.
    master.write("templates/motd/staging/motd.hbs", "staging\n");
    let (code, _, stderr) = master.run(&["nodes"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "templates/motd/staging: state \"staging\" is not declared in pacha.yaml (states: default, production)"
        ),
        "{stderr}"
    );
    fs::remove_dir_all(master.dir.path().join("templates/motd/staging")).unwrap();
    master.add_to_node("web1", "states:\n  quality: {vars: {greeting: x}}\n");
    let (code, _, stderr) = master.run(&["nodes"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("nodes/web1/web1.conf:7: state \"quality\" is not declared"),
        "{stderr}"
    );

    // Without a declaration, a state folder or `states:` key is what makes a state.
    master.write("pacha.yaml", &settings.replace("states: [default, production]\n", ""));
    let (code, stdout, stderr) = master.run(&["diff", "web1", "quality"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let (code, _, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown state \"production\" (states: default, quality)"),
        "{stderr}"
    );
}

/// `--limit` pushes only the leaves it names; `--serial` starts a batch only when the one
/// before had no failure; `--max-fail` starts no node once that many failed; skipped nodes
/// say why and make the exit status 1; `rollout:` in a meta node sets the defaults.
#[test]
fn rollout_limit_serial_and_max_fail() {
    let master = SshMaster::new(&["web1", "web2", "web3"]);
    master.write("nodes/all/all.conf", "include_nodes: [web1, web2, web3]\n");
    master.write(
        "scripts/pre/check/10-check",
        "#!/bin/sh\n[ ! -f \"$PACHA_ROOT/broken\" ] || { echo broken; exit 3; }\n",
    );
    for node in ["web1", "web2", "web3"] {
        let text = fs::read_to_string(master.dir.path().join(format!("nodes/{node}/{node}.conf"))).unwrap();
        master.write(
            &format!("nodes/{node}/{node}.conf"),
            &text.replace("scripts:\n", "scripts:\n  pre: [check]\n"),
        );
    }
    let report = |args: &[&str]| {
        let mut full = args.to_vec();
        full.push("--json");
        let (code, stdout, stderr) = master.run(&full);
        let report: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}{stderr}"));
        let outcomes: Vec<String> = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                let skipped = node["skipped"]
                    .as_str()
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default();
                format!(
                    "{} {}{skipped}",
                    node["node"].as_str().unwrap(),
                    node["outcome"].as_str().unwrap()
                )
            })
            .collect();
        (code, outcomes, stderr)
    };

    let (code, outcomes, _) = report(&["push", "all", "production", "--limit", "web[23]"]);
    assert_eq!(
        (code, outcomes),
        (0, vec!["web2 changed".to_owned(), "web3 changed".to_owned()])
    );
    assert!(
        !master.root("web1").join("etc/motd").exists(),
        "web1 was not in the limit"
    );
    let (code, _, stderr) = master.run(&["push", "all", "production", "--limit", "db*"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the limit \"db*\" matches none of the nodes of \"all\" (web1, web2, web3)"),
        "{stderr}"
    );

    // web1 fails its pre script: with --serial 1 nothing after it starts.
    fs::create_dir_all(master.root("web1")).unwrap();
    fs::write(master.root("web1").join("broken"), "").unwrap();
    master.write("templates/motd/default/motd.hbs", "v2 {{pacha.node}}\n");
    let (code, outcomes, stderr) = report(&["push", "all", "production", "--serial", "1"]);
    assert_eq!(code, 1);
    assert_eq!(
        outcomes,
        [
            "web1 failed",
            "web2 skipped (batch-failed)",
            "web3 skipped (batch-failed)"
        ]
    );
    assert!(stderr.contains("2 of 3 nodes not started"), "{stderr}");
    assert_eq!(
        fs::read_to_string(master.root("web2").join("etc/motd")).unwrap(),
        "hello from web2 (production)\n"
    );

    // --max-fail 1 with one node at a time: the same, for another reason.
    let (code, outcomes, _) = report(&["push", "all", "production", "--max-fail", "1", "--jobs", "1"]);
    assert_eq!(code, 1);
    assert_eq!(
        outcomes,
        ["web1 failed", "web2 skipped (max-fail)", "web3 skipped (max-fail)"]
    );

    // Batches of two: the first batch runs whole, the second waits for it.
    let (code, outcomes, _) = report(&["push", "all", "production", "--serial", "2"]);
    assert_eq!(code, 1);
    assert_eq!(outcomes, ["web1 failed", "web2 changed", "web3 skipped (batch-failed)"]);

    // The meta node's rollout is the default; a flag overrides it.
    master.write(
        "nodes/all/all.conf",
        "include_nodes: [web1, web2, web3]\nrollout: {serial: 1}\n",
    );
    master.write("templates/motd/default/motd.hbs", "v3 {{pacha.node}}\n");
    let (_, outcomes, _) = report(&["push", "all", "production"]);
    assert_eq!(
        outcomes,
        [
            "web1 failed",
            "web2 skipped (batch-failed)",
            "web3 skipped (batch-failed)"
        ]
    );
    let (_, outcomes, _) = report(&["push", "all", "production", "--serial", "3"]);
    assert_eq!(outcomes, ["web1 failed", "web2 changed", "web3 changed"]);
    master.write(
        "nodes/all/all.conf",
        "include_nodes: [web1, web2, web3]\nrollout: {serial: 0}\n",
    );
    let (code, _, stderr) = master.run(&["push", "all", "production"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("nodes/all/all.conf:2: rollout: serial must be at least 1"),
        "{stderr}"
    );
}

/// A `validate` command checks the staged file before anything is renamed: when it refuses,
/// no file of the node changes, nothing staged is left, and the node fails saying why.
#[test]
fn a_failing_validate_leaves_every_live_file_untouched() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "templates/motd/app.yaml",
        "dest: /etc\nfiles:\n  - match: \"app/*.conf\"\n    validate: \"grep -q '^port = ' %s || { echo \\\"no port line in $(basename %s)\\\"; exit 4; }\"\n",
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let conf = master.root("web1").join("etc/app/app.conf");
    let motd = master.root("web1").join("etc/motd");
    let before = (fs::read(&conf).unwrap(), fs::read(&motd).unwrap());

    master.write("templates/motd/default/app/app.conf", "prt = 81\n");
    master.write("templates/motd/default/motd.hbs", "changed too\n");
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["nodes"][0];
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["error"]["kind"], "validation", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("validation of /etc/app/app.conf failed: `grep -q '^port = ' %s")
            && message.contains("exited with status 4; nothing was placed")
            && message.contains("no port line in app.conf"),
        "{message}"
    );
    assert_eq!((fs::read(&conf).unwrap(), fs::read(&motd).unwrap()), before);
    let leftovers: Vec<String> = walk(&master.root("web1"))
        .into_iter()
        .filter(|path| path.contains(".pacha-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        !report["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["id"].as_str().unwrap().starts_with("post/"))
    );

    // Fixed, it goes through; a validate without %s is refused when the app is read.
    master.write("templates/motd/default/app/app.conf", "port = 81\n");
    let (code, _, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(&conf).unwrap(), "port = 81\n");
    master.write(
        "templates/motd/app.yaml",
        "dest: /etc\nfiles:\n  - match: \"app/*.conf\"\n    validate: \"true\"\n",
    );
    let (code, _, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("templates/motd/app.yaml:4: validate: \"true\" must name the staged file as %s"),
        "{stderr}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        found.push(path.display().to_string());
        if path.is_dir() && !path.is_symlink() {
            found.extend(walk(&path));
        }
    }
    found
}

/// A handler (`on_change` in app.yaml) runs only when a file of its app changed or was
/// removed, once, after the node's own post phases.
#[test]
fn a_handler_runs_only_when_its_app_changed() {
    let master = SshMaster::new(&["web1"]);
    master.write("templates/web/app.yaml", "dest: /etc/web\non_change: [reload-web]\n");
    master.write("templates/web/default/web.conf", "workers = 2\n");
    master.write("templates/web/default/extra.conf", "extra\n");
    master.write(
        "templates/other/app.yaml",
        "dest: /etc/other\non_change: [reload-web]\n",
    );
    master.write("templates/other/default/other.conf", "x\n");
    master.write(
        "scripts/post/reload-web/10-reload",
        "#!/bin/sh\necho \"web reloaded\"\n",
    );
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write(
        "nodes/web1/web1.conf",
        &text.replace("apps: [motd]", "apps: [motd, web, other]"),
    );
    let scripts = |args: &[&str]| -> Vec<String> {
        let mut full = args.to_vec();
        full.push("--json");
        let (code, stdout, stderr) = master.run(&full);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        report["nodes"][0]["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        scripts(&["push", "web1", "production"]),
        ["post/reload/10-reload", "post/reload-web/10-reload"],
        "once, after the node's own, though two apps name it"
    );
    master.write("templates/motd/default/motd.hbs", "only motd changed\n");
    assert_eq!(scripts(&["push", "web1", "production"]), ["post/reload/10-reload"]);
    master.write("templates/web/default/web.conf", "workers = 4\n");
    assert_eq!(
        scripts(&["push", "web1", "production"]),
        ["post/reload/10-reload", "post/reload-web/10-reload"]
    );
    fs::remove_file(master.dir.path().join("templates/web/default/extra.conf")).unwrap();
    assert_eq!(
        scripts(&["push", "web1", "production"]),
        ["post/reload/10-reload", "post/reload-web/10-reload"],
        "a removed file of the app runs it too"
    );
    assert!(!master.root("web1").join("etc/web/extra.conf").exists());
    assert!(scripts(&["push", "web1", "production"]).is_empty(), "nothing changed");

    master.write("templates/web/app.yaml", "dest: /etc/web\non_change: [restart-web]\n");
    let (code, _, stderr) = master.run(&["diff", "web1", "production"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("templates/web/app.yaml:2"), "{stderr}");
}

/// A failing post script or health check puts the node back as it was: replaced files,
/// removed files, new links and folders; the post scripts run again on the restored files;
/// the outcome is rolled-back and the history records a failed event with what the node
/// holds. `on_failure: keep` keeps the new files instead.
#[test]
fn a_failing_post_script_or_health_check_rolls_the_node_back() {
    let master = SshMaster::new(&["web1"]);
    master.write(
        "scripts/post/reload/10-reload",
        "#!/bin/sh\nif grep -q bad \"$PACHA_ROOT/etc/app/app.conf\"; then echo 'reload failed'; exit 5; fi\necho \"reloaded $PACHA_NODE\"\n",
    );
    master.write("templates/motd/default/app/extra.conf", "extra\n");
    master.write(
        "scripts/health/http/10-check",
        "#!/bin/sh\nif grep -q unhealthy \"$PACHA_ROOT/etc/motd\"; then echo 'not answering'; exit 7; fi\n",
    );
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write("nodes/web1/web1.conf", &format!("{text}health: {{scripts: [http]}}\n"));
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let root = master.root("web1");
    let files = ["etc/motd", "etc/app/app.conf", "etc/app/extra.conf"];
    let before: Vec<(Vec<u8>, u32)> = files
        .iter()
        .map(|path| {
            let path = root.join(path);
            (
                fs::read(&path).unwrap(),
                fs::metadata(&path).unwrap().permissions().mode(),
            )
        })
        .collect();
    let snapshot = |path: &str| {
        let (_, stdout, _) = master.run(&["show", "web1", &revision(&master, 0), path]);
        stdout
    };
    let first_conf = snapshot("/etc/app/app.conf");

    // A post script fails: changed, removed, new link and new folder all put back.
    master.write("templates/motd/default/app/app.conf", "port = bad\n");
    master.write("templates/motd/default/motd.hbs", "new motd\n");
    fs::remove_file(master.dir.path().join("templates/motd/default/app/extra.conf")).unwrap();
    master.write(
        "templates/motd/app.yaml",
        "dest: /etc\nlinks:\n  app/current: app.conf\ndirs:\n  app/cache: {mode: \"0750\"}\n",
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let node = &report["nodes"][0];
    assert_eq!(node["outcome"], "rolled-back", "{node}");
    assert_eq!(node["error"]["kind"], "script");
    assert!(
        node["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("script post/reload/10-reload failed with exit status 5: the node was put back"),
        "{node}"
    );
    let runs: Vec<(String, i64)> = node["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| (run["id"].as_str().unwrap().to_owned(), run["status"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        runs,
        [
            ("post/reload/10-reload".to_owned(), 5),
            ("post/reload/10-reload (after roll back)".to_owned(), 0)
        ]
    );
    assert_eq!(report["summary"]["rolled_back"], 1);
    let after: Vec<(Vec<u8>, u32)> = files
        .iter()
        .map(|path| {
            let path = root.join(path);
            (
                fs::read(&path).unwrap(),
                fs::metadata(&path).unwrap().permissions().mode(),
            )
        })
        .collect();
    assert_eq!(after, before, "every file is as it was");
    assert!(
        fs::symlink_metadata(root.join("etc/app/current")).is_err(),
        "the new link went"
    );
    assert!(!root.join("etc/app/cache").exists(), "the new folder went");
    let leftovers: Vec<String> = walk(&root)
        .into_iter()
        .filter(|path| path.contains(".pacha-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!root.join("var/lib/pacha/pending-post").exists());
    let (_, log, _) = master.run(&["log", "web1"]);
    assert!(log.contains("(rolled back) (failed)"), "{log}");
    assert_eq!(
        snapshot("/etc/app/app.conf"),
        first_conf,
        "the history says what the node holds"
    );

    // A health check fails: the same, with kind health.
    master.write("templates/motd/default/app/app.conf", "port = 80\n");
    master.write("templates/motd/app.yaml", "dest: /etc\n");
    master.write("templates/motd/default/app/extra.conf", "extra\n");
    master.write("templates/motd/default/motd.hbs", "unhealthy\n");
    let (code, stdout, _) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1);
    let node = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["nodes"][0];
    assert_eq!(node["outcome"], "rolled-back", "{node}");
    assert_eq!(node["error"]["kind"], "health");
    assert_eq!(fs::read(root.join("etc/motd")).unwrap(), before[0].0);

    // Fixed, the next push goes through with nothing to recover.
    master.write("templates/motd/default/motd.hbs", "healthy\n");
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("\"recovered\""), "{stdout}");
    assert_eq!(fs::read_to_string(root.join("etc/motd")).unwrap(), "healthy\n");

    // on_failure: keep: the new files stay, the post scripts are due.
    let text = fs::read_to_string(master.dir.path().join("nodes/web1/web1.conf")).unwrap();
    master.write("nodes/web1/web1.conf", &format!("{text}on_failure: keep\n"));
    master.write("templates/motd/default/app/app.conf", "port = bad\n");
    let (code, stdout, _) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1);
    let node = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["nodes"][0];
    assert_eq!(node["outcome"], "failed", "{node}");
    assert_eq!(
        fs::read_to_string(root.join("etc/app/app.conf")).unwrap(),
        "port = bad\n"
    );
    assert!(root.join("var/lib/pacha/pending-post").exists());
}

fn revision(master: &SshMaster, index: usize) -> String {
    let (_, stdout, _) = master.run(&["log", "web1", "--json"]);
    let log: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    log["entries"][index]["revision"].as_str().unwrap().to_owned()
}

/// `pacha plan -o FILE` saves exactly the change the diff showed; `pacha apply FILE` pushes
/// that (not a new rendering), and only where each node still holds what the plan saw.
#[test]
fn a_saved_plan_applies_only_where_nodes_are_as_it_saw_them() {
    let master = SshMaster::new(&["web1", "web2"]);
    master.write("nodes/both/both.conf", "include_nodes: [web1, web2]\n");
    let (code, _, stderr) = master.run(&["push", "both", "production"]);
    assert_eq!(code, 0, "{stderr}");
    master.write("templates/motd/default/motd.hbs", "planned {{pacha.node}}\n");
    let file = master.dir.path().join("change.plan");
    let (code, stdout, stderr) = master.run(&["plan", "both", "production", "-o", file.to_str().unwrap()]);
    assert_eq!(code, 2, "changes found, like diff: {stdout}{stderr}");
    assert!(stdout.contains("+planned web1"), "the diff is shown: {stdout}");
    assert!(stdout.contains("saved plan "), "{stdout}");
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let id = saved["id"].as_str().unwrap().to_owned();

    // The master moves on, and web2 is edited by hand: the plan is what it was.
    master.write("templates/motd/default/motd.hbs", "newer {{pacha.node}}\n");
    fs::write(master.root("web2").join("etc/motd"), "hand edit\n").unwrap();
    let (code, stdout, stderr) = master.run(&["apply", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["plan"]["id"], id.as_str());
    assert_eq!(report["nodes"][0]["outcome"], "changed", "{report}");
    assert_eq!(report["nodes"][1]["outcome"], "refused", "{report}");
    assert_eq!(report["nodes"][1]["error"]["kind"], "refused");
    assert!(
        report["nodes"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the node changed since the plan was made: /etc/motd"),
        "{report}"
    );
    assert_eq!(
        fs::read_to_string(master.root("web1").join("etc/motd")).unwrap(),
        "planned web1\n"
    );
    assert_eq!(
        fs::read_to_string(master.root("web2").join("etc/motd")).unwrap(),
        "hand edit\n"
    );
    let (_, log, _) = master.run(&["log", "web1"]);
    assert!(log.contains(&format!("(plan {id})")), "{log}");

    // Applied again, web1 moved (the plan is in place now): refused too, nothing done.
    let (code, stdout, _) = master.run(&[
        "apply",
        file.to_str().unwrap(),
        "--dry-run",
        "--limit",
        "web1",
        "--json",
    ]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(report["nodes"][0]["outcome"], "refused");

    // A file that is not a plan is a clear error.
    fs::write(&file, "{}").unwrap();
    let (code, _, stderr) = master.run(&["apply", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a pacha plan file"), "{stderr}");
}

/// Confirm or revert: with `health: {ssh: true}`, a change after which a new SSH connection
/// fails (here: an authorized_keys that locks pacha out of the test sshd) is put back by the
/// node, while the old connection still works.
#[test]
fn confirm_or_revert_rolls_back_a_change_that_breaks_logins() {
    let (master, keys_file, keys) = keys_node(20);

    master.write("templates/keys/default/authorized_keys", "# nobody may log in\n");
    let (code, stdout, stderr) = master.run(&["push", "web1", "production", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let node = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["nodes"][0];
    assert_eq!(node["outcome"], "rolled-back", "{node}");
    assert_eq!(node["error"]["kind"], "health");
    let probe = node["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["id"] == "health/ssh")
        .unwrap_or_else(|| panic!("{node}"));
    assert!(
        probe["output"]
            .as_str()
            .unwrap()
            .contains("a new SSH connection failed"),
        "{probe}"
    );
    assert_eq!(fs::read_to_string(&keys_file).unwrap(), keys, "the keys are back");

    // Good keys again: the change goes through, confirmed.
    master.write("templates/keys/default/authorized_keys", &format!("{keys}# reviewed\n"));
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(fs::read_to_string(&keys_file).unwrap().ends_with("# reviewed\n"));
}

/// pacha killed while the node waits for its confirmation: the node puts everything back by
/// itself.
#[test]
fn a_node_waiting_for_a_killed_pacha_rolls_itself_back() {
    let (master, keys_file, keys) = keys_node(30);
    // New logins hang in a forced command: pacha waits in its check, and is killed there.
    master.write(
        "templates/keys/default/authorized_keys",
        &format!("command=\"sleep 3617\" {keys}"),
    );
    let runtime = master.dir.path().join("run");
    let mut push = std::process::Command::new(assert_cmd::cargo::cargo_bin("pacha"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .arg("--master")
        .arg(master.dir.path())
        .args(["push", "web1", "production"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waiting = || {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|entry| fs::read(entry.path().join("cmdline")).ok())
            .any(|cmdline| String::from_utf8_lossy(&cmdline).starts_with("sleep\u{0}3617"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !waiting() {
        assert!(std::time::Instant::now() < deadline, "pacha never got to its check");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        fs::read_to_string(&keys_file).unwrap().starts_with("command="),
        "the change is in place"
    );
    push.kill().unwrap();
    push.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while fs::read_to_string(&keys_file).unwrap() != keys {
        assert!(std::time::Instant::now() < deadline, "the node never rolled back");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = std::process::Command::new("pkill").args(["-f", "sleep 3617"]).status();
}

/// A node that is the test sshd's own folder, with an app that places its authorized_keys
/// (as they are) and confirm or revert on with `timeout` seconds; pushed once.
fn keys_node(timeout: u64) -> (SshMaster, std::path::PathBuf, String) {
    let master = SshMaster::new(&["web1"]);
    let keys_file = master.sshd.dir().join("authorized_keys");
    let keys = fs::read_to_string(&keys_file).unwrap();
    master.write("templates/keys/app.yaml", "dest: /\nmode: \"0600\"\n");
    master.write("templates/keys/default/authorized_keys", &keys);
    master.write(
        "nodes/web1/web1.conf",
        &format!(
            "host: web1\nroot: {}\napps: [keys]\nhealth: {{ssh: true, timeout: {timeout}}}\n",
            master.sshd.dir().display()
        ),
    );
    let (code, stdout, stderr) = master.run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    (master, keys_file, keys)
}

/// A node without `tar` and `setsid` (its PATH has every program this machine has but those two):
/// `doctor` says pushes work a little slower, and they do, end to end: the files' stream read
/// with `head -c`, modes set with `chmod`, the post script's apply in the foreground of the
/// session that holds the lock, then a plain one-file change.
#[test]
fn a_node_without_tar_or_setsid_is_pushed_all_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    // Everything this machine has (Debian: /bin is /usr/bin) but those two.
    for entry in fs::read_dir("/usr/bin").unwrap().filter_map(Result::ok) {
        let name = entry.file_name();
        if name != "tar" && name != "setsid" {
            std::os::unix::fs::symlink(entry.path(), bin.join(name)).unwrap();
        }
    }
    let master = tmp.path().join("master");
    let root = tmp.path().join("root");
    fixtures::write(&master, "pacha.yaml", "states: [default, production]\n");
    fixtures::write(
        &master,
        "templates/app/app.yaml",
        "dest: /etc/app\nfiles:\n  - {match: \"secret.conf\", mode: \"0600\"}\n  - {match: \"run.sh\", mode: \"0755\"}\n",
    );
    fixtures::write(&master, "templates/app/default/app.conf", "port = 80\n");
    fixtures::write(&master, "templates/app/default/secret.conf", "key = 1\n");
    fixtures::write(&master, "templates/app/default/run.sh", "#!/bin/sh\n");
    let ran = tmp.path().join("post-ran");
    fixtures::write(
        &master,
        "scripts/post/reload/10-reload",
        format!("#!/bin/sh\nprintf '%s\\n' \"$PACHA_NODE\" > '{}'\n", ran.display()),
    );
    fixtures::write(
        &master,
        "nodes/web1/web1.conf",
        format!(
            "transport: local\nroot: {}\napps: [app]\nscripts:\n  post: [reload]\n",
            root.display()
        ),
    );
    let run = |args: &[&str]| {
        crate::common::outcome(
            crate::common::pacha()
                .env("PATH", &bin)
                .arg("--master")
                .arg(&master)
                .args(args),
        )
    };
    let (code, text, stderr) = run(&["doctor", "web1"]);
    assert!(
        text.contains("node web1: reachable") && text.contains("(no tar, setsid: pushes work, a little slower"),
        "{code}: {text}{stderr}"
    );

    let (code, stdout, stderr) = run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for (name, content, mode) in [
        ("app.conf", "port = 80\n", 0o644),
        ("secret.conf", "key = 1\n", 0o600),
        ("run.sh", "#!/bin/sh\n", 0o755),
    ] {
        let path = root.join("etc/app").join(name);
        assert_eq!(fs::read_to_string(&path).unwrap(), content, "{name}");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            mode,
            "{name}"
        );
    }
    assert_eq!(fs::read_to_string(&ran).unwrap(), "web1\n", "the post script ran");

    // A plain change (no script runs: nothing else changed): the held runner's own foreground.
    fs::remove_file(&ran).unwrap();
    fixtures::write(&master, "templates/app/default/app.conf", "port = 8080\n");
    fs::write(
        master.join("nodes/web1/web1.conf"),
        format!("transport: local\nroot: {}\napps: [app]\n", root.display()),
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["push", "web1", "production"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        fs::read_to_string(root.join("etc/app/app.conf")).unwrap(),
        "port = 8080\n"
    );
    assert!(!ran.exists());
    let (code, stdout, stderr) = run(&["status", "web1"]);
    assert_eq!(code, 0, "history and node agree: {stdout}{stderr}");
    let leftovers: Vec<_> = fs::read_dir(root.join("etc/app"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".pacha"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
