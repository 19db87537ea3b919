//! `pacha push`, `pacha diff` and `pacha disconnect`: rendering, then the nodes.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use pacha_core::{
    Change, ChangeKind, Entry, Master, NodeReport, Outcome, Plan, PushOptions, Reporter, Target, Track, push,
    record_push,
};
use pacha_render::{Renderer, render_in_order};
use pacha_transport::SshConnector;
use pacha_vcs::{Author, GitHistory};
use serde::Serialize;

use super::{Context, Status};
use crate::cli::ConnectionArgs;
use crate::output::{Output, Style};

/// Renders every leaf of `node`; nothing goes further if any plan fails.
pub fn render_all(context: &Context<'_>, master: &Master, node: &str, state: &str) -> anyhow::Result<Vec<Plan>> {
    let nodes = master.expand(node)?;
    let renderer = Renderer::new(master);
    let mut plans = Vec::with_capacity(nodes.len());
    render_in_order(
        &renderer,
        &nodes,
        state,
        context.threads(),
        |_, plan| -> anyhow::Result<()> {
            plans.push(plan?);
            Ok(())
        },
    )?;
    Ok(plans)
}

/// The private folder where SSH master connections are kept between runs: short, because
/// socket paths are limited to 108 bytes.
pub fn control_dir() -> PathBuf {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(runtime);
        if dir.is_dir() {
            return dir.join("pacha");
        }
    }
    let uid = std::fs::metadata("/proc/self").map_or(0, |meta| std::os::unix::fs::MetadataExt::uid(&meta));
    PathBuf::from(format!("/tmp/pacha-{uid}"))
}

pub fn connector() -> anyhow::Result<SshConnector> {
    let dir = control_dir();
    SshConnector::new(&dir).with_context(|| format!("preparing the SSH control folder {}", dir.display()))
}

/// Who is pushing, as a busy node tells a second pacha.
pub fn holder(command: &str) -> String {
    let (user, host) = user_and_host();
    format!("pacha {command} by {user}@{host} (pid {})", std::process::id())
}

/// The user running pacha and this machine's name.
fn user_and_host() -> (String, String) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "pacha".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_owned(), |name| name.trim().to_owned());
    (user, host)
}

/// How many nodes to work on at once.
pub fn jobs(args: &ConnectionArgs, master: &Master, nodes: usize) -> usize {
    args.jobs
        .map(usize::from)
        .or(master.settings().jobs)
        .unwrap_or_else(|| nodes.clamp(1, 32))
}

/// Handles one node's finished report, in the expanded order.
type OnNode<'a> = Box<dyn Fn(usize, &NodeReport) + Sync + 'a>;

/// Live progress on stderr (on a terminal only), and each node's report printed as soon as it
/// and every node before it are done, so output stays in the expanded order.
struct CliReporter<'a> {
    bar: Option<ProgressBar>,
    on_node: OnNode<'a>,
    pending: Mutex<(usize, BTreeMap<usize, NodeReport>)>,
}

