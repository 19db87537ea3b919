//! `pacha pull`: run on a node that just booted. It fetches the node's plan from the master
//! over SSH (`pacha bundle` there), applies it here with the local transport (the same
//! snippets, lock and atomic placement as a push), and records the result in the master's
//! history (`pacha record` there).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use pacha_core::{
    Entry, Event, EventKind, Outcome, Plan, PushOptions, Quiet, Snapshot, Track, TransportKind, push, pushed_snapshot,
    record_reported,
};
use pacha_render::Renderer;
use pacha_transport::{LocalConnector, quote};
use serde::{Deserialize, Serialize};

use super::push::{holder, open_history, print_report};
use super::{Context, Status};
use crate::output::Output;

/// What a node sends its master after a pull.
#[derive(Serialize, Deserialize)]
struct Reported {
    event: Event,
    snapshot: Snapshot,
}

/// Splits `[USER@]HOST:/DIR` into the SSH destination and the master folder.
pub(super) fn split_from(from: &str) -> anyhow::Result<(&str, &str)> {
    let Some((destination, dir)) = from.split_once(':') else {
        bail!("--from {from:?}: write [USER@]HOST:/MASTER/DIR");
    };
    if destination.is_empty() || destination.starts_with('-') || dir.is_empty() {
        bail!("--from {from:?}: write [USER@]HOST:/MASTER/DIR");
    }
    Ok((destination, dir))
}

/// Runs pacha on the master with `args`, `input` on its standard input; its standard output.
pub(super) fn on_master(
    destination: &str,
    ssh_config: Option<&Path>,
    remote_pacha: &str,
    dir: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let mut remote = format!("{} --color never --master {}", quote(remote_pacha), quote(dir));
    for arg in args {
        remote.push(' ');
        remote.push_str(&quote(arg));
    }
    let mut command = Command::new("ssh");
    command.args(["-o", "BatchMode=yes", "-T"]);
    if let Some(config) = ssh_config {
        command.arg("-F").arg(config);
    }
    command
        .arg("--")
        .arg(destination)
        .arg(remote)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("running ssh")?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).context("sending to the master")?;
    }
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut stdout).context("reading the master's answer")?;
    }
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait().context("waiting for ssh")?;
    if !status.success() {
        let said = stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("no message")
            .trim_start_matches("error: ");
        bail!(
            "the master {destination}:{dir} answered `{}` with: {said}",
            args.join(" ")
        );
    }
    Ok(stdout)
}

pub fn pull(
    out: &mut Output,
    node: &str,
    state: &str,
    from: &str,
    force: bool,
    remote_pacha: &str,
    ssh_config: Option<&Path>,
) -> anyhow::Result<Status> {
    let (destination, dir) = split_from(from)?;
    let answer = on_master(
        destination,
        ssh_config,
        remote_pacha,
        dir,
        &["bundle", node, state],
        None,
    )?;
    let mut plan: Plan = serde_json::from_slice(&answer).context("reading the plan the master sent")?;
    plan.verify()
        .map_err(|err| anyhow::anyhow!("the plan the master sent is damaged: {err}"))?;
    if plan.node != node {
        bail!("the master sent the plan of {:?}, not {node:?}", plan.node);
    }
    // Here is the node: whatever transport the master uses, apply locally under its root.
    plan.target.transport = TransportKind::Local;
    let options = PushOptions {
        force,
        holder: holder("pull"),
        ..PushOptions::default()
    };
    let report = push(
        std::slice::from_ref(&plan),
        &LocalConnector::default(),
        &options,
        &Quiet,
    )
    .into_iter()
    .next()
    .context("no report")?;
    let recorded = if report.placed && !report.changes.is_empty() {
        let reported = Reported {
            event: Event {
                kind: EventKind::Pull,
                node: node.to_owned(),
                state: Some(state.to_owned()),
                changed: report.changes.iter().map(|change| change.destination.clone()).collect(),
                failed: report.outcome == Outcome::Failed,
                detail: None,
            },
            snapshot: pushed_snapshot(&plan, &report, None, &Track::default()),
        };
        let input = serde_json::to_vec(&reported)?;
        Some(
            on_master(
                destination,
                ssh_config,
                remote_pacha,
                dir,
                &["record", node],
                Some(&input),
            )
            .and_then(|answer| Ok(serde_json::from_slice::<Entry>(&answer)?))
            .map(Some)
            .map_err(|err| err.to_string()),
        )
    } else {
        None
    };
    if out.json {
        out.json_document(&super::push::ReportView::new(&plan, &report, false, recorded.as_ref()))?;
    } else {
        print_report(out, &plan, &report, false, recorded.as_ref())?;
    }
    if let Some(error) = &report.error {
        bail!("pull of {node} failed: {}", super::push::redact(error, &plan.secrets));
    }
    if let Some(Err(err)) = &recorded {
        bail!("the pull of {node} was not recorded in the master's history: {err}");
    }
    Ok(Status::Success)
}

/// `pacha bundle NODE STATE` (on the master, for a pull): the plan as JSON.
pub fn bundle(context: &Context<'_>, out: &mut Output, node: &str, state: &str) -> anyhow::Result<Status> {
    let master = context.master()?;
    let plan = Renderer::new(&master).plan(node, state)?;
    out.raw(serde_json::to_vec(&plan)?)?;
    Ok(Status::Success)
}

/// `pacha record NODE` (on the master, for a pull): records what the node reports.
pub fn record(context: &Context<'_>, out: &mut Output, node: &str) -> anyhow::Result<Status> {
    let master = context.master()?;
    let track = Track::new(&master.node(node)?.track).map_err(|err| anyhow::anyhow!(err))?;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading the node's report")?;
    let reported: Reported = serde_json::from_slice(&input).context("reading the node's report")?;
    if reported.event.node != node {
        bail!("the report is about {:?}, not {node:?}", reported.event.node);
    }
    reported
        .snapshot
        .verify()
        .map_err(|err| anyhow::anyhow!("the node's report is damaged: {err}"))?;
    let history = open_history(&master)?;
    let entry = record_reported(&history, &reported.event, reported.snapshot, &track)?;
    out.raw(serde_json::to_vec(&entry)?)?;
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_master_location() {
        assert_eq!(
            split_from("admin@master:/opt/pacha").unwrap(),
            ("admin@master", "/opt/pacha")
        );
        assert_eq!(split_from("master:relative").unwrap(), ("master", "relative"));
        assert!(split_from("master").is_err());
        assert!(split_from("-oProxyCommand=x:/opt").is_err());
        assert!(split_from(":/opt").is_err());
    }
}
