//! Hand edits made on a node turned into changes of the master (`pacha capture --propose`).
//!
//! Each changed hunk between a file's rendering and its live text is classified with the
//! file's [`Blame`]: literal template text changed becomes a change of that template line; a
//! change confined to the printed value of one variable becomes a change of the YAML file that
//! set it (when it is written there as a plain value); anything else is a [`Conflict`]. The
//! template changes of each file are checked by rendering the changed template: what would not
//! render the live text is a conflict too, never a wrong proposal.

use std::collections::BTreeMap;

use handlebars::Context;
use pacha_core::{EditedFile, NodePath, set_scalar};
use serde::Serialize;
use serde_json::Value;
use similar::{DiffOp, TextDiff};

use crate::blame::{Blame, BlameLine, Piece};
use crate::error::RenderError;
use crate::renderer::Renderer;
use crate::template;

/// What could not be turned into a master change.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    /// The file on the node.
    pub path: NodePath,
    /// The first line of the hunk in the live file (1-based), when it is about a hunk.
    pub line: Option<usize>,
    /// Why.
    pub reason: String,
    /// The lines as rendered (`None` when the file holds secrets).
    pub rendered: Option<String>,
    /// The lines as they are live (`None` when the file holds secrets).
    pub live: Option<String>,
}

/// One master file as it is and as the proposal changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterChange {
    /// Relative to the master.
    pub file: String,
    /// Its text now.
    pub before: String,
    /// Its text with the proposal.
    pub after: String,
}

/// A proposal: master changes, and what could not be proposed.
#[derive(Debug, Clone, Default)]
pub struct Proposal {
    /// The master files changed, in name order.
    pub changes: Vec<MasterChange>,
    /// The hunks proposed (file on the node, first live line).
    pub proposed: Vec<(NodePath, usize)>,
    /// What could not be proposed.
    pub conflicts: Vec<Conflict>,
    /// Hunks left alone because they were not edited by hand: the master changed there since
    /// the latest record (file on the node, first live line).
    pub unpushed: Vec<(NodePath, usize)>,
}

impl Proposal {
    /// Takes back a hunk counted as proposed (its change could not be made).
    fn unpropose(&mut self, path: &NodePath, line: usize) {
        self.proposed.retain(|(known, at)| !(known == path && *at == line));
    }

    /// The changes as a unified diff that `git apply` (run in the master) accepts.
    pub fn patch(&self) -> String {
        let mut patch = String::new();
        for change in &self.changes {
            let diff = TextDiff::from_lines(&change.before, &change.after);
            let unified = diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{}", change.file), &format!("b/{}", change.file))
                .to_string();
            patch.push_str(&format!("diff --git a/{0} b/{0}\n", change.file));
            patch.push_str(&unified);
        }
        patch
    }
}

/// A change of one variable's value in one YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VarChange {
    file: String,
    keys: Vec<String>,
    path: Vec<String>,
    value: String,
}

/// Template lines replaced: the 0-based first line, how many, the new lines (with line ends).
type LineEdit = (usize, usize, Vec<String>);

/// A hunk: the file on the node and its first live line.
type Hunked = (NodePath, usize);

/// A template's text, its line edits, and the hunks they come from.
type TemplateChange = (String, Vec<LineEdit>, Vec<Hunked>);

/// What one hunk becomes.
enum Hunk {
    /// Template lines replaced: 0-based first line, count, new lines (with line ends).
    Template {
        first: usize,
        count: usize,
        lines: Vec<String>,
    },
    Var(VarChange),
    /// Several pairs of one hunk.
    Both(Vec<Hunk>),
}