impl<'a> CliReporter<'a> {
    fn new(count: usize, show_progress: bool, on_node: OnNode<'a>) -> CliReporter<'a> {
        let bar = (show_progress && io::stderr().is_terminal() && count > 0).then(|| {
            let bar = ProgressBar::new(count as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        CliReporter {
            bar,
            on_node,
            pending: Mutex::new((0, BTreeMap::new())),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for CliReporter<'_> {
    fn step(&self, node: &str, step: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{node}: {step}"));
        }
    }

    fn finished(&self, index: usize, report: &NodeReport) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.1.insert(index, report.clone());
        loop {
            let next = pending.0;
            let Some(ready) = pending.1.remove(&next) else {
                break;
            };
            match &self.bar {
                Some(bar) => bar.suspend(|| (self.on_node)(next, &ready)),
                None => (self.on_node)(next, &ready),
            }
            pending.0 += 1;
        }
    }
}

/// What recording a node's push gave: the new entry, nothing (no change), or why it failed.
pub type Recorded = Result<Option<Entry>, String>;

/// The person running pacha, for the history's commits.
pub fn author() -> Author {
    Author::from_git_config().unwrap_or_else(|| {
        let (user, host) = user_and_host();
        Author::new(user.clone(), format!("{user}@{host}"))
    })
}

/// The master's history, created on first use.
pub fn open_history(master: &Master) -> anyhow::Result<GitHistory> {
    Ok(GitHistory::open(&master.history_dir(), author())?)
}

/// Runs a push (or a dry run, or a diff), records each node that changed in the history
/// (unless it is a dry run), prints every node's report and picks the exit status.
fn run_push(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: &str,
    args: &ConnectionArgs,
    options: PushOptions,
) -> anyhow::Result<Status> {
    let diffs = options.read_contents;
    let master = context.master()?;
    let plans = render_all(context, &master, node, state)?;
    let history = if options.dry_run {
        None
    } else {
        Some(open_history(&master)?)
    };
    let connector = connector()?;
    let options = PushOptions {
        jobs: jobs(args, &master, plans.len()),
        ..options
    };
    let json = out.json;
    let printer = Mutex::new(&mut *out);
    let records: Mutex<Vec<Option<Recorded>>> = Mutex::new(vec![None; plans.len()]);
    let on_node = |index: usize, report: &NodeReport| {
        let Some(plan) = plans.get(index) else { return };
        let recorded = history.as_ref().map(|history| {
            let track = master
                .node(&plan.node)
                .map_err(|err| err.to_string())
                .and_then(|node| Track::new(&node.track));
            track.and_then(|track| record_push(history, plan, report, &track).map_err(|err| err.to_string()))
        });
        if !json {
            let mut out = printer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = print_report(&mut out, plan, report, diffs, recorded.as_ref()).and_then(|()| out.flush());
        }
        records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = recorded;
    };
    let reporter = CliReporter::new(plans.len(), !json, Box::new(on_node));
    let reports = push(&plans, &connector, &options, &reporter);
    reporter.finish();
    drop(reporter);
    let records = records.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    finish(out, &plans, &reports, &records, diffs)
}

pub fn push_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: &str,
    dry_run: bool,
    force: bool,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let options = PushOptions {
        dry_run,
        force,
        holder: holder("push"),
        ..PushOptions::default()
    };
    run_push(context, out, node, state, args, options)
}

/// `pacha diff`: a dry run that also reads the live contents of changed files.
pub fn diff_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: &str,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let options = PushOptions {
        dry_run: true,
        read_contents: true,
        holder: holder("diff"),
        ..PushOptions::default()
    };
    run_push(context, out, node, state, args, options)
}

/// Prints the summary (or the JSON document) and picks the exit status.
fn finish(
    out: &mut Output,
    plans: &[Plan],
    reports: &[NodeReport],
    records: &[Option<Recorded>],
    diffs: bool,
) -> anyhow::Result<Status> {
    let count = |outcome| reports.iter().filter(|report| report.outcome == outcome).count();
    let (changed, unchanged, would, failed) = (
        count(Outcome::Changed),
        count(Outcome::Unchanged),
        count(Outcome::WouldChange),
        count(Outcome::Failed),
    );
    if out.json {
        let nodes: Vec<ReportView<'_>> = plans
            .iter()
            .zip(reports)
            .zip(records)
            .map(|((plan, report), recorded)| ReportView::new(plan, report, diffs, recorded.as_ref()))
            .collect();
        out.json_document(&serde_json::json!({
            "nodes": nodes,
            "summary": {"changed": changed, "unchanged": unchanged, "would_change": would, "failed": failed},
        }))?;
    } else if reports.len() > 1 {
        let style = out.style;
        let mut parts = Vec::new();
        for (number, label) in [
            (changed, "changed"),
            (would, "would change"),
            (unchanged, "unchanged"),
            (failed, "failed"),
        ] {
            if number > 0 {
                parts.push(format!("{number} {label}"));
            }
        }
        out.line(style.bold(&format!("{} nodes: {}", reports.len(), parts.join(", "))))?;
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} node{} failed: {}",
            reports.len(),
            if reports.len() == 1 { "" } else { "s" },
            reports
                .iter()
                .filter(|report| report.outcome == Outcome::Failed)
                .map(|report| report.node.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let unrecorded: Vec<&str> = plans
        .iter()
        .zip(records)
        .filter(|(_, recorded)| matches!(recorded, Some(Err(_))))
        .map(|(plan, _)| plan.node.as_str())
        .collect();
    if !unrecorded.is_empty() {
        anyhow::bail!(
            "the push of {} was not recorded in the history (see above)",
            unrecorded.join(", ")
        );
    }
    Ok(if would > 0 { Status::Changes } else { Status::Success })
}

/// Replaces every secret value in `text` by `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|secret| !secret.is_empty()).collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "<redacted>")
    })
}

