//! `pacha push`, `pacha diff` and `pacha disconnect`.

use std::sync::{Mutex, PoisonError};

use anyhow::Context as _;
use pacha_core::{Engine, Limit, Master, NodeReport, Outcome, Plan, PushOptions, SavedPlan, Skip};

use super::{Context, Status};
use crate::cli::{ConnectionArgs, RolloutArgs};
use crate::error::{NodesFailed, Usage};
use crate::output::{Output, printable};
use crate::setup::{connector, holder};
use crate::ui::progress::Progress;
use crate::ui::report::{Diffs, print_report};
use crate::ui::views::ReportView;
use pacha_vcs::MasterRevision;

/// How many nodes to work on at once.
pub(super) fn jobs(args: &ConnectionArgs, master: &Master, nodes: usize) -> usize {
    args.jobs
        .map(usize::from)
        .or(master.settings().jobs)
        .unwrap_or_else(|| nodes.clamp(1, 32))
}

/// The `--limit` of a command, parsed.
fn limit_of(limit: Option<&str>) -> anyhow::Result<Option<Limit>> {
    Ok(limit
        .map(Limit::parse)
        .transpose()
        .map_err(|err| Usage(format!("--limit: {err}")))?)
}

/// What `diff` and `plan` run: a dry run that reads changed files' contents, and how their
/// diffs are shown.
fn looking(context: &Context<'_>, command: &str, show_secrets: bool) -> (PushOptions, Diffs) {
    let options = PushOptions {
        dry_run: true,
        read_contents: true,
        holder: holder(command),
        stop: Some(context.stop.clone()),
        ..PushOptions::default()
    };
    let diffs = if show_secrets {
        Diffs::WithSecrets
    } else {
        Diffs::Redacted
    };
    (options, diffs)
}

/// `options` with the rollout flags, else the defaults of `pacha.yaml` and the meta node.
fn with_rollout(engine: &Engine<'_>, target: &str, rollout: &RolloutArgs, options: PushOptions) -> PushOptions {
    let defaults = engine.rollout(target);
    PushOptions {
        serial: rollout.serial.map(usize::from).or(defaults.serial),
        max_fail: rollout.max_fail.map(usize::from).or(defaults.max_fail),
        ..options
    }
}