impl Renderer<'_> {
    /// The master changes that would make `node` in `state` render the live content of each
    /// of its hand-edited files, and what could not be proposed. Only what was edited by hand
    /// (live differs from recorded) is proposed: a hunk where the master changed since the
    /// latest record is left alone.
    pub fn propose(&self, node: &str, state: &str, edited: &[EditedFile]) -> Result<Proposal, RenderError> {
        let mut proposal = Proposal::default();
        let mut template_changes: BTreeMap<String, TemplateChange> = BTreeMap::new();
        let mut var_changes: Vec<(VarChange, NodePath, usize)> = Vec::new();
        for file in edited {
            let (path, content) = (&file.path, &file.live);
            let conflict = |line: Option<usize>, reason: &str| Conflict {
                path: path.clone(),
                line,
                reason: reason.to_owned(),
                rendered: None,
                live: None,
            };
            let blame = match self.blame(node, state, path) {
                Ok(blame) => blame,
                Err(RenderError::NotPlaced { .. }) => {
                    proposal
                        .conflicts
                        .push(conflict(None, "no template of the node places this file"));
                    continue;
                }
                Err(err) => return Err(err),
            };
            if blame.secret {
                proposal.conflicts.push(conflict(
                    None,
                    &format!("it holds secrets (from {}); change the master by hand", blame.source),
                ));
                continue;
            }
            if !blame.template {
                proposal.conflicts.push(conflict(
                    None,
                    &format!(
                        "{} is not a template (it is copied as it is); change it by hand",
                        blame.source
                    ),
                ));
                continue;
            }
            let Ok(live_text) = std::str::from_utf8(content) else {
                proposal
                    .conflicts
                    .push(conflict(None, "the live file is not UTF-8 text"));
                continue;
            };
            let rendered: String = blame.lines.iter().map(|line| line.rendered.as_str()).collect();
            let diff = TextDiff::from_lines(rendered.as_str(), live_text);
            let old: Vec<&str> = diff.old_slices().to_vec();
            let new: Vec<&str> = diff.new_slices().to_vec();
            let by_hand = HandLines::of(&file.recorded, live_text);
            let mut accepted: Vec<(usize, Hunk)> = Vec::new();
            let mut expected: Vec<String> = Vec::new();
            // Lines replaced one for one are hunks of their own: one may be a hand edit and
            // the next a change of the master.
            let mut hunks = Vec::new();
            for op in diff.ops() {
                let (old_range, new_range) = (op.old_range(), op.new_range());
                match op {
                    DiffOp::Replace { .. } if old_range.len() == new_range.len() => {
                        hunks.extend(
                            old_range
                                .zip(new_range)
                                .map(|(old, new)| (false, old..old + 1, new..new + 1)),
                        );
                    }
                    DiffOp::Equal { .. } => hunks.push((true, old_range, new_range)),
                    _ => hunks.push((false, old_range, new_range)),
                }
            }
            for (equal, old_range, new_range) in hunks {
                if equal {
                    expected.extend(old[old_range].iter().map(|line| (*line).to_owned()));
                    continue;
                }
                let first_live = new_range.start + 1;
                // A secret value typed into a file by hand never goes into the master's text,
                // nor into a message.
                if new[new_range.clone()].iter().any(|line| {
                    blame
                        .secrets
                        .iter()
                        .any(|secret| !secret.is_empty() && line.contains(secret.as_str()))
                }) {
                    expected.extend(old[old_range].iter().map(|line| (*line).to_owned()));
                    proposal.conflicts.push(conflict(
                        Some(first_live),
                        "the edit holds a secret value of the node; put it in a secret (`pacha secret set`) by hand",
                    ));
                    continue;
                }
                if !by_hand.touch(&new_range) {
                    expected.extend(old[old_range].iter().map(|line| (*line).to_owned()));
                    proposal.unpushed.push((path.clone(), first_live));
                    continue;
                }
                match classify(&blame, old_range.clone(), &new[new_range.clone()]) {
                    Ok(hunk) => {
                        expected.extend(new[new_range].iter().map(|line| (*line).to_owned()));
                        accepted.push((first_live, hunk));
                    }
                    Err(reason) => {
                        expected.extend(old[old_range.clone()].iter().map(|line| (*line).to_owned()));
                        proposal.conflicts.push(Conflict {
                            path: path.clone(),
                            line: Some(first_live),
                            reason,
                            rendered: Some(old[old_range].concat()),
                            live: Some(new[new_range].concat()),
                        });
                    }
                }
            }
            if accepted.is_empty() {
                continue;
            }
            // Check: the changed template, with the changed values, renders what is expected.
            let mut edits = Vec::new();
            let mut vars = Vec::new();
            for (_, hunk) in &accepted {
                collect(hunk, &mut edits, &mut vars);
            }
            let new_template = edit_lines(&blame.template_text, &edits);
            let mut data = blame.data.clone();
            for change in &vars {
                set_value(&mut data, &change.path, &change.value);
            }
            let expected: String = expected.concat();
            if render_check(&new_template, &data).as_deref() != Some(expected.as_str()) {
                for (line, _) in accepted {
                    proposal.conflicts.push(Conflict {
                        path: path.clone(),
                        line: Some(line),
                        reason: if vars.is_empty() {
                            "the change this would make to the template does not render the live text".to_owned()
                        } else {
                            format!(
                                "changing {} would change other lines too (the value is printed elsewhere)",
                                vars.iter()
                                    .map(|change| change.path.join("."))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
                        rendered: None,
                        live: None,
                    });
                }
                continue;
            }
            for (line, hunk) in &accepted {
                proposal.proposed.push((path.clone(), *line));
                let mut edits = Vec::new();
                let mut vars = Vec::new();
                collect(hunk, &mut edits, &mut vars);
                for change in vars {
                    var_changes.push((change, path.clone(), *line));
                }
            }
            if !edits.is_empty() {
                let entry = template_changes
                    .entry(blame.source.clone())
                    .or_insert_with(|| (blame.template_text.clone(), Vec::new(), Vec::new()));
                entry.1.extend(edits);
                entry.2.extend(accepted.iter().map(|(line, _)| (path.clone(), *line)));
            }
        }

        // Templates changed by two files (each: items) must agree.
        for (file, (before, mut edits, from)) in template_changes {
            edits.sort_by_key(|edit| edit.0);
            edits.dedup();
            if edits.windows(2).any(|pair| pair[0].0 + pair[0].1 > pair[1].0) {
                for (path, line) in from {
                    proposal.unpropose(&path, line);
                    proposal.conflicts.push(Conflict {
                        path,
                        line: Some(line),
                        reason: format!("files rendered from {file} were edited in different ways"),
                        rendered: None,
                        live: None,
                    });
                }
                continue;
            }
            let after = edit_lines(&before, &edits);
            proposal.changes.push(MasterChange { file, before, after });
        }
        // One value, one change: two edits asking different values of one variable conflict.
        let mut by_file: BTreeMap<String, Vec<(VarChange, Vec<Hunked>)>> = BTreeMap::new();
        for (change, path, line) in &var_changes {
            let clash = var_changes.iter().find(|(other, _, _)| {
                other.file == change.file && other.keys == change.keys && other.value != change.value
            });
            if clash.is_some() {
                proposal.unpropose(path, *line);
                proposal.conflicts.push(Conflict {
                    path: path.clone(),
                    line: Some(*line),
                    reason: format!(
                        "{} (set in {}) is edited to different values in different places",
                        change.path.join("."),
                        change.file
                    ),
                    rendered: None,
                    live: None,
                });
                continue;
            }
            let changes = by_file.entry(change.file.clone()).or_default();
            match changes.iter_mut().find(|(known, _)| known == change) {
                Some((_, from)) => from.push((path.clone(), *line)),
                None => changes.push((change.clone(), vec![(path.clone(), *line)])),
            }
        }
        for (file, changes) in by_file {
            let before =
                std::fs::read_to_string(self.master().dir().join(&file)).map_err(|err| RenderError::io(&file, err))?;
            let mut after = before.clone();
            for (change, from) in &changes {
                match set_scalar(&after, &change.keys, &change.value) {
                    Ok(changed) => after = changed,
                    Err(reason) => {
                        for (path, line) in from {
                            proposal.unpropose(path, *line);
                            proposal.conflicts.push(Conflict {
                                path: path.clone(),
                                line: Some(*line),
                                reason: format!(
                                    "{} in {file} cannot be changed in place: {reason}",
                                    change.path.join(".")
                                ),
                                rendered: None,
                                live: None,
                            });
                        }
                    }
                }
            }
            if after != before {
                proposal.changes.push(MasterChange { file, before, after });
            }
        }
        proposal.changes.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(proposal)
    }
}

/// The live lines a hand edit changed (0-based), and where it removed lines.
struct HandLines {
    changed: Vec<bool>,
    removed_at: Vec<usize>,
}

impl HandLines {
    fn of(recorded: &[u8], live: &str) -> HandLines {
        let recorded = String::from_utf8_lossy(recorded);
        let diff = TextDiff::from_lines(recorded.as_ref(), live);
        let mut lines = HandLines {
            changed: vec![false; diff.new_slices().len()],
            removed_at: Vec::new(),
        };
        for op in diff.ops() {
            if let DiffOp::Equal { .. } = op {
                continue;
            }
            let range = op.new_range();
            if range.is_empty() {
                lines.removed_at.push(range.start);
            }
            for index in range {
                lines.changed[index] = true;
            }
        }
        lines
    }

    /// Whether a hunk over the live lines `range` is (partly) a hand edit.
    fn touch(&self, range: &std::ops::Range<usize>) -> bool {
        if range.is_empty() {
            return self.removed_at.contains(&range.start);
        }
        range
            .clone()
            .any(|index| self.changed.get(index).copied().unwrap_or(true))
    }
}

fn collect(hunk: &Hunk, edits: &mut Vec<LineEdit>, vars: &mut Vec<VarChange>) {
    match hunk {
        Hunk::Template { first, count, lines } => edits.push((*first, *count, lines.clone())),
        Hunk::Var(change) => vars.push(change.clone()),
        Hunk::Both(hunks) => hunks.iter().for_each(|hunk| collect(hunk, edits, vars)),
    }
}

/// `text` with each `(first line, count, new lines)` edit made (0-based, not overlapping).
fn edit_lines(text: &str, edits: &[LineEdit]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut sorted: Vec<&LineEdit> = edits.iter().collect();
    sorted.sort_by_key(|edit| edit.0);
    let mut out = String::new();
    let mut at = 0;
    for (first, count, new) in sorted {
        while at < *first && at < lines.len() {
            out.push_str(lines[at]);
            at += 1;
        }
        // A line inserted after a last line without a line end needs one between them.
        if !out.is_empty() && !out.ends_with('\n') && !new.is_empty() {
            out.push('\n');
        }
        for line in new {
            out.push_str(line);
        }
        at = (*first + *count).max(at);
    }
    for line in lines.iter().skip(at) {
        out.push_str(line);
    }
    out
}

/// Writes `text` as Handlebars literal text: `{{` escaped.
fn escaped(text: &str) -> String {
    text.replace("{{", "\\{{")
}

/// `text` rendered as a template with `data`, as pacha renders.
fn render_check(text: &str, data: &Value) -> Option<String> {
    let mut registry = template::registry();
    template::compile(&mut registry, "proposed", text).ok()?;
    registry
        .render_with_context("proposed", &Context::from(data.clone()))
        .ok()
}

fn set_value(data: &mut Value, path: &[String], value: &str) {
    let mut slot = data;
    for segment in path {
        let Some(next) = slot.get_mut(segment) else {
            return;
        };
        slot = next;
    }
    *slot = Value::String(value.to_owned());
}

/// What the hunk replacing rendered lines `old` by the live `new` lines becomes.
fn classify(blame: &Blame, old: std::ops::Range<usize>, new: &[&str]) -> Result<Hunk, String> {
    let lines = &blame.lines[old.clone()];
    let several = "the lines come from more than one place (a block, a partial, or several template lines)";
    if lines.len() == new.len() && !lines.is_empty() {
        // Line for line.
        let mut hunks = Vec::new();
        for (line, live) in lines.iter().zip(new) {
            hunks.push(classify_line(line, live)?);
        }
        return Ok(if hunks.len() == 1 {
            hunks.remove(0)
        } else {
            Hunk::Both(hunks)
        });
    }
    // Some lines changed and some added (or removed) next to them: line for line first, the
    // rest added or removed after; or the other way round.
    if !lines.is_empty() && !new.is_empty() {
        let paired = lines.len().min(new.len());
        for pairs_first in [true, false] {
            let (pair_old, rest_old, pair_new, rest_new) = if pairs_first {
                (
                    old.start..old.start + paired,
                    old.start + paired..old.end,
                    &new[..paired],
                    &new[paired..],
                )
            } else {
                (
                    old.end - paired..old.end,
                    old.start..old.end - paired,
                    &new[new.len() - paired..],
                    &new[..new.len() - paired],
                )
            };
            let split = classify(blame, pair_old, pair_new).and_then(|pairs| {
                let rest = classify(blame, rest_old, rest_new)?;
                Ok(Hunk::Both(vec![pairs, rest]))
            });
            if split.is_ok() {
                return split;
            }
        }
    }
    // Lines added, removed or rewritten: only literal template lines, one after another.
    let places = |lines: &[BlameLine]| -> Result<Option<(usize, usize)>, String> {
        let mut first: Option<usize> = None;
        for (index, line) in lines.iter().enumerate() {
            let (Some(at), Some(pieces)) = (line.template_line, &line.pieces) else {
                return Err(several.to_owned());
            };
            if !new.is_empty() && pieces.iter().any(|piece| matches!(piece, Piece::Value { .. })) {
                return Err("lines that print variables were rewritten; change the template by hand".to_owned());
            }
            let start = *first.get_or_insert(at);
            if at != start + index {
                return Err(several.to_owned());
            }
        }
        Ok(first.map(|first| (first - 1, lines.len())))
    };
    let inserted: Vec<String> = new.iter().map(|line| escaped(line)).collect();
    match places(lines)? {
        Some((first, count)) => Ok(Hunk::Template {
            first,
            count,
            lines: inserted,
        }),
        None => {
            // Only added: after the line before, or before the line after.
            let anchor = |index: usize| {
                blame
                    .lines
                    .get(index)
                    .filter(|line| line.pieces.is_some())
                    .and_then(|line| line.template_line)
            };
            if let Some(before) = old.start.checked_sub(1).and_then(anchor) {
                Ok(Hunk::Template {
                    first: before,
                    count: 0,
                    lines: inserted,
                })
            } else if let Some(after) = anchor(old.start) {
                Ok(Hunk::Template {
                    first: after - 1,
                    count: 0,
                    lines: inserted,
                })
            } else if blame.lines.is_empty() {
                Ok(Hunk::Template {
                    first: 0,
                    count: 0,
                    lines: inserted,
                })
            } else {
                Err("the lines were added next to lines from a block or several places".to_owned())
            }
        }
    }
}

/// One rendered line changed into one live line.
fn classify_line(line: &BlameLine, live: &str) -> Result<Hunk, String> {
    let (Some(template_line), Some(pieces)) = (line.template_line, &line.pieces) else {
        return Err(
            "the line comes from more than one place (a block such as #each, a partial, or several template lines)"
                .to_owned(),
        );
    };
    let ending = if live.ends_with('\n') { "\n" } else { "" };
    let live = live.trim_end_matches('\n');
    // Values changed, the literal text around them as it was.
    if let Some(values) = split_by_literals(pieces, live) {
        let mut changes = Vec::new();
        for (piece, value) in pieces.iter().zip(&values) {
            let (Piece::Value { text, written, var }, Some(value)) = (piece, value) else {
                continue;
            };
            if value == text {
                continue;
            }
            let Some(var) = var.map(|var| &line.vars[var]) else {
                return Err(format!(
                    "the value of `{written}` changed, and it is not a variable printed as it is"
                ));
            };
            let origin = var
                .origin
                .as_ref()
                .ok_or_else(|| format!("the value of {} changed, and where it is set is not known", var.name))?;
            if !origin.literal {
                return Err(format!(
                    "the value of {} changed; it is set in {} but not as a plain value that can be changed in place",
                    var.name, origin.file
                ));
            }
            changes.push(Hunk::Var(VarChange {
                file: origin.file.clone(),
                keys: origin.keys.clone(),
                path: var.name.split('.').map(str::to_owned).collect(),
                value: value.clone(),
            }));
        }
        if !changes.is_empty() {
            return Ok(if changes.len() == 1 {
                changes.remove(0)
            } else {
                Hunk::Both(changes)
            });
        }
    }
    // The literal text changed around values that are all still there.
    let mut template = String::new();
    let mut rest = live;
    let mut literal = String::new();
    for piece in pieces {
        match piece {
            Piece::Raw(_) => {}
            Piece::Value { text, written, .. } => {
                let Some(found) = rest.find(text.as_str()) else {
                    return Err("the line changed in a way that is neither its literal text nor one value".to_owned());
                };
                literal.push_str(&rest[..found]);
                template.push_str(&escaped(&literal));
                literal.clear();
                template.push_str(written);
                rest = &rest[found + text.len()..];
            }
        }
    }
    template.push_str(&escaped(rest));
    template.push_str(ending);
    Ok(Hunk::Template {
        first: template_line - 1,
        count: 1,
        lines: vec![template],
    })
}

/// The live text of each value piece of a line whose literal pieces are all still there, in
/// order (`None` for a literal piece); `None` when they are not, or two values touch.
fn split_by_literals(pieces: &[Piece], live: &str) -> Option<Vec<Option<String>>> {
    let mut values: Vec<Option<String>> = vec![None; pieces.len()];
    let mut at = 0;
    // The value piece being read, and where its text starts.
    let mut open: Option<(usize, usize)> = None;
    for (index, piece) in pieces.iter().enumerate() {
        let Piece::Raw(text) = piece else {
            if open.is_some() {
                return None;
            }
            open = Some((index, at));
            continue;
        };
        let last = pieces[index + 1..]
            .iter()
            .all(|piece| matches!(piece, Piece::Raw(text) if text.is_empty()));
        let found = match (open, last) {
            (None, _) => live[at..].starts_with(text.as_str()).then_some(at)?,
            (Some(_), _) if text.is_empty() => continue,
            (Some(_), true) => live[at..].ends_with(text.as_str()).then(|| live.len() - text.len())?,
            (Some(_), false) => at + live[at..].find(text.as_str())?,
        };
        if let Some((value, from)) = open.take() {
            values[value] = Some(live[from..found].to_owned());
        }
        at = found + text.len();
    }
    match open {
        Some((value, from)) => values[value] = Some(live[from..].to_owned()),
        None if at != live.len() => return None,
        None => {}
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_edited_inserted_and_removed() {
        let text = "a\nb\nc\n";
        assert_eq!(edit_lines(text, &[(1, 1, vec!["B\n".into()])]), "a\nB\nc\n");
        assert_eq!(edit_lines(text, &[(1, 0, vec!["x\n".into()])]), "a\nx\nb\nc\n");
        assert_eq!(edit_lines(text, &[(0, 2, vec![])]), "c\n");
        assert_eq!(edit_lines("a", &[(1, 0, vec!["b\n".into()])]), "a\nb\n");
    }

    #[test]
    fn values_are_read_between_the_literal_text() {
        let raw = |text: &str| Piece::Raw(text.to_owned());
        let value = |text: &str| Piece::Value {
            text: text.to_owned(),
            written: String::new(),
            var: None,
        };
        let line = [raw("listen "), value("80"), raw(" tier="), value("gold"), raw(";")];
        let split = |live: &str| split_by_literals(&line, live);
        assert_eq!(
            split("listen 8443 tier=platinum;"),
            Some(vec![None, Some("8443".into()), None, Some("platinum".into()), None])
        );
        assert_eq!(split("listen 80 tier=gold; # more"), None);
        assert_eq!(split("bind 80 tier=gold;"), None);
        assert_eq!(split_by_literals(&[value("a"), value("b")], "ab"), None);
        assert_eq!(
            split_by_literals(&[value("a"), raw("")], "xyz"),
            Some(vec![Some("xyz".into()), None])
        );
    }
}
