//! `init`, `nodes`, `expand`, `render` through the binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{pacha, run_in};

#[test]
fn init_creates_a_master_that_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let output = pacha().arg("init").arg(&dir).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.join("pacha.yaml").is_file());
    assert!(fs::read_to_string(dir.join(".gitignore")).unwrap().contains("/hosts/"));
    let mode = fs::metadata(dir.join("scripts/pre/check/10-announce.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "scripts are executable");

    // A second init refuses to overwrite.
    let again = pacha().arg("init").arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already a pacha master"));

    // Discovery from a subfolder, as cargo finds Cargo.toml.
    let (code, stdout, stderr) = {
        let output = pacha()
            .current_dir(dir.join("templates/nginx"))
            .args(["render", "webservers", "production"])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("node web1 (state production"), "{stdout}");
    let key_line = stdout
        .lines()
        .find(|line| line.contains("/etc/nginx/ssl/site.key"))
        .unwrap();
    assert!(key_line.contains(" 0600 "), "{key_line}");
}

#[test]
fn nodes_lists_nodes_and_meta_nodes() {
    let (code, stdout, _) = run_in(&fixtures::master("fleet"), &["nodes"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
    let (code, stdout, _) = run_in(&fixtures::master("fleet"), &["nodes", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10);
    assert_eq!(
        nodes[0],
        serde_json::json!({"kind": "meta", "name": "all", "include_nodes": ["webservers", "databases", "lb1"]})
    );
}

#[test]
fn expand_prints_leaves_in_order() {
    let (code, stdout, _) = run_in(&fixtures::master("fleet"), &["expand", "all"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, "web1\nweb2\nweb3\ndb1\ndb2\nlb1\n");
    let (_, stdout, _) = run_in(&fixtures::master("fleet"), &["expand", "dmz", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
        serde_json::json!({"node": "dmz", "nodes": ["web3", "web1"]})
    );
}

#[test]
fn render_text_and_json_are_deterministic() {
    let (code, text, _) = run_in(&fixtures::master("fleet"), &["render", "webservers", "production"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(text);
    let (code, json, _) = run_in(
        &fixtures::master("fleet"),
        &["render", "webservers", "production", "--json"],
    );
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    insta::assert_json_snapshot!(value);
    let (_, again, _) = run_in(
        &fixtures::master("fleet"),
        &["render", "webservers", "production", "--json"],
    );
    assert_eq!(json, again);
}

#[test]
fn render_out_writes_each_nodes_files_with_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plan");
    let (code, _, stderr) = run_in(
        &fixtures::master("fleet"),
        &["render", "webservers", "production", "--out", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    let key = out.join("web2/etc/apache2/ssl/server.key");
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        fs::read_to_string(out.join("web2/etc/apache2/ports.conf")).unwrap(),
        "Listen 80\nListen 443\n"
    );
    let logo = fs::read(out.join("web3/var/www/assets/logo.png")).unwrap();
    assert_eq!(
        logo,
        fs::read(fixtures::master("fleet").join("templates/assets/default/logo.png")).unwrap()
    );
    let script = out.join("web1/var/www/assets/bin/rotate.sh");
    assert_eq!(fs::metadata(&script).unwrap().permissions().mode() & 0o7777, 0o755);
    // Rendering again over the same folder works (read-only files are replaced).
    let (code, _, stderr) = run_in(
        &fixtures::master("fleet"),
        &["render", "webservers", "production", "--out", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn every_invalid_case_fails_with_one_clear_error() {
    for case in fixtures::invalid_cases() {
        let args: Vec<&str> = case.command.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run_in(&case.dir, &args);
        assert_eq!(code, 1, "{}: {stderr}", case.name);
        assert!(stdout.is_empty(), "{}: {stdout}", case.name);
        assert!(stderr.starts_with("error: "), "{}: {stderr}", case.name);
        assert_eq!(
            stderr.matches("error:").count(),
            1,
            "{}: printed once: {stderr}",
            case.name
        );
    }
}

#[test]
fn no_master_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let output = pacha().current_dir(tmp.path()).arg("nodes").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no pacha master here"), "{stderr}");
    let output = pacha()
        .current_dir(tmp.path())
        .env("PACHA_MASTER", fixtures::master("small"))
        .arg("nodes")
        .output()
        .unwrap();
    assert!(output.status.success(), "PACHA_MASTER is honoured");
}

#[test]
fn usage_errors_exit_1_not_2() {
    let output = pacha().args(["render", "only-one-arg"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let output = pacha().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
}

/// The systemd units in dist/systemd verify (with this pacha in their ExecStart and the
/// example host.env as their environment file): no error and no warning.
#[test]
fn the_systemd_units_verify() {
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd");
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("pacha");
    let env_file = dir.path().join("host.env");
    fs::copy(units.join("host.env.example"), &env_file).unwrap();
    for unit in ["pacha-pull@.service", "pacha-watch@.service"] {
        let text = fs::read_to_string(units.join(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/pacha ") && text.contains("EnvironmentFile=/etc/pacha/host.env"));
        let text = text
            .replace("/usr/bin/pacha", bin.to_str().unwrap())
            .replace("/etc/pacha/host.env", env_file.to_str().unwrap());
        fs::write(dir.path().join(unit), text).unwrap();
    }
    let output = std::process::Command::new("systemd-analyze")
        .current_dir(dir.path())
        .args([
            "verify",
            "--man=no",
            "./pacha-pull@web1.service",
            "./pacha-watch@web1.service",
        ])
        .output()
        .expect("systemd-analyze is installed (tools/test installs systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let output = pacha().arg("--version").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!("pacha {} ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .unwrap();
    if head.status.success() {
        let commit = String::from_utf8(head.stdout).unwrap();
        assert!(text.contains(&format!("({}", commit.trim())), "{text}");
    }
}

#[test]
fn completions_for_every_shell_and_a_man_page_per_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = pacha().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("rollback") && script.contains("limit"), "{shell}");
    }
    let bash = pacha().args(["completions", "bash"]).output().unwrap().stdout;
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("pacha.bash"), &bash).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(tmp.path().join("pacha.bash"))
        .status()
        .unwrap();
    assert!(checked.success(), "bash reads the completion script");
    assert!(pacha().args(["completions", "tcsh"]).output().unwrap().status.code() == Some(1));

    let man = tmp.path().join("man1");
    let output = pacha().args(["man", "--out"]).arg(&man).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    for page in [
        "pacha.1",
        "pacha-push.1",
        "pacha-secret-set.1",
        "pacha-history-sync.1",
        "pacha-watch.1",
    ] {
        let text = fs::read_to_string(man.join(page)).unwrap_or_else(|err| panic!("{page}: {err}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {}",
            &text[..80.min(text.len())]
        );
    }
    let push = fs::read_to_string(man.join("pacha-push.1")).unwrap();
    assert!(push.contains("max\\-fail"), "{push}");
    assert!(!man.join("pacha-help.1").exists());
}

#[test]
fn init_makes_the_master_a_git_repository_unless_it_is_inside_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let output = pacha()
        .args(["init", "--json"])
        .arg(&dir)
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["git"]["repository"], "new", "{json}");
    let repo = git2::Repository::open(&dir).unwrap();
    // With no identity configured nothing is committed, but every file is staged.
    assert_eq!(json["git"]["commit"], serde_json::Value::Null, "{json}");
    assert!(
        repo.index()
            .unwrap()
            .get_path(std::path::Path::new("pacha.yaml"), 0)
            .is_some()
    );

    fs::write(
        tmp.path().join(".gitconfig"),
        "[user]\n\tname = Ada Admin\n\temail = ada@example.com\n",
    )
    .unwrap();
    let second = tmp.path().join("n");
    let output = pacha()
        .args(["init", "--json"])
        .arg(&second)
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let commit = json["git"]["commit"].as_str().unwrap().to_owned();
    let repo = git2::Repository::open(&second).unwrap();
    assert_eq!(repo.head().unwrap().peel_to_commit().unwrap().id().to_string(), commit);
    assert!(repo.statuses(None).unwrap().is_empty(), "everything committed");

    // Inside a repository already: left to it.
    let inside = second.join("sites/eu");
    let output = pacha().args(["init", "--json"]).arg(&inside).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["git"]["repository"], "existing");
    assert!(!inside.join(".git").exists());
}

#[test]
fn doctor_says_what_is_wrong_and_how_to_fix_it() {
    let master = crate::common::SshMaster::new(&["web1", "web2"]);
    let (code, text, stderr) = master.run(&["doctor"]);
    assert_eq!(code, 0, "{text}{stderr}");
    assert!(text.contains("ok   node web1: reachable"), "{text}");
    assert!(text.contains("everything a push needs is there"), "{text}");

    // web2 unreachable, and a key others can read.
    let config = master.dir.path().join("broken_ssh_config");
    fs::write(
        &config,
        format!(
            "Host web2\n  Port 1\n\nMatch all\nInclude {}\n",
            master.sshd.config.display()
        ),
    )
    .unwrap();
    let key = master.dir.path().join("id_loose");
    fs::copy(&master.sshd.identity, &key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let settings = fs::read_to_string(master.dir.path().join("pacha.yaml")).unwrap();
    let settings = settings.replace(
        &format!("config_file: {}", master.sshd.config.display()),
        &format!("config_file: {}\n  identity: {}", config.display(), key.display()),
    );
    master.write("pacha.yaml", &settings);
    let (code, json, _) = master.run(&["doctor", "--json"]);
    assert_eq!(code, 1, "{json}");
    let document: serde_json::Value = serde_json::from_str(&json).unwrap();
    let checks = document["checks"].as_array().unwrap();
    let find = |name: &str| {
        checks
            .iter()
            .find(|check| check["check"] == name)
            .unwrap_or_else(|| panic!("{name}: {json}"))
    };
    assert_eq!(find("ssh identity")["ok"], false);
    assert!(find("ssh identity")["fix"].as_str().unwrap().starts_with("chmod 600"));
    assert_eq!(find("node web2")["ok"], false, "{json}");
    assert!(find("node web2")["fix"].as_str().is_some());
    let (code, text, _) = master.run(&["doctor", "web2"]);
    assert_eq!(code, 1);
    assert!(text.contains("FAIL node web2") && text.contains("fix:"), "{text}");
    assert!(!text.contains("node web1"), "only the node asked for: {text}");
}

/// `files: [{match, each, as}]`: one file per item of a list variable.
#[test]
fn a_template_is_placed_once_per_item_of_a_list() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures::write(dir, "pacha.yaml", "vars:\n  domain: example.com\n");
    fixtures::write(
        dir,
        "nodes/web1/web1.conf",
        "host: web1\ntransport: local\nroot: /tmp/never-pushed\napps: [nginx]\nvars:\n  sites:\n    - {name: shop, port: 8080}\n    - {name: blog, port: 8081}\n",
    );
    fixtures::write(
        dir,
        "templates/nginx/app.yaml",
        "dest: /etc/nginx\nfiles:\n  - {match: \"sites/site.conf.hbs\", each: sites, as: \"sites/{{name}}.conf\", mode: \"0640\"}\n",
    );
    fixtures::write(
        dir,
        "templates/nginx/default/sites/site.conf.hbs",
        "server {{name}}.{{domain}} on {{port}} ({{item.name}})\n",
    );
    fixtures::write(dir, "templates/nginx/default/nginx.conf", "include sites/*.conf;\n");
    let out = dir.join("out");
    let (code, _, stderr) = run_in(dir, &["render", "web1", "default", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let site = |name: &str| fs::read_to_string(out.join("web1/etc/nginx/sites").join(name)).unwrap();
    assert_eq!(site("shop.conf"), "server shop.example.com on 8080 (shop)\n");
    assert_eq!(site("blog.conf"), "server blog.example.com on 8081 (blog)\n");
    assert!(
        !out.join("web1/etc/nginx/sites/site.conf").exists(),
        "the template itself is not placed"
    );
    let (_, json, _) = run_in(dir, &["render", "web1", "default", "--json"]);
    assert!(json.contains("\"/etc/nginx/sites/shop.conf\""), "{json}");

    // Names are checked like every destination.
    let app = "dest: /etc/nginx\nfiles:\n  - {match: \"sites/site.conf.hbs\", each: sites, as: \"AS\"}\n";
    for (name, said) in [
        ("sites/same.conf", "/etc/nginx/sites/same.conf"),
        ("../../../escape", "as:"),
    ] {
        fixtures::write(dir, "templates/nginx/app.yaml", app.replace("AS", name));
        let (code, _, stderr) = run_in(dir, &["render", "web1", "default"]);
        assert_eq!(code, 1, "{name}");
        assert!(stderr.contains(said), "{name}: {stderr}");
    }
    fixtures::write(
        dir,
        "templates/nginx/app.yaml",
        "dest: /etc/nginx\nfiles:\n  - {match: \"sites/site.conf.hbs\", each: sites}\n",
    );
    let (code, _, stderr) = run_in(dir, &["render", "web1", "default"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("templates/nginx/app.yaml:3") && stderr.contains("as: NAME_TEMPLATE"),
        "{stderr}"
    );
    fixtures::write(
        dir,
        "templates/nginx/app.yaml",
        "dest: /etc/nginx\nfiles:\n  - {match: \"sites/site.conf.hbs\", each: domain, as: \"x/{{name}}\"}\n",
    );
    let (code, _, stderr) = run_in(dir, &["render", "web1", "default"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is not a list"), "{stderr}");
}

/// tools/package: the Debian package holds the binary, every man page, the completions and
/// the systemd units.
#[test]
fn the_debian_package_holds_what_an_admin_installs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new(root.join("tools/package"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_pacha"))
        .arg("--fast")
        .arg("--out")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let package = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(package.ends_with(".deb"), "{package}");
    let contents = std::process::Command::new("dpkg-deb")
        .args(["--contents", &package])
        .output()
        .unwrap();
    assert!(contents.status.success());
    let listing = String::from_utf8(contents.stdout).unwrap();
    for path in [
        "./usr/bin/pacha",
        "./usr/share/man/man1/pacha.1.gz",
        "./usr/share/man/man1/pacha-push.1.gz",
        "./usr/share/man/man1/pacha-secret-set.1.gz",
        "./usr/share/bash-completion/completions/pacha",
        "./usr/share/zsh/vendor-completions/_pacha",
        "./lib/systemd/system/pacha-pull@.service",
        "./lib/systemd/system/pacha-watch@.service",
        "./usr/share/doc/pacha/host.env.example",
    ] {
        assert!(
            listing.lines().any(|line| line.ends_with(path)),
            "{path} missing from:\n{listing}"
        );
    }
    assert!(listing.contains("-rwxr-xr-x root/root"), "{listing}");
    let info = std::process::Command::new("dpkg-deb")
        .args(["--field", &package, "Package", "Version", "Depends"])
        .output()
        .unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(
        info.contains("Package: pacha") && info.contains(env!("CARGO_PKG_VERSION")),
        "{info}"
    );
    assert!(info.contains("openssh-client"), "{info}");
}
