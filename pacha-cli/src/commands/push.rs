//! `pacha push`, `pacha diff` and `pacha disconnect`.

use std::sync::{Mutex, PoisonError};

use pacha_core::{Limit, Master, NodeReport, Outcome, Plan, PushOptions, Skip};

use super::{Context, Status};
use crate::cli::{ConnectionArgs, RolloutArgs};
use crate::error::{NodesFailed, Usage};
use crate::output::{Output, printable};
use crate::setup::{connector, holder};
use crate::ui::progress::Progress;
use crate::ui::report::{Diffs, print_report};
use crate::ui::views::ReportView;

/// How many nodes to work on at once.
pub(super) fn jobs(args: &ConnectionArgs, master: &Master, nodes: usize) -> usize {
    args.jobs
        .map(usize::from)
        .or(master.settings().jobs)
        .unwrap_or_else(|| nodes.clamp(1, 32))
}

/// Renders every leaf of `node`, pushes (or dry-runs, or diffs) it, prints each node's report
/// as it is done and in the expanded order, and picks the exit status. The engine records.
#[expect(clippy::too_many_arguments, reason = "the flags of push and diff, and how to print")]
fn run_push(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: Option<&str>,
    rollout: &RolloutArgs,
    args: &ConnectionArgs,
    options: PushOptions,
    diffs: Diffs,
) -> anyhow::Result<Status> {
    let limit = rollout
        .limit
        .as_deref()
        .map(Limit::parse)
        .transpose()
        .map_err(|err| Usage(format!("--limit: {err}")))?;
    let parts = context.parts()?;
    parts.with_engine(|engine| {
        let defaults = engine.rollout(node);
        let options = PushOptions {
            serial: rollout.serial.map(usize::from).or(defaults.serial),
            max_fail: rollout.max_fail.map(usize::from).or(defaults.max_fail),
            ..options
        };
        let plans = engine.plans_for(node, state, limit.as_ref())?;
        if state.is_none() && !out.json {
            let states: Vec<String> = plans
                .iter()
                .map(|plan| format!("{} {}", printable(&plan.node), printable(&plan.state)))
                .collect();
            out.line(out.style.dim(&format!(
                "no state given: each node goes to its last recorded state ({})",
                states.join(", ")
            )))?;
        }
        let options = PushOptions {
            jobs: jobs(args, &parts.master, plans.len()),
            ..options
        };
        let json = out.json;
        let printer = Mutex::new(&mut *out);
        let on_node = |index: usize, report: &NodeReport| {
            let Some(plan) = plans.get(index) else { return };
            if !json {
                let mut out = printer.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = print_report(&mut out, plan, report, diffs).and_then(|()| out.flush());
            }
        };
        let progress = Progress::new(plans.len(), !json, Box::new(on_node));
        let reports = engine.push_plans(&plans, &options, &progress)?;
        progress.finish();
        drop(progress);
        finish(out, &plans, &reports, diffs, state.is_none())
    })
}

#[expect(clippy::too_many_arguments, reason = "one per flag of the command")]
pub(super) fn push_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: Option<&str>,
    dry_run: bool,
    force: bool,
    rollout: &RolloutArgs,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let options = PushOptions {
        dry_run,
        force,
        holder: holder("push"),
        stop: Some(context.stop.clone()),
        ..PushOptions::default()
    };
    run_push(context, out, node, state, rollout, args, options, Diffs::None)
}

/// `pacha diff`: a dry run that also reads the live contents of changed files.
pub(super) fn diff_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: Option<&str>,
    limit: Option<&str>,
    show_secrets: bool,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let options = PushOptions {
        dry_run: true,
        read_contents: true,
        holder: holder("diff"),
        stop: Some(context.stop.clone()),
        ..PushOptions::default()
    };
    let diffs = if show_secrets {
        Diffs::WithSecrets
    } else {
        Diffs::Redacted
    };
    let rollout = RolloutArgs {
        limit: limit.map(str::to_owned),
        serial: None,
        max_fail: None,
    };
    run_push(context, out, node, state, &rollout, args, options, diffs)
}

/// Prints the summary (or the JSON document) and picks the exit status.
fn finish(
    out: &mut Output,
    plans: &[Plan],
    reports: &[NodeReport],
    diffs: Diffs,
    from_history: bool,
) -> anyhow::Result<Status> {
    let count = |outcome| reports.iter().filter(|report| report.outcome == outcome).count();
    let (changed, unchanged, would, failed, skipped, rolled_back) = (
        count(Outcome::Changed),
        count(Outcome::Unchanged),
        count(Outcome::WouldChange),
        count(Outcome::Failed),
        count(Outcome::Skipped),
        count(Outcome::RolledBack),
    );
    if out.json {
        let nodes: Vec<ReportView<'_>> = plans
            .iter()
            .zip(reports)
            .map(|(plan, report)| ReportView::new(plan, report, diffs))
            .collect();
        out.json_document(&serde_json::json!({
            "nodes": nodes,
            "state_from_history": from_history,
            "summary": {"changed": changed, "unchanged": unchanged, "would_change": would, "failed": failed, "rolled_back": rolled_back, "skipped": skipped},
        }))?;
    } else if reports.len() > 1 {
        let style = out.style;
        let mut parts = Vec::new();
        for (number, label) in [
            (changed, "changed"),
            (would, "would change"),
            (unchanged, "unchanged"),
            (failed, "failed"),
            (rolled_back, "rolled back"),
            (skipped, "skipped"),
        ] {
            if number > 0 {
                parts.push(format!("{number} {label}"));
            }
        }
        out.line(style.bold(&format!("{} nodes: {}", reports.len(), parts.join(", "))))?;
    }
    if skipped > 0 {
        let of = format!(
            "{skipped} of {} node{} not started",
            reports.len(),
            if reports.len() == 1 { "" } else { "s" }
        );
        let why = |skip| reports.iter().any(|report| report.skipped == Some(skip));
        let message = if why(Skip::Interrupted) {
            format!("interrupted: {of}")
        } else if why(Skip::MaxFail) {
            format!("{of}: {failed} failed, as many as --max-fail allows")
        } else {
            format!("{of}: a node of an earlier --serial batch failed")
        };
        return Err(NodesFailed(message).into());
    }
    if failed + rolled_back > 0 {
        let names: Vec<&str> = reports
            .iter()
            .filter(|report| matches!(report.outcome, Outcome::Failed | Outcome::RolledBack))
            .map(|report| report.node.as_str())
            .collect();
        let failed = failed + rolled_back;
        return Err(NodesFailed(format!(
            "{failed} of {} node{} failed: {}",
            reports.len(),
            if reports.len() == 1 { "" } else { "s" },
            names.join(", ")
        ))
        .into());
    }
    let unrecorded: Vec<&str> = reports
        .iter()
        .filter(|report| report.failed())
        .map(|report| report.node.as_str())
        .collect();
    if !unrecorded.is_empty() {
        return Err(NodesFailed(format!(
            "the push of {} was not recorded in the history (see above)",
            unrecorded.join(", ")
        ))
        .into());
    }
    Ok(if would > 0 { Status::Changes } else { Status::Success })
}

pub(super) fn disconnect(context: &Context<'_>, out: &mut Output, node: Option<&str>) -> anyhow::Result<Status> {
    let connector = connector()?;
    let closed = match node {
        None => connector.disconnect_all(),
        Some(node) => {
            let master = context.master()?;
            let mut closed = 0;
            for leaf in master.expand(node)? {
                closed += usize::from(connector.disconnect(&master.target(&leaf)?));
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
