//! `pacha blame NODE PATH [STATE]`: where each line of a file comes from; `pacha capture NODE
//! --propose [--write]`: hand edits on a node as changes of the master.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use pacha_core::NodePath;
use pacha_render::{Blame, Renderer};
use serde::Serialize;

use super::{Context, Status, write_atomically};
use crate::error::Usage;
use crate::output::{Output, printable};
use crate::setup::holder;

/// The state a command defaults to: the node's last recorded one, else (never recorded)
/// `default`; a history that cannot be read is an error, not a silent default.
fn state_or_last(parts: &crate::setup::Parts, node: &str, state: Option<&str>) -> anyhow::Result<String> {
    let Some(state) = state else {
        return match parts.with_engine(|engine| engine.last_state(node)) {
            Ok(state) => Ok(state),
            Err(pacha_core::EngineError::History(pacha_core::HistoryError::Empty { .. })) => Ok("default".to_owned()),
            Err(err) => Err(err.into()),
        };
    };
    Ok(state.to_owned())
}

#[derive(Serialize)]
struct BlameView<'a> {
    node: &'a str,
    state: &'a str,
    path: &'a str,
    app: &'a str,
    source: &'a str,
    secret: bool,
    lines: Vec<LineView<'a>>,
}

#[derive(Serialize)]
struct LineView<'a> {
    number: usize,
    text: &'a str,
    template: &'a str,
    template_line: Option<usize>,
    vars: &'a [pacha_render::BlameVar],
}

pub(super) fn blame(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    path: &str,
    state: Option<&str>,
) -> anyhow::Result<Status> {
    let path = NodePath::parse(path).map_err(|err| Usage(format!("{path:?}: {err}")))?;
    let parts = context.parts()?;
    let state = state_or_last(&parts, node, state)?;
    let renderer = Renderer::new(&parts.master);
    let blame = renderer.blame(node, &state, &path)?;
    if out.json {
        out.json_document(&view(&blame))?;
        return Ok(Status::Success);
    }
    print_blame(out, &blame)?;
    Ok(Status::Success)
}

fn view(blame: &Blame) -> BlameView<'_> {
    BlameView {
        node: &blame.node,
        state: &blame.state,
        path: blame.path.as_str(),
        app: &blame.app,
        source: &blame.source,
        secret: blame.secret,
        lines: blame
            .lines
            .iter()
            .map(|line| LineView {
                number: line.number,
                text: &line.text,
                template: &line.template,
                template_line: line.template_line,
                vars: &line.vars,
            })
            .collect(),
    }
}

