//! `log`, `show`, `rollback`, `rebuild`, `capture` and `status`: the node histories.

use std::io;

use anyhow::{Context as _, bail};
use pacha_core::{Entry, NodePath, NodeStatus, PushOptions, Quiet, Snapshot, redact};
use serde::Serialize;

use super::push::jobs;
use super::{Context, Status};
use crate::cli::ConnectionArgs;
use crate::error::{NodesFailed, Usage};
use crate::output::{Output, pad, printable, utc_time};
use crate::setup::holder;
use crate::ui::report::{Diffs, print_report};
use crate::ui::views::{EntryView, ReportView};

fn entry_line(out: &Output, entry: &Entry) -> String {
    let style = out.style;
    let master = entry.master.as_deref().map_or_else(String::new, |master| {
        let (commit, dirty) = master
            .strip_suffix("-dirty")
            .map_or((master, ""), |commit| (commit, "-dirty"));
        let short: String = commit.chars().take(12).collect();
        format!("  {}", style.dim(&format!("(master {short}{dirty})")))
    });
    format!(
        "{}  {}  {}  {}{master}",
        style.yellow(&entry.revision[..12]),
        utc_time(entry.time),
        style.dim(&entry.author),
        entry.summary
    )
}

pub(super) fn log(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    max_count: Option<usize>,
    path: Option<&str>,
) -> anyhow::Result<Status> {
    let under = path
        .map(|path| NodePath::parse(path).map_err(|err| Usage(format!("--path {path:?}: {err}"))))
        .transpose()?;
    let parts = context.parts()?;
    let mut entries = parts.with_engine(|engine| engine.log(node))?;
    if let Some(under) = &under {
        let prefix = format!("{}/", under.as_str().trim_end_matches('/'));
        entries.retain(|entry| {
            entry
                .changed
                .iter()
                .any(|changed| changed == under.as_str() || changed.starts_with(&prefix))
        });
    }
    if let Some(count) = max_count {
        entries.truncate(count);
    }
    if out.json {
        out.json_document(&serde_json::json!({
            "node": node,
            "entries": entries.iter().map(EntryView::new).collect::<Vec<_>>(),
        }))?;
    } else if entries.is_empty() {
        out.line(format!("{node} has no recorded history yet"))?;
    } else {
        const SHOWN: usize = 8;
        for entry in &entries {
            out.line(entry_line(out, entry))?;
            for path in entry.changed.iter().take(SHOWN) {
                out.line(format!("    {}", out.style.dim(&printable(path))))?;
            }
            if entry.changed.len() > SHOWN {
                out.line(format!(
                    "    {}",
                    out.style.dim(&format!("… and {} more", entry.changed.len() - SHOWN))
                ))?;
            }
        }
    }
    Ok(Status::Success)
}

