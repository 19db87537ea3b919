//! A node's report as text: outcome, changes (with diffs for `pacha diff`), scripts and their
//! output, and what was recorded. Secrets never appear: every text from a plan or a node goes
//! through the plan's redaction.

use std::io;

use pacha_core::{Change, ChangeKind, NodeReport, Outcome, Plan, Skip};

use crate::output::{Output, Style, printable};

/// Whether and how a report shows the contents of changed files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Diffs {
    /// No contents (push, rollback, pull).
    None,
    /// Unified diffs, but a file that holds secrets only says it changed (`pacha diff`).
    Redacted,
    /// Unified diffs of every file, secrets included (`pacha diff --show-secrets`).
    WithSecrets,
}

/// What a file that holds secrets shows instead of its contents.
pub(crate) fn secret_note(planned: &[u8]) -> String {
    format!(
        "content changed (holds secrets): {} bytes, sha256 {}; --show-secrets prints it",
        planned.len(),
        pacha_core::ContentHash::of(planned).short(12)
    )
}

/// A unified diff of a change, secrets redacted unless `diffs` asks for them.
pub(crate) fn unified_diff(plan: &Plan, change: &Change, planned: &[u8], diffs: Diffs) -> String {
    let before = change.before.as_deref().unwrap_or_default();
    match (std::str::from_utf8(before), std::str::from_utf8(planned)) {
        (Ok(old), Ok(new)) => {
            let (old, new) = if diffs == Diffs::WithSecrets {
                (old.to_owned(), new.to_owned())
            } else {
                (plan.redact(old), plan.redact(new))
            };
            let header_old = if change.kind == ChangeKind::Create {
                "/dev/null".to_owned()
            } else {
                format!("{}:{} (live)", plan.node, change.destination)
            };
            similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header(
                    &header_old,
                    &format!("{}:{} ({})", plan.node, change.destination, plan.state),
                )
                .to_string()
        }
        _ => format!("binary files differ ({} -> {} bytes)\n", before.len(), planned.len()),
    }
}

fn change_line(plan: &Plan, change: &Change, style: Style) -> String {
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
        ChangeKind::Create => style.green("create"),
        ChangeKind::Update => style.yellow("update"),
        ChangeKind::Attributes => style.yellow("attrs"),
        ChangeKind::ReplaceSymlink => style.yellow("replace symlink"),
        ChangeKind::Remove => style.red("remove"),
        ChangeKind::Link => style.green("link"),
        ChangeKind::Directory => style.green("dir"),
    };
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    let target = plan
        .links
        .iter()
        .find(|link| change.kind == ChangeKind::Link && link.path == change.destination)
        .map_or_else(String::new, |link| format!(" -> {}", link.target));
    format!("  {kind} {}{target}{details}", printable(change.destination.as_str()))
}

fn plural(count: usize, word: &str) -> String {
    format!("{count} {word}{}", if count == 1 { "" } else { "s" })
}

/// Prints `report`, a push of `plan`; with `diffs`, each changed file's unified diff.
pub(crate) fn print_report(out: &mut Output, plan: &Plan, report: &NodeReport, diffs: Diffs) -> io::Result<()> {
    let style = out.style;
    let outcome = match report.outcome {
        Outcome::Unchanged => style.dim("unchanged"),
        Outcome::Changed => style.green("changed"),
        Outcome::WouldChange => style.yellow("would change"),
        Outcome::Failed => style.red("FAILED"),
        Outcome::RolledBack => style.red("ROLLED BACK"),
        Outcome::Refused => style.red("REFUSED"),
        Outcome::Skipped => style.yellow(match report.skipped {
            Some(Skip::BatchFailed) => "skipped (not started: a node of an earlier batch failed)",
            Some(Skip::MaxFail) => "skipped (not started: the most failures allowed were reached)",
            Some(Skip::Interrupted) | None => "skipped (not started: interrupted)",
        }),
    };
    let mut summary = format!("{} {outcome}", style.bold(&report.node));
    if !report.changes.is_empty() {
        summary.push_str(&format!(", {}", plural(report.changes.len(), "file")));
    }
    if !report.scripts.is_empty() {
        summary.push_str(&format!(", {}", plural(report.scripts.len(), "script")));
    }
    summary.push_str(&style.dim(&format!(" ({:.2} s)", report.timings.total.as_secs_f64())));
    out.line(summary)?;
    if let Some(entry) = &report.recovered {
        out.line(format!(
            "  {} {} {}",
            style.yellow("recovered"),
            style.dim(&entry.revision[..12]),
            entry.summary
        ))?;
    }
    if let Some(error) = &report.error {
        out.line(format!("  {} {}", style.red("error:"), plan.redact(&error.to_string())))?;
        if let pacha_core::NodeError::Transport(transport @ pacha_core::TransportError::HostKey { .. }) = error {
            for hint in crate::error::transport_hints(transport) {
                out.line(format!("  {} {hint}", style.dim("hint:")))?;
            }
        }
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
        out.line(change_line(plan, change, style))?;
        if diffs != Diffs::None
            && matches!(
                change.kind,
                ChangeKind::Create | ChangeKind::Update | ChangeKind::ReplaceSymlink
            )
            && let Some(file) = plan.files.iter().find(|file| file.destination == change.destination)
        {
            if file.secret && diffs != Diffs::WithSecrets {
                out.line(format!("    {}", style.yellow(&secret_note(&file.content))))?;
                continue;
            }
            for line in unified_diff(plan, change, &file.content, diffs).lines() {
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
    for (path, why) in &report.kept {
        out.line(format!(
            "  {} {}: {why}",
            style.yellow("kept"),
            printable(path.as_str())
        ))?;
    }
    print_scripts(out, plan, report)?;
    if let Some(entry) = &report.recorded {
        out.line(format!("  recorded {}", style.dim(&entry.revision[..12])))?;
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
        let text = plan.redact(&String::from_utf8_lossy(&run.output));
        for line in text.lines() {
            out.line(format!("    {} {line}", style.dim("|")))?;
        }
    }
    Ok(())
}