fn change_line(change: &Change, style: Style) -> String {
    let mut details = Vec::new();
    if let Some((from, to)) = &change.mode {
        details.push(format!("mode {from} -> {to}"));
    }
    if let Some((from, to)) = &change.owner {
        details.push(format!("owner {from} -> {to}"));
    }
    if let Some((from, to)) = &change.group {
        details.push(format!("group {from} -> {to}"));
    }
    let kind = match change.kind {
        ChangeKind::Create => style.green("create "),
        ChangeKind::Update => style.yellow("update "),
        ChangeKind::Attributes => style.yellow("attrs  "),
        ChangeKind::ReplaceSymlink => style.yellow("replace symlink"),
    };
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    format!("  {kind} {}{details}", change.destination)
}

/// A unified diff of a change, secrets redacted.
pub fn unified_diff(node: &str, state: &str, change: &Change, planned: &[u8], secrets: &[String]) -> String {
    let before = change.before.as_deref().unwrap_or_default();
    match (std::str::from_utf8(before), std::str::from_utf8(planned)) {
        (Ok(old), Ok(new)) => {
            let old = redact(old, secrets);
            let new = redact(new, secrets);
            let header_old = if change.kind == ChangeKind::Create {
                "/dev/null".to_owned()
            } else {
                format!("{node}:{} (live)", change.destination)
            };
            similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header(&header_old, &format!("{node}:{} ({state})", change.destination))
                .to_string()
        }
        _ => format!("binary files differ ({} -> {} bytes)\n", before.len(), planned.len()),
    }
}

pub fn print_report(
    out: &mut Output,
    plan: &Plan,
    report: &NodeReport,
    diffs: bool,
    recorded: Option<&Recorded>,
) -> io::Result<()> {
    let style = out.style;
    let outcome = match report.outcome {
        Outcome::Unchanged => style.dim("unchanged"),
        Outcome::Changed => style.green("changed"),
        Outcome::WouldChange => style.yellow("would change"),
        Outcome::Failed => style.red("FAILED"),
    };
    let mut summary = format!("{} {outcome}", style.bold(&report.node));
    if !report.changes.is_empty() {
        summary.push_str(&format!(
            ", {} file{}",
            report.changes.len(),
            if report.changes.len() == 1 { "" } else { "s" }
        ));
    }
    if !report.scripts.is_empty() {
        summary.push_str(&format!(
            ", {} script{}",
            report.scripts.len(),
            if report.scripts.len() == 1 { "" } else { "s" }
        ));
    }
    summary.push_str(&style.dim(&format!(" ({:.2} s)", report.timings.total.as_secs_f64())));
    out.line(summary)?;
    if let Some(error) = &report.error {
        out.line(format!("  {} {}", style.red("error:"), redact(error, &plan.secrets)))?;
    }
    if let Some(pending) = &report.pending_post {
        let verb = if report.outcome == Outcome::WouldChange {
            "are due"
        } else {
            "were due"
        };
        out.line(format!(
            "  post scripts of an interrupted push {verb} ({} changed files)",
            pending.len()
        ))?;
    }
    for change in &report.changes {
        out.line(change_line(change, style))?;
        if diffs
            && matches!(
                change.kind,
                ChangeKind::Create | ChangeKind::Update | ChangeKind::ReplaceSymlink
            )
            && let Some(file) = plan.files.iter().find(|file| file.destination == change.destination)
        {
            for line in unified_diff(&plan.node, &plan.state, change, &file.content, &plan.secrets).lines() {
                let line = if line.starts_with('+') && !line.starts_with("+++") {
                    style.green(line)
                } else if line.starts_with('-') && !line.starts_with("---") {
                    style.red(line)
                } else {
                    line.to_owned()
                };
                out.line(format!("    {line}"))?;
            }
        }
    }
    print_scripts(out, plan, report)?;
    match recorded {
        Some(Ok(Some(entry))) => out.line(format!("  recorded {}", style.dim(&entry.revision[..12])))?,
        Some(Err(err)) => out.line(format!("  {} recording the history failed: {err}", style.red("error:")))?,
        _ => {}
    }
    Ok(())
}

