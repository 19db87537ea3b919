//! The OpenSSH transport against a real `sshd` started by the test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use fixtures::Sshd;
use pacha_core::testing::push_unrecorded;
use pacha_core::{Connector, Inspect, LiveFile, NodePath, Outcome, PushOptions, Quiet, TransportError, TransportKind};
use pacha_transport::SshConnector;

use crate::support::{file, nasty_files, plan, ssh_settings, target};

fn connector(dir: &std::path::Path) -> SshConnector {
    SshConnector::new(dir.join("ctl"))
        .unwrap()
        .with_lock_wait(Duration::from_millis(500))
}

#[test]
fn push_over_ssh_then_nothing_changes() {
    let sshd = Sshd::start(&["web1", "web2"]);
    let tmp = tempfile::tempdir().unwrap();
    let connector = connector(tmp.path());
    let plans: Vec<_> = ["web1", "web2"]
        .iter()
        .map(|node| {
            let root = tmp.path().join(node);
            plan(
                node,
                target(node, &root, TransportKind::Ssh, ssh_settings(&sshd)),
                vec![
                    file("/etc/motd", format!("hello {node}\n").as_bytes(), "0640"),
                    file("/etc/bin/blob", &[0, 1, 2, 255], "0755"),
                ],
                vec![],
            )
        })
        .collect();
    let reports = push_unrecorded(
        &plans,
        &connector,
        &PushOptions {
            jobs: 2,
            ..PushOptions::default()
        },
        &Quiet,
    );
    for report in &reports {
        assert_eq!(report.outcome, Outcome::Changed, "{:?} {}", report.error, sshd.log());
    }
    let motd = tmp.path().join("web2/etc/motd");
    assert_eq!(fs::read_to_string(&motd).unwrap(), "hello web2\n");
    assert_eq!(fs::metadata(&motd).unwrap().permissions().mode() & 0o7777, 0o640);
    assert_eq!(fs::read(tmp.path().join("web1/etc/bin/blob")).unwrap(), [0, 1, 2, 255]);
    let LiveFile::File(stat) = &reports[0].live[0] else {
        panic!("{:?}", reports[0].live)
    };
    assert_eq!(stat.owner, fixtures::current_user());

    let mtime = fs::metadata(&motd).unwrap().modified().unwrap();
    let again = push_unrecorded(
        &plans,
        &connector,
        &PushOptions {
            jobs: 2,
            ..PushOptions::default()
        },
        &Quiet,
    );
    assert!(
        again.iter().all(|report| report.outcome == Outcome::Unchanged),
        "{again:?}"
    );
    assert_eq!(fs::metadata(&motd).unwrap().modified().unwrap(), mtime);
    connector.disconnect_all();
}

#[test]
fn an_unknown_host_key_is_refused() {
    let sshd = Sshd::start(&["web1"]);
    let tmp = tempfile::tempdir().unwrap();
    let empty_known_hosts = tmp.path().join("known_hosts");
    fs::write(&empty_known_hosts, "").unwrap();
    let mut settings = ssh_settings(&sshd);
    settings.known_hosts = Some(empty_known_hosts.clone());
    // The alias in the ssh_config names its own known_hosts; a config without it:
    settings.config_file = Some(sshd.config_without_known_hosts(&tmp.path().join("ssh_config"), &["web1"]));
    let connector = connector(tmp.path());
    let err = connector
        .connect(
            "web1",
            &target("web1", tmp.path(), TransportKind::Ssh, settings.clone()),
        )
        .err()
        .unwrap();
    assert!(err.is_host_key(), "{err}");
    assert!(
        err.to_string().starts_with("web1: host key verification failed"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&empty_known_hosts).unwrap(),
        "",
        "strict checking records nothing"
    );

    settings.host_keys = Some(pacha_core::HostKeyPolicy::AcceptNew);
    let connection = connector
        .connect("web1", &target("web1", tmp.path(), TransportKind::Ssh, settings))
        .unwrap();
    connection.close().unwrap();
    assert!(
        fs::read_to_string(&empty_known_hosts).unwrap().contains("ssh-ed25519"),
        "accept-new records the key"
    );
    connector.disconnect_all();
}

#[test]
fn a_refused_connection_names_the_host_and_ssh_error() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = target(
        "127.0.0.1",
        tmp.path(),
        TransportKind::Ssh,
        pacha_core::SshSettings {
            connect_timeout: Some(2),
            ..Default::default()
        },
    );
    t.port = Some(port);
    let err = connector(tmp.path()).connect("down", &t).err().unwrap();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[test]