fn print_blame(out: &mut Output, blame: &Blame) -> std::io::Result<()> {
    let style = out.style;
    out.line(style.bold(&format!(
        "{} on {} ({}), from {}{}",
        printable(blame.path.as_str()),
        blame.node,
        blame.state,
        blame.source,
        if blame.template { "" } else { " (copied as it is)" }
    )))?;
    let number_width = blame.lines.len().to_string().len();
    let template_width = blame
        .lines
        .iter()
        .filter_map(|line| line.template_line)
        .max()
        .unwrap_or(1)
        .to_string()
        .len();
    for line in &blame.lines {
        let at = match line.template_line {
            Some(at) if line.template == blame.source => format!(":{at:<template_width$}"),
            Some(at) => format!("{}:{at}", line.template),
            None => format!(":{:<template_width$}", "?"),
        };
        let mut text = format!(
            "{:>number_width$} {}  {}",
            line.number,
            style.dim(&at),
            printable(&line.text)
        );
        if !line.vars.is_empty() {
            let vars: Vec<String> = line
                .vars
                .iter()
                .map(|var| match var.line {
                    Some(at) => format!("{} {}:{at}", var.name, var.set_in),
                    None => format!("{} {}", var.name, var.set_in),
                })
                .collect();
            text.push_str(&style.cyan(&format!("   # {}", vars.join(", "))));
        }
        out.line(text)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ProposalView<'a> {
    node: &'a str,
    state: &'a str,
    patch: String,
    changes: Vec<&'a str>,
    proposed: Vec<serde_json::Value>,
    conflicts: &'a [pacha_render::Conflict],
    unpushed: Vec<serde_json::Value>,
    written: bool,
}

/// `pacha capture NODE --propose [--write]`.
pub(super) fn propose(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    paths: &[String],
    write: bool,
) -> anyhow::Result<Status> {
    let only = paths
        .iter()
        .map(|path| NodePath::parse(path).map_err(|err| Usage(format!("{path:?}: {err}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let parts = context.parts()?;
    let edits = parts.with_engine(|engine| engine.hand_edits(node, &holder("capture --propose")))?;
    let state = edits.state.clone().unwrap_or_else(|| "default".to_owned());
    let live: Vec<pacha_core::EditedFile> = edits
        .files
        .iter()
        .filter(|file| only.is_empty() || only.iter().any(|wanted| file.path.starts_with(wanted)))
        .cloned()
        .collect();
    let renderer = Renderer::new(&parts.master);
    let proposal = renderer.propose(node, &state, &live)?;
    let patch = proposal.patch();
    if write {
        for change in &proposal.changes {
            write_master_file(parts.master.dir(), &change.file, &change.before, &change.after)?;
        }
    }
    if out.json {
        out.json_document(&ProposalView {
            node,
            state: &state,
            patch,
            changes: proposal.changes.iter().map(|change| change.file.as_str()).collect(),
            proposed: proposal
                .proposed
                .iter()
                .map(|(path, line)| serde_json::json!({"path": path, "line": line}))
                .collect(),
            conflicts: &proposal.conflicts,
            unpushed: proposal
                .unpushed
                .iter()
                .map(|(path, line)| serde_json::json!({"path": path, "line": line}))
                .collect(),
            written: write,
        })?;
        return Ok(Status::Success);
    }
    if write {
        for change in &proposal.changes {
            out.line(format!("changed {}", change.file))?;
        }
    } else {
        out.raw(&patch)?;
    }
    let mut notes = Vec::new();
    if live.is_empty() {
        notes.push(format!(
            "{node}: no file was edited by hand since the latest record; nothing to propose"
        ));
    } else if proposal.changes.is_empty() && proposal.conflicts.is_empty() {
        notes.push(format!("{node}: the hand edits are already in the master"));
    }
    for (path, line) in &proposal.unpushed {
        notes.push(format!(
            "left alone: {}:{line} differs because the master changed there since the latest record (not a hand edit)",
            printable(path.as_str())
        ));
    }
    for (path, why) in &edits.skipped {
        notes.push(format!("skipped {}: {why}", printable(path.as_str())));
    }
    for conflict in &proposal.conflicts {
        let at = match conflict.line {
            Some(line) => format!("{}:{line}", printable(conflict.path.as_str())),
            None => printable(conflict.path.as_str()).into_owned(),
        };
        notes.push(format!("conflict: {at}: {}", conflict.reason));
        for (sign, lines) in [('-', &conflict.rendered), ('+', &conflict.live)] {
            for line in lines.iter().flat_map(|lines| lines.lines()) {
                notes.push(format!("  {sign}{}", printable(line)));
            }
        }
    }
    if !notes.is_empty() {
        out.flush()?;
        let mut stderr = std::io::stderr().lock();
        for note in notes {
            writeln!(stderr, "{note}")?;
        }
    }
    Ok(Status::Success)
}

/// Replaces a master file's text, atomically, when it still holds `before`.
fn write_master_file(master: &Path, file: &str, before: &str, after: &str) -> anyhow::Result<()> {
    let path = master.join(file);
    let now = fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
    if now != before {
        anyhow::bail!("{file} changed while the proposal was made; run it again");
    }
    write_atomically(&path, after.as_bytes()).with_context(|| format!("writing {file}"))
}