/// Prints each script's status and output.
fn print_scripts(out: &mut Output, plan: &Plan, report: &NodeReport) -> io::Result<()> {
    let style = out.style;
    for run in &report.scripts {
        let status = if run.succeeded() {
            style.green("ok")
        } else {
            style.red(&format!("exit status {}", run.status))
        };
        out.line(format!("  {} {status}", style.cyan(&run.id)))?;
        let text = redact(&String::from_utf8_lossy(&run.output), &plan.secrets);
        for line in text.lines() {
            out.line(format!("    {} {line}", style.dim("|")))?;
        }
    }
    Ok(())
}

/// A node's report as `push --json` and `diff --json` print it.
#[derive(Serialize)]
pub struct ReportView<'a> {
    node: &'a str,
    host: &'a str,
    state: &'a str,
    outcome: &'static str,
    error: Option<String>,
    changes: Vec<ChangeView>,
    pending_post: Option<Vec<&'a str>>,
    scripts: Vec<ScriptView>,
    timings: TimingsView,
    /// The history revision recorded for this node's push, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history_error: Option<String>,
}

#[derive(Serialize)]
struct ChangeView {
    destination: String,
    kind: &'static str,
    mode: Option<FromTo>,
    owner: Option<FromTo>,
    group: Option<FromTo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

#[derive(Serialize)]
struct FromTo {
    from: String,
    to: String,
}

#[derive(Serialize)]
struct ScriptView {
    id: String,
    status: i32,
    output: String,
}

#[derive(Serialize)]
struct TimingsView {
    connect_ms: u128,
    inspect_ms: u128,
    apply_ms: u128,
    total_ms: u128,
}

impl<'a> ReportView<'a> {
    pub fn new(plan: &'a Plan, report: &'a NodeReport, diffs: bool, recorded: Option<&Recorded>) -> ReportView<'a> {
        let from_to = |pair: &Option<(String, String)>| {
            pair.as_ref().map(|(from, to)| FromTo {
                from: from.clone(),
                to: to.clone(),
            })
        };
        ReportView {
            node: &report.node,
            host: &report.host,
            state: &report.state,
            outcome: report.outcome.as_str(),
            error: report.error.as_ref().map(|error| redact(error, &plan.secrets)),
            changes: report
                .changes
                .iter()
                .map(|change| ChangeView {
                    destination: change.destination.to_string(),
                    kind: change.kind.as_str(),
                    mode: change.mode.map(|(from, to)| FromTo {
                        from: from.to_string(),
                        to: to.to_string(),
                    }),
                    owner: from_to(&change.owner),
                    group: from_to(&change.group),
                    diff: diffs
                        .then(|| plan.files.iter().find(|file| file.destination == change.destination))
                        .flatten()
                        .filter(|_| change.kind != ChangeKind::Attributes)
                        .map(|file| unified_diff(&plan.node, &plan.state, change, &file.content, &plan.secrets)),
                })
                .collect(),
            pending_post: report
                .pending_post
                .as_ref()
                .map(|paths| paths.iter().map(|path| path.as_str()).collect()),
            scripts: report
                .scripts
                .iter()
                .map(|run| ScriptView {
                    id: run.id.clone(),
                    status: run.status,
                    output: redact(&String::from_utf8_lossy(&run.output), &plan.secrets),
                })
                .collect(),
            timings: TimingsView {
                connect_ms: report.timings.connect.as_millis(),
                inspect_ms: report.timings.inspect.as_millis(),
                apply_ms: report.timings.apply.as_millis(),
                total_ms: report.timings.total.as_millis(),
            },
            recorded: recorded
                .and_then(|recorded| recorded.as_ref().ok())
                .and_then(|entry| entry.as_ref())
                .map(|entry| entry.revision.clone()),
            history_error: recorded.and_then(|recorded| recorded.as_ref().err()).cloned(),
        }
    }
}

pub fn disconnect(context: &Context<'_>, out: &mut Output, node: Option<&str>) -> anyhow::Result<Status> {
    let connector = connector()?;
    let closed = match node {
        None => connector.disconnect_all(),
        Some(node) => {
            let master = context.master()?;
            let mut closed = 0;
            for leaf in master.expand(node)? {
                let target: Target = master.target(&leaf)?;
                closed += usize::from(connector.disconnect(&target));
            }
            closed
        }
    };
    if out.json {
        out.json_document(&serde_json::json!({ "closed": closed }))?;
    } else {
        out.line(format!(
            "closed {closed} kept connection{}",
            if closed == 1 { "" } else { "s" }
        ))?;
    }
    Ok(Status::Success)
}