fn kept_connections_are_reused_and_replaced_when_dead() {
    let sshd = Sshd::start(&["web1"]);
    let tmp = tempfile::tempdir().unwrap();
    let connector = connector(tmp.path());
    let t = target("web1", tmp.path(), TransportKind::Ssh, ssh_settings(&sshd));
    let socket = connector.socket_path(&t);
    connector.connect("web1", &t).unwrap().close().unwrap();
    assert!(socket.exists(), "the master is kept after use");
    let pid = master_pid(&socket);
    connector.connect("web1", &t).unwrap().close().unwrap();
    assert_eq!(master_pid(&socket), pid, "the next connection reuses it");

    // A dead master is replaced silently.
    std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut connection = connector.connect("web1", &t).unwrap();
    let paths = [NodePath::parse("/nothing").unwrap()];
    let inspection = connection
        .inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: None,
        })
        .unwrap();
    assert_eq!(inspection.files, [LiveFile::Missing]);
    connection.close().unwrap();
    assert_ne!(master_pid(&socket), pid);

    assert!(connector.disconnect(&t));
    assert!(!socket.exists());

    // persist: 0 keeps nothing.
    let mut once = t.clone();
    once.ssh.persist = Some(0);
    connector.connect("web1", &once).unwrap().close().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<_> = fs::read_dir(connector.control_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_none())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The pid of the ssh master behind a control socket.
pub(crate) fn master_pid(socket: &std::path::Path) -> u32 {
    let output = std::process::Command::new("ssh")
        .arg("-S")
        .arg(socket)
        .args(["-O", "check", "x"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    let start = text.find("pid=").unwrap_or_else(|| panic!("{text}")) + 4;
    text[start..]
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_changed_host_key_is_refused() {
    let sshd = Sshd::start(&["web1"]);
    let tmp = tempfile::tempdir().unwrap();
    // known_hosts holds another key for this server.
    let other = tmp.path().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let public = fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let known = tmp.path().join("known_hosts");
    fs::write(
        &known,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            sshd.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        ),
    )
    .unwrap();
    let mut settings = ssh_settings(&sshd);
    settings.config_file = Some(sshd.config_without_known_hosts(&tmp.path().join("ssh_config"), &["web1"]));
    settings.known_hosts = Some(known);
    // Even accept-new refuses a key that changed.
    settings.host_keys = Some(pacha_core::HostKeyPolicy::AcceptNew);
    let err = connector(tmp.path())
        .connect("web1", &target("web1", tmp.path(), TransportKind::Ssh, settings))
        .err()
        .unwrap();
    assert!(err.is_host_key(), "{err}");
}

#[test]
fn shell_syntax_in_names_and_contents_is_placed_literally_over_ssh() {
    let sshd = Sshd::start(&["web1"]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let canary = root.join("canary");
    let (nasty, files) = nasty_files(&canary);
    let mut p = plan(
        "node 'quoted' $(x)",
        target("web1", &root, TransportKind::Ssh, ssh_settings(&sshd)),
        files,
        vec![],
    );
    p.state = "st;ate $(touch canary)".into();
    let connector = connector(tmp.path());
    let reports = push_unrecorded(&[p], &connector, &PushOptions::default(), &Quiet);
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
    for path in nasty {
        assert!(root.join(&path[1..]).is_file(), "{path:?} was not placed");
    }
    assert!(!canary.exists(), "something was executed");
    connector.disconnect_all();
}

#[test]
fn a_login_shell_that_prints_a_banner_does_not_confuse_pacha() {
    let sshd = Sshd::start(&["web1"]);
    // bash reads ~/.bashrc for commands run by sshd; this one talks.
    fs::write(
        sshd.dir().join("home/.bashrc"),
        "echo 'Welcome to web1! Have a nice day.'\n",
    )
    .unwrap();
    fs::write(sshd.dir().join("home/.profile"), "echo 'profile says hi'\n").unwrap();
    let banner = std::process::Command::new("ssh")
        .arg("-F")
        .arg(&sshd.config)
        .args(["web1", "true"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&banner.stdout).contains("Welcome to web1"),
        "the shell does talk: {banner:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let connector = connector(tmp.path());
    let p = plan(
        "web1",
        target("web1", &root, TransportKind::Ssh, ssh_settings(&sshd)),
        vec![file("/etc/motd", b"hi\n", "0644")],
        vec![],
    );
    let reports = push_unrecorded(std::slice::from_ref(&p), &connector, &PushOptions::default(), &Quiet);
    assert_eq!(reports[0].outcome, Outcome::Changed, "{:?}", reports[0].error);
    let again = push_unrecorded(&[p], &connector, &PushOptions::default(), &Quiet);
    assert_eq!(again[0].outcome, Outcome::Unchanged, "{:?}", again[0].error);
    connector.disconnect_all();
}