pub(super) fn show(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    rev: Option<&str>,
    path: Option<&str>,
    show_secrets: bool,
) -> anyhow::Result<Status> {
    let parts = context.parts()?;
    let ((entry, snapshot), secrets) = parts.with_engine(|engine| {
        let shown = engine.show(node, rev)?;
        let secrets = engine.secrets(node, shown.0.state.as_deref());
        anyhow::Ok((shown, secrets))
    })?;
    if let Some(path) = path {
        let wanted = NodePath::parse(path).with_context(|| format!("{path:?} is not a path on the node"))?;
        let Some(file) = snapshot.file(&wanted) else {
            bail!(
                "{wanted} is not recorded at {} (see `pacha show {node} {}`)",
                &entry.revision[..12],
                &entry.revision[..12]
            );
        };
        if file.secret && !show_secrets {
            // What a secret file held (an old value too) stays unshown unless asked for.
            if out.json {
                out.json_document(&serde_json::json!({"revision": entry.revision, "path": file.path, "content": "<redacted>", "binary": false, "secret": true, "size": file.content.len(), "sha256": file.sha256}))?;
            } else {
                out.line("<redacted>")?;
            }
            return Ok(Status::Success);
        }
        match std::str::from_utf8(&file.content) {
            Ok(text) => {
                let text = if show_secrets {
                    text.to_owned()
                } else {
                    redact(text, &secrets)
                };
                if out.json {
                    out.json_document(&serde_json::json!({"revision": entry.revision, "path": file.path, "content": text, "binary": false}))?;
                } else {
                    out.raw(text)?;
                }
            }
            Err(_) if out.json => {
                out.json_document(&serde_json::json!({"revision": entry.revision, "path": file.path, "content": null, "binary": true, "size": file.content.len()}))?;
            }
            Err(_) => out.raw(&file.content)?,
        }
        return Ok(Status::Success);
    }
    if out.json {
        out.json_document(&serde_json::json!({
            "node": node,
            "entry": EntryView::new(&entry),
            "files": snapshot.files.iter().map(|file| serde_json::json!({
                "path": file.path, "mode": file.mode, "owner": file.owner, "group": file.group,
                "size": file.content.len(), "sha256": file.sha256, "secret": file.secret,
            })).collect::<Vec<_>>(),
            "scripts": snapshot.scripts.iter().map(|script| serde_json::json!({
                "stage": script.stage, "phase": script.phase, "name": script.name, "sha256": script.sha256,
            })).collect::<Vec<_>>(),
            "links": snapshot.links.iter().map(|link| serde_json::json!({
                "path": link.path, "target": link.target, "managed": link.managed,
            })).collect::<Vec<_>>(),
            "dirs": snapshot.dirs.iter().map(|dir| serde_json::json!({
                "path": dir.path, "mode": dir.mode, "owner": dir.owner, "group": dir.group,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(Status::Success);
    }
    out.line(entry_line(out, &entry))?;
    print_snapshot(out, &snapshot)?;
    Ok(Status::Success)
}

fn print_snapshot(out: &mut Output, snapshot: &Snapshot) -> io::Result<()> {
    let width = snapshot
        .files
        .iter()
        .map(|file| file.path.as_str().chars().count())
        .max()
        .unwrap_or(0);
    for file in &snapshot.files {
        out.line(format!(
            "  {}  {}  {}:{}  {}",
            pad(&printable(file.path.as_str()), width),
            file.mode,
            file.owner,
            file.group,
            out.style.dim(&file.sha256.short(12))
        ))?;
    }
    for link in &snapshot.links {
        out.line(format!("  {} -> {}", pad(link.path.as_str(), width), link.target))?;
    }
    for dir in &snapshot.dirs {
        out.line(format!(
            "  {}  {}  {}:{}  {}",
            pad(dir.path.as_str(), width),
            dir.mode,
            dir.owner,
            dir.group,
            out.style.dim("folder")
        ))?;
    }
    for script in &snapshot.scripts {
        out.line(format!(
            "  {} {}/{}",
            out.style.cyan(&pad(script.stage.as_str(), 4)),
            script.phase,
            script.name
        ))?;
    }
    Ok(())
}

/// Prints a rollback's or rebuild's report and picks the exit status.
fn restored(out: &mut Output, done: &pacha_core::Restored, what: &str) -> anyhow::Result<Status> {
    if out.json {
        out.json_document(&serde_json::json!({
            "from": EntryView::new(&done.from),
            "recorded": done.report.recorded.as_ref().map(|entry| &entry.revision),
            "node": ReportView::new(&done.plan, &done.report, Diffs::None),
        }))?;
    } else {
        out.line(format!(
            "{what} {} from {}",
            done.from.node,
            entry_line(out, &done.from)
        ))?;
        print_report(out, &done.plan, &done.report, Diffs::None)?;
    }
    if let Some(error) = &done.report.error {
        return Err(NodesFailed(format!(
            "{what} of {} failed: {}",
            done.from.node,
            done.plan.redact(&error.to_string())
        ))
        .into());
    }
    Ok(Status::Success)
}

pub(super) fn rollback_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    rev: &str,
) -> anyhow::Result<Status> {
    let parts = context.recording_parts(true)?;
    let options = PushOptions {
        holder: holder("rollback"),
        ..PushOptions::default()
    };
    let done = parts.with_engine(|engine| engine.rollback(node, rev, &options, &Quiet))?;
    restored(out, &done, "rollback")
}

pub(super) fn rebuild_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    host: Option<&str>,
    root: Option<&str>,
) -> anyhow::Result<Status> {
    let parts = context.recording_parts(false)?;
    let mut target = parts.master.target(node)?;
    if let Some(host) = host {
        if host.starts_with('-') || host.is_empty() {
            return Err(Usage(format!("--host {host:?} is not a valid SSH destination")).into());
        }
        // A new destination brings its own user and port (in it, or in the ssh config).
        target.host = host.to_owned();
        target.port = None;
        target.user = None;
    }
    if let Some(root) = root {
        // As in node files: a root is an absolute path on the host.
        target.root = NodePath::parse(root)
            .map_err(|err| Usage(format!("--root {root:?}: {err}; write an absolute path on the host")))?
            .to_string();
    }
    let options = PushOptions {
        holder: holder("rebuild"),
        ..PushOptions::default()
    };
    let done = parts.with_engine(|engine| engine.rebuild(node, Some(target), &options, &Quiet))?;
    restored(out, &done, "rebuild")
}

pub(super) fn capture_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    paths: &[String],
) -> anyhow::Result<Status> {
    let parts = context.recording_parts(false)?;
    let only = paths
        .iter()
        .map(|path| NodePath::parse(path).map_err(|err| Usage(format!("{path:?}: {err}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let captured = parts.with_engine(|engine| engine.capture(node, &only, &holder("capture")))?;
    if out.json {
        out.json_document(&serde_json::json!({
            "node": node,
            "recorded": captured.recorded.as_ref().map(EntryView::new),
            "changed": captured.changed,
            "skipped": captured.skipped.iter().map(|(path, why)| serde_json::json!({"path": path, "reason": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        match &captured.recorded {
            Some(entry) => out.line(format!(
                "{node}: captured {} changed file{} as {}",
                captured.changed.len(),
                if captured.changed.len() == 1 { "" } else { "s" },
                out.style.yellow(&entry.revision[..12])
            ))?,
            None => out.line(format!("{node}: the live files match the history; nothing recorded"))?,
        }
        for path in &captured.changed {
            out.line(format!("  {}", printable(path.as_str())))?;
        }
        for (path, why) in &captured.skipped {
            out.line(format!(
                "  {} {}: {why}",
                out.style.yellow("skipped"),
                printable(path.as_str())
            ))?;
        }
    }
    Ok(Status::Success)
}

#[derive(Serialize)]
struct StatusView<'a> {
    node: &'a str,
    latest: Option<EntryView<'a>>,
    last_push: Option<EntryView<'a>>,
    drifted: bool,
    drift: Vec<serde_json::Value>,
    error: Option<String>,
}

/// `pacha history sync`: sends the records the shared history's remote does not have.
pub(super) fn sync_command(context: &Context<'_>, out: &mut Output) -> anyhow::Result<Status> {
    let parts = context.parts()?;
    let Some(remote) = parts.history.remote().map(pacha_vcs::Remote::shown) else {
        return Err(Usage("the history is not shared: set `history: {remote: URL}` in pacha.yaml".to_owned()).into());
    };
    let synced = parts.history.sync()?;
    if out.json {
        out.json_document(&serde_json::json!({
            "remote": remote,
            "sent": synced.sent,
            "received": synced.received,
        }))?;
    } else {
        let records = |count: usize| format!("{count} record{}", if count == 1 { "" } else { "s" });
        out.line(format!(
            "{remote}: {} sent, {} received",
            records(synced.sent),
            records(synced.received)
        ))?;
    }
    Ok(Status::Success)
}

pub(super) fn status_command(
    context: &Context<'_>,
    out: &mut Output,
    node: Option<&str>,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let parts = context.parts()?;
    let nodes: Vec<String> = match node {
        Some(node) => parts.master.expand(node)?,
        None => parts.master.leaf_nodes(),
    };
    let jobs = jobs(args, &parts.master, nodes.len());
    // As of the last fetch or push: status never waits for the remote.
    let unsynced = parts.history.unsynced()?;
    let results: Vec<Result<NodeStatus, String>> = parts.with_engine(|engine| {
        engine
            .status(&nodes, jobs)
            .into_iter()
            .map(|result| result.map_err(|err| err.to_string()))
            .collect()
    });
    let drifted = results
        .iter()
        .any(|result| result.as_ref().is_ok_and(|status| !status.drift.is_empty()));
    let failed: Vec<&str> = nodes
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.is_err())
        .map(|(node, _)| node.as_str())
        .collect();
    if out.json {
        let views: Vec<StatusView<'_>> = nodes
            .iter()
            .zip(&results)
            .map(|(node, result)| match result {
                Ok(status) => StatusView {
                    node,
                    latest: status.latest.as_ref().map(EntryView::new),
                    last_push: status.last_push.as_ref().map(EntryView::new),
                    drifted: !status.drift.is_empty(),
                    drift: status
                        .drift
                        .iter()
                        .map(|drift| serde_json::json!({"path": drift.path, "what": drift.what}))
                        .collect(),
                    error: None,
                },
                Err(err) => StatusView {
                    node,
                    latest: None,
                    last_push: None,
                    drifted: false,
                    drift: Vec::new(),
                    error: Some(err.clone()),
                },
            })
            .collect();
        let unsynced: Vec<EntryView<'_>> = unsynced.iter().map(EntryView::new).collect();
        out.json_document(&serde_json::json!({ "nodes": views, "drifted": drifted, "unsynced": unsynced }))?;
    } else {
        let width = nodes.iter().map(|node| node.chars().count()).max().unwrap_or(0);
        let style = out.style;
        for (node, result) in nodes.iter().zip(&results) {
            let name = style.bold(&pad(node, width));
            match result {
                Err(err) => out.line(format!("{name}  {} {err}", style.red("error:")))?,
                Ok(status) => {
                    let Some(latest) = &status.latest else {
                        out.line(format!("{name}  {}", style.dim("never pushed")))?;
                        continue;
                    };
                    let pushed = match &status.last_push {
                        Some(push) => format!(
                            "pushed {} {} at {}",
                            push.state.as_deref().unwrap_or("-"),
                            &push.revision[..12],
                            utc_time(push.time)
                        ),
                        None => "never pushed".to_owned(),
                    };
                    let latest_text = if status
                        .last_push
                        .as_ref()
                        .is_some_and(|push| push.revision == latest.revision)
                    {
                        String::new()
                    } else {
                        format!(", latest {} {}", latest.kind, &latest.revision[..12])
                    };
                    if status.drift.is_empty() {
                        out.line(format!("{name}  {pushed}{latest_text}  {}", style.green("in sync")))?;
                    } else {
                        out.line(format!(
                            "{name}  {pushed}{latest_text}  {}",
                            style.red(&format!(
                                "DRIFTED ({} file{})",
                                status.drift.len(),
                                if status.drift.len() == 1 { "" } else { "s" }
                            ))
                        ))?;
                        for drift in &status.drift {
                            out.line(format!("    {}: {}", printable(drift.path.as_str()), drift.what))?;
                        }
                    }
                }
            }
        }
    }
    if !out.json && !unsynced.is_empty() {
        let style = out.style;
        out.line(style.yellow(&format!(
            "{} record{} not yet in the shared history (`pacha history sync` sends them):",
            unsynced.len(),
            if unsynced.len() == 1 { "" } else { "s" }
        )))?;
        for entry in &unsynced {
            out.line(format!("    {}", entry_line(out, entry)))?;
        }
    }
    if !failed.is_empty() {
        return Err(NodesFailed(format!("could not check {}", failed.join(", "))).into());
    }
    Ok(if drifted { Status::Changes } else { Status::Success })
}

/// `pacha diff NODE --rev A[..B]`: what changed on the node between two recorded revisions
/// (B: the latest when left out), from the history alone. Files that hold a secret are said
/// to have changed, never printed (unless `--show-secrets`).
pub(super) fn diff_revisions(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    spec: &str,
    show_secrets: bool,
) -> anyhow::Result<Status> {
    let (from, to) = match spec.split_once("..") {
        Some((from, to)) => (from, if to.is_empty() { "HEAD" } else { to }),
        None => (spec, "HEAD"),
    };
    if from.is_empty() {
        return Err(Usage(format!("--rev {spec:?}: write A or A..B (revisions, HEAD or HEAD~N)")).into());
    }
    let parts = context.parts()?;
    let ((from_entry, old), (to_entry, new)) =
        parts.with_engine(|engine| anyhow::Ok((engine.show(node, Some(from))?, engine.show(node, Some(to))?)))?;
    let changes = snapshot_changes(&old, &new, show_secrets);
    if out.json {
        out.json_document(&serde_json::json!({
            "node": node,
            "from": from_entry.revision,
            "to": to_entry.revision,
            "changes": changes,
        }))?;
    } else {
        let style = out.style;
        out.line(format!(
            "{node}: {} .. {} ({} change{})",
            style.yellow(&from_entry.revision[..12]),
            style.yellow(&to_entry.revision[..12]),
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ))?;
        for change in &changes {
            let mut details = Vec::new();
            for (what, values) in [
                ("mode", &change.mode),
                ("owner", &change.owner),
                ("group", &change.group),
            ] {
                if let Some([from, to]) = values {
                    details.push(format!("{what} {from} -> {to}"));
                }
            }
            if let Some([from, to]) = &change.target {
                details.push(format!("link {} -> {}", printable(from), printable(to)));
            }
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(", "))
            };
            out.line(format!("  {} {}{details}", change.kind, printable(&change.path)))?;
            if let Some(diff) = &change.diff {
                for line in diff.lines() {
                    out.line(format!("    {line}"))?;
                }
            } else if change.secret && change.content_changed {
                out.line(format!(
                    "    {}",
                    style.dim("content changed (holds secrets); --show-secrets prints it")
                ))?;
            }
        }
    }
    Ok(if changes.is_empty() {
        Status::Success
    } else {
        Status::Changes
    })
}

/// One path that differs between two snapshots.
#[derive(Serialize)]
struct SnapshotChange {
    path: String,
    /// `create`, `update`, `attributes`, `remove`, or `link` for a symbolic link.
    kind: &'static str,
    secret: bool,
    #[serde(skip)]
    content_changed: bool,
    mode: Option<[String; 2]>,
    owner: Option<[String; 2]>,
    group: Option<[String; 2]>,
    target: Option<[String; 2]>,
    /// A unified diff of the contents, when both are text and neither holds a secret.
    diff: Option<String>,
}

fn snapshot_changes(old: &Snapshot, new: &Snapshot, show_secrets: bool) -> Vec<SnapshotChange> {
    let mut paths: Vec<&NodePath> = old.files.iter().chain(&new.files).map(|file| &file.path).collect();
    paths.sort();
    paths.dedup();
    let pair = |from: String, to: String| (from != to).then_some([from, to]);
    let mut changes = Vec::new();
    for path in paths {
        let (before, after) = (old.file(path), new.file(path));
        let secret = before.is_some_and(|file| file.secret) || after.is_some_and(|file| file.secret);
        let content_changed = before.map(|file| file.sha256) != after.map(|file| file.sha256);
        let (kind, mode, owner, group) = match (before, after) {
            (None, Some(_)) => ("create", None, None, None),
            (Some(_), None) => ("remove", None, None, None),
            (Some(before), Some(after)) => {
                let mode = pair(before.mode.to_string(), after.mode.to_string());
                let owner = pair(before.owner.clone(), after.owner.clone());
                let group = pair(before.group.clone(), after.group.clone());
                if !content_changed && mode.is_none() && owner.is_none() && group.is_none() {
                    continue;
                }
                (
                    if content_changed { "update" } else { "attributes" },
                    mode,
                    owner,
                    group,
                )
            }
            (None, None) => continue,
        };
        let diff = (content_changed && (show_secrets || !secret))
            .then(|| {
                let text = |file: Option<&pacha_core::RecordedFile>| {
                    std::str::from_utf8(file.map_or(&b""[..], |file| &file.content)).map(str::to_owned)
                };
                match (text(before), text(after)) {
                    (Ok(old), Ok(new)) => Some(
                        similar::TextDiff::from_lines(&old, &new)
                            .unified_diff()
                            .context_radius(3)
                            .header(&format!("{path} (before)"), &format!("{path} (after)"))
                            .to_string(),
                    ),
                    _ => None,
                }
            })
            .flatten();
        changes.push(SnapshotChange {
            path: path.to_string(),
            kind,
            secret,
            content_changed,
            mode,
            owner,
            group,
            target: None,
            diff,
        });
    }
    let mut links: Vec<&NodePath> = old.links.iter().chain(&new.links).map(|link| &link.path).collect();
    links.sort();
    links.dedup();
    for path in links {
        let (before, after) = (old.link(path), new.link(path));
        let target = match (before, after) {
            (Some(before), Some(after)) if before.target == after.target => continue,
            (before, after) => Some([
                before.map_or_else(String::new, |link| link.target.clone()),
                after.map_or_else(String::new, |link| link.target.clone()),
            ]),
        };
        changes.push(SnapshotChange {
            path: path.to_string(),
            kind: "link",
            secret: false,
            content_changed: false,
            mode: None,
            owner: None,
            group: None,
            target,
            diff: None,
        });
    }
    changes
}