/// Pushes (or dry-runs) `plans`, printing each node's report as it is done, in order.
fn push_printed(
    engine: &Engine<'_>,
    out: &mut Output,
    plans: &[Plan],
    args: &ConnectionArgs,
    options: PushOptions,
    diffs: Diffs,
) -> anyhow::Result<Vec<NodeReport>> {
    let options = PushOptions {
        jobs: jobs(args, engine.master(), plans.len()),
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
    let reports = engine.push_plans(plans, &options, &progress)?;
    progress.finish();
    drop(progress);
    Ok(reports)
}

/// What a push, diff or plan of `node` renders: in `state`, or each node's last state (said).
fn rendered(
    engine: &Engine<'_>,
    out: &mut Output,
    node: &str,
    state: Option<&str>,
    limit: Option<&Limit>,
) -> anyhow::Result<Vec<Plan>> {
    let plans = engine.plans_for(node, state, limit)?;
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
    Ok(plans)
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
    let limit = limit_of(rollout.limit.as_deref())?;
    let parts = context.recording_parts(!options.dry_run)?;
    parts.with_engine(|engine| {
        let options = with_rollout(engine, node, rollout, options);
        let plans = rendered(engine, out, node, state, limit.as_ref())?;
        let reports = push_printed(engine, out, &plans, args, options, diffs)?;
        finish(out, &plans, &reports, diffs, state.is_none(), None)
    })
}

/// `pacha plan NODE [STATE] -o FILE`: a diff whose change is saved, with what each node held.
#[expect(clippy::too_many_arguments, reason = "one per flag of the command")]
pub(super) fn plan_command(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: Option<&str>,
    file: &std::path::Path,
    limit: Option<&str>,
    show_secrets: bool,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let limit = limit_of(limit)?;
    let (options, diffs) = looking(context, "plan", show_secrets);
    let parts = context.recording_parts(false)?;
    parts.with_engine(|engine| {
        let plans = rendered(engine, out, node, state, limit.as_ref())?;
        let reports = push_printed(engine, out, &plans, args, options, diffs)?;
        let mut saved_note = None;
        if reports.iter().all(|report| !report.failed()) {
            let created = pacha_core::unix_seconds(std::time::SystemTime::now());
            let saved = SavedPlan::new(
                node,
                created,
                parts.revision.as_ref().map(MasterRevision::describe),
                &plans,
                &reports,
            );
            let bytes = saved.to_bytes(engine.master().age())?;
            write_private(file, &bytes)?;
            if !out.json {
                out.line(format!(
                    "saved plan {} of {} node{} to {}{}",
                    saved.id,
                    plans.len(),
                    if plans.len() == 1 { "" } else { "s" },
                    file.display(),
                    if engine.master().age().can_encrypt() {
                        " (secrets encrypted)"
                    } else {
                        ""
                    }
                ))?;
            }
            saved_note = Some(serde_json::json!({"id": saved.id, "file": file.display().to_string()}));
        }
        finish(
            out,
            &plans,
            &reports,
            diffs,
            state.is_none(),
            saved_note.map(|note| ("plan", note)),
        )
    })
}

/// `pacha apply FILE`: pushes exactly a saved plan, where each node still holds what it saw.
pub(super) fn apply_command(
    context: &Context<'_>,
    out: &mut Output,
    file: &std::path::Path,
    dry_run: bool,
    rollout: &RolloutArgs,
    args: &ConnectionArgs,
) -> anyhow::Result<Status> {
    let limit = limit_of(rollout.limit.as_deref())?;
    let bytes = std::fs::read(file).with_context(|| format!("reading the plan {}", file.display()))?;
    let mut parts = context.recording_parts(!dry_run)?;
    let saved = SavedPlan::from_bytes(&bytes, parts.master.age()).with_context(|| format!("{}", file.display()))?;
    // What is applied is what the plan rendered: its records carry the plan's revision.
    let revision = saved.master_revision.as_deref().map(MasterRevision::described);
    if !dry_run
        && parts.master.settings().require_clean_master
        && revision.as_ref().is_none_or(|revision| revision.dirty)
    {
        return Err(crate::setup::DirtyMaster(format!(
            "the plan {} was made from a master with uncommitted changes ({})",
            file.display(),
            saved.master_revision.as_deref().unwrap_or("in no git repository")
        ))
        .into());
    }
    parts.history.set_master(revision);
    parts.with_engine(|engine| {
        let mut plans = saved.plans.clone();
        if let Some(limit) = &limit {
            plans.retain(|plan| limit.allows(&plan.node));
            if plans.is_empty() {
                return Err(Usage(format!("--limit {:?} leaves no node of the plan", limit.as_str())).into());
            }
        }
        if !out.json {
            out.line(out.style.dim(&format!(
                "plan {} of {} (made {}{})",
                saved.id,
                printable(&saved.target),
                crate::output::utc_time(saved.created),
                saved
                    .master_revision
                    .as_deref()
                    .map_or_else(String::new, |revision| format!(" from master {revision}"))
            )))?;
        }
        let options = PushOptions {
            dry_run,
            holder: holder("apply"),
            stop: Some(context.stop.clone()),
            ..PushOptions::default()
        };
        let options = with_rollout(engine, &saved.target, rollout, options);
        let reports = push_printed(engine, out, &plans, args, options, Diffs::None)?;
        let note = serde_json::json!({"id": saved.id, "file": file.display().to_string()});
        finish(out, &plans, &reports, Diffs::None, false, Some(("plan", note)))
    })
}

/// Writes `bytes` to `path` readable by its owner only, whole or not at all.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .map_or_else(|| "plan".into(), |name| name.to_string_lossy().into_owned());
    let draft = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&draft, path));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&draft);
        return Err(err).with_context(|| format!("writing the plan {}", path.display()));
    }
    Ok(())
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
    let (options, diffs) = looking(context, "diff", show_secrets);
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
    extra: Option<(&str, serde_json::Value)>,
) -> anyhow::Result<Status> {
    let count = |outcome| reports.iter().filter(|report| report.outcome == outcome).count();
    let (changed, unchanged, would, failed, skipped, rolled_back, refused) = (
        count(Outcome::Changed),
        count(Outcome::Unchanged),
        count(Outcome::WouldChange),
        count(Outcome::Failed),
        count(Outcome::Skipped),
        count(Outcome::RolledBack),
        count(Outcome::Refused),
    );
    if out.json {
        let nodes: Vec<ReportView<'_>> = plans
            .iter()
            .zip(reports)
            .map(|(plan, report)| ReportView::new(plan, report, diffs))
            .collect();
        let mut document = serde_json::json!({
            "nodes": nodes,
            "state_from_history": from_history,
            "summary": {"changed": changed, "unchanged": unchanged, "would_change": would, "failed": failed, "rolled_back": rolled_back, "refused": refused, "skipped": skipped},
        });
        if let Some((key, value)) = extra {
            document[key] = value;
        }
        out.json_document(&document)?;
    } else if reports.len() > 1 {
        let style = out.style;
        let mut parts = Vec::new();
        for (number, label) in [
            (changed, "changed"),
            (would, "would change"),
            (unchanged, "unchanged"),
            (failed, "failed"),
            (rolled_back, "rolled back"),
            (refused, "refused"),
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
    if failed + rolled_back + refused > 0 {
        let names: Vec<&str> = reports
            .iter()
            .filter(|report| matches!(report.outcome, Outcome::Failed | Outcome::RolledBack | Outcome::Refused))
            .map(|report| report.node.as_str())
            .collect();
        let failed = failed + rolled_back + refused;
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
