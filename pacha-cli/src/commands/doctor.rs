//! `pacha doctor [NODE]`: checks what pushes need, one line per check with a fix: the ssh
//! client, the master and its settings, the ssh files they name, the history, the age
//! identity, and each node reachable with `sh` and the programs pacha runs there.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pacha_core::{Connector as _, History as _};
use serde::Serialize;

use super::{Context, Status};
use crate::output::Output;

/// What a push, diff, rollback and capture run on a node.
const NODE_PROGRAMS: &[&str] = &[
    "sh",
    "stat",
    "sha256sum",
    "head",
    "cat",
    "mkdir",
    "mv",
    "cp",
    "ln",
    "rm",
    "chmod",
    "chown",
    "sync",
    "timeout",
    "find",
    "wc",
    "readlink",
    "tac",
];

/// What a push uses when it is there, and does without more slowly.
const OPTIONAL_PROGRAMS: &[&str] = &["tar", "setsid"];

#[derive(Serialize)]
struct Check {
    check: String,
    ok: bool,
    detail: String,
    /// How to fix it, when it failed.
    fix: Option<String>,
}

impl Check {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn failed(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

pub(super) fn doctor(context: &Context<'_>, out: &mut Output, node: Option<&str>) -> anyhow::Result<Status> {
    let mut checks = vec![ssh_client()];
    match context.master() {
        Err(err) => {
            let shown = crate::error::describe(&err);
            checks.push(Check::failed(
                "master",
                shown.message,
                shown
                    .hints
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "fix the file and line the message names".to_owned()),
            ));
        }
        Ok(master) => {
            checks.push(Check::ok(
                "master",
                format!(
                    "{} ({} nodes and meta nodes)",
                    master.dir().display(),
                    master.graph().len()
                ),
            ));
            master_checks(&master, node, &mut checks);
        }
    }
    let failed = checks.iter().filter(|check| !check.ok).count();
    if out.json {
        out.json_document(&serde_json::json!({"checks": checks, "failed": failed}))?;
    } else {
        let style = out.style;
        for check in &checks {
            let mark = if check.ok {
                style.green("ok  ")
            } else {
                style.red("FAIL")
            };
            out.line(format!("{mark} {}: {}", check.check, check.detail))?;
            if let Some(fix) = &check.fix {
                out.line(format!("     fix: {fix}"))?;
            }
        }
        out.line(if failed == 0 {
            "everything a push needs is there".to_owned()
        } else {
            format!("{failed} check{} failed", if failed == 1 { "" } else { "s" })
        })?;
    }
    if failed > 0 {
        return Err(crate::error::NodesFailed(format!("{failed} doctor check(s) failed")).into());
    }
    Ok(Status::Success)
}

fn ssh_client() -> Check {
    match Command::new("ssh").arg("-V").stdout(Stdio::null()).output() {
        Ok(output) if output.status.success() => {
            Check::ok("ssh client", String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
        _ => Check::failed(
            "ssh client",
            "no `ssh` on PATH",
            "install OpenSSH's client (Debian: apt-get install openssh-client)",
        ),
    }
}

fn master_checks(master: &pacha_core::Master, node: Option<&str>, checks: &mut Vec<Check>) {
    let nodes = match node {
        Some(node) => match master.expand(node) {
            Ok(nodes) => nodes,
            Err(err) => {
                checks.push(Check::failed("node", err.to_string(), "`pacha nodes` lists the nodes"));
                return;
            }
        },
        None => master.leaf_nodes(),
    };
    // The ssh files every node's settings name, each checked once.
    let mut files: BTreeSet<(&'static str, PathBuf)> = BTreeSet::new();
    let targets: Vec<(String, Result<pacha_core::Target, String>)> = nodes
        .iter()
        .map(|name| (name.clone(), master.target(name).map_err(|err| err.to_string())))
        .collect();
    for (_, target) in &targets {
        if let Ok(target) = target {
            for (what, path) in [
                ("ssh config_file", &target.ssh.config_file),
                ("ssh identity", &target.ssh.identity),
                ("ssh known_hosts", &target.ssh.known_hosts),
            ] {
                if let Some(path) = path {
                    files.insert((what, master.dir().join(path)));
                }
            }
        }
    }
    for (what, path) in files {
        checks.push(ssh_file(what, &path));
    }
    match crate::setup::Parts::new(master.clone()) {
        Ok(parts) => match parts.history.check_writable() {
            Ok(()) => checks.push(Check::ok("history", parts.history.path().display().to_string())),
            Err(err) => checks.push(Check::failed(
                "history",
                err.to_string(),
                "make the history folder writable by this user, or point `history:` elsewhere",
            )),
        },
        Err(err) => checks.push(Check::failed("history", format!("{err:#}"), "see the message")),
    }
    if master.age().can_encrypt() || !master.sealed_secrets().is_empty() {
        match master.age().check_identity("the master's secrets") {
            Ok(()) => checks.push(Check::ok("age identity", "decrypts the master's secrets")),
            Err(err) => checks.push(Check::failed(
                "age identity",
                err.to_string(),
                "set `age: {identity: PATH}` in pacha.yaml or PACHA_AGE_IDENTITY to an identity of one of the recipients",
            )),
        }
    }
    let Ok(connector) = crate::setup::connector() else {
        checks.push(Check::failed(
            "ssh control folder",
            crate::setup::control_dir().display().to_string(),
            "set XDG_RUNTIME_DIR to a folder this user owns",
        ));
        return;
    };
    for (name, target) in targets {
        let check = format!("node {name}");
        let target = match target {
            Ok(target) => target,
            Err(err) => {
                checks.push(Check::failed(check, err, "fix the node's file"));
                continue;
            }
        };
        let mut connection = match connector.connect(&name, &target) {
            Ok(connection) => connection,
            Err(err) => {
                let err = anyhow::Error::new(err);
                let shown = crate::error::describe(&err);
                let fix = shown.hints.first().cloned().unwrap_or_else(|| {
                    format!(
                        "check that `ssh {}` works from here (host, user, key, network)",
                        target.host
                    )
                });
                checks.push(Check::failed(check, shown.message, fix));
                continue;
            }
        };
        let wanted: Vec<&str> = NODE_PROGRAMS.iter().chain(OPTIONAL_PROGRAMS).copied().collect();
        let missing = connection.missing_programs(&wanted);
        let _ = connection.close();
        let (optional, missing): (Vec<String>, Vec<String>) = match missing {
            Ok(missing) => missing
                .into_iter()
                .partition(|program| OPTIONAL_PROGRAMS.contains(&program.as_str())),
            Err(err) => {
                checks.push(Check::failed(
                    check,
                    err.to_string(),
                    "the node needs a POSIX sh for its SSH user",
                ));
                continue;
            }
        };
        let slower = if optional.is_empty() {
            String::new()
        } else {
            format!(
                " (no {}: pushes work, a little slower; tar and util-linux's setsid speed them up)",
                optional.join(", ")
            )
        };
        checks.push(if missing.is_empty() {
            Check::ok(
                check,
                format!(
                    "reachable as {}, sh and the programs pacha runs are there{slower}",
                    describe(&target)
                ),
            )
        } else {
            Check::failed(
                check,
                format!("reachable, but missing: {}", missing.join(", ")),
                "install GNU coreutils and findutils on the node",
            )
        });
    }
}

fn describe(target: &pacha_core::Target) -> String {
    if target.transport == pacha_core::TransportKind::Local {
        return format!("this machine (local, under {})", target.root);
    }
    let user = target
        .user
        .as_deref()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let port = target.port.map(|port| format!(":{port}")).unwrap_or_default();
    format!("{user}{}{port}", target.host)
}

fn ssh_file(what: &'static str, path: &Path) -> Check {
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Err(err) => Check::failed(
            what,
            format!("{shown}: {err}"),
            format!("create {shown} or fix the path in pacha.yaml"),
        ),
        Ok(meta) if what == "ssh identity" && meta.permissions().mode() & 0o077 != 0 => Check::failed(
            what,
            format!(
                "{shown} is readable by others (mode {:o}); ssh refuses it",
                meta.permissions().mode() & 0o777
            ),
            format!("chmod 600 {shown}"),
        ),
        Ok(_) => Check::ok(what, shown),
    }
}
