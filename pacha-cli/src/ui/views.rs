//! The JSON views of docs/json.md: what `--json` prints, built from the libraries' types.

use pacha_core::{ChangeKind, Entry, Master, NodeError, NodeReport, Plan, Stage, TransportKind};
use serde::Serialize;

use crate::output::utc_time;
use crate::ui::report::{Diffs, secret_note, unified_diff};

/// An error as `--json` prints it: a category and the message.
#[derive(Serialize)]
pub(crate) struct ErrorView {
    pub kind: &'static str,
    pub message: String,
}

impl ErrorView {
    /// A node's error, secrets redacted.
    pub(crate) fn of_node(error: &NodeError, plan: &Plan) -> ErrorView {
        ErrorView {
            kind: error.kind(),
            message: plan.redact(&error.to_string()),
        }
    }
}

/// A node's report as `push --json` and `diff --json` print it.
#[derive(Serialize)]
pub(crate) struct ReportView<'a> {
    node: &'a str,
    host: &'a str,
    state: &'a str,
    outcome: &'static str,
    /// Why a skipped node was not started: `interrupted`, `batch-failed` or `max-fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<&'static str>,
    error: Option<ErrorView>,
    changes: Vec<ChangeView>,
    /// Files pacha placed that the plan no longer has, kept on the node.
    kept: Vec<KeptView<'a>>,
    pending_post: Option<Vec<&'a str>>,
    scripts: Vec<ScriptView>,
    timings: TimingsView,
    /// The history revision recorded for this node, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<&'a str>,
    /// The `recovered` revision recorded first, when the node held a placement the history
    /// had missed.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<&'a str>,
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
    /// Whether the file holds secrets (its contents are never shown unless asked for).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    secret: bool,
}

#[derive(Serialize)]
struct KeptView<'a> {
    path: &'a str,
    reason: &'a str,
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
    /// The view of `report`, a push of `plan`; with `diffs`, each change's unified diff.
    pub(crate) fn new(plan: &'a Plan, report: &'a NodeReport, diffs: Diffs) -> ReportView<'a> {
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
            skipped: report.skipped.map(pacha_core::Skip::as_str),
            error: report.error.as_ref().map(|error| ErrorView::of_node(error, plan)),
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
                    diff: (diffs != Diffs::None)
                        .then(|| plan.files.iter().find(|file| file.destination == change.destination))
                        .flatten()
                        .filter(|_| {
                            matches!(
                                change.kind,
                                ChangeKind::Create | ChangeKind::Update | ChangeKind::ReplaceSymlink
                            )
                        })
                        .map(|file| {
                            if file.secret && diffs != Diffs::WithSecrets {
                                secret_note(&file.content)
                            } else {
                                unified_diff(plan, change, &file.content, diffs)
                            }
                        }),
                    secret: plan
                        .files
                        .iter()
                        .any(|file| file.secret && file.destination == change.destination),
                })
                .collect(),
            kept: report
                .kept
                .iter()
                .map(|(path, reason)| KeptView {
                    path: path.as_str(),
                    reason,
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
                    output: plan.redact(&String::from_utf8_lossy(&run.output)),
                })
                .collect(),
            timings: TimingsView {
                connect_ms: report.timings.connect.as_millis(),
                inspect_ms: report.timings.inspect.as_millis(),
                apply_ms: report.timings.apply.as_millis(),
                total_ms: report.timings.total.as_millis(),
            },
            recorded: report.recorded.as_ref().map(|entry| entry.revision.as_str()),
            recovered: report.recovered.as_ref().map(|entry| entry.revision.as_str()),
        }
    }
}

/// A history entry as `log --json` prints it.
#[derive(Serialize)]
pub(crate) struct EntryView<'a> {
    revision: &'a str,
    event: &'static str,
    state: Option<&'a str>,
    time: String,
    timestamp: i64,
    author: &'a str,
    summary: &'a str,
    changed: &'a [String],
    failed: bool,
    /// The master's git revision it was rendered from; null when unknown.
    master: Option<&'a str>,
}

impl<'a> EntryView<'a> {
    /// The view of `entry`.
    pub(crate) fn new(entry: &'a Entry) -> EntryView<'a> {
        EntryView {
            revision: &entry.revision,
            event: entry.kind.as_str(),
            state: entry.state.as_deref(),
            time: utc_time(entry.time),
            timestamp: entry.time,
            author: &entry.author,
            summary: &entry.summary,
            changed: &entry.changed,
            failed: entry.failed,
            master: entry.master.as_deref(),
        }
    }
}

/// A plan as `render --json` prints it: no file contents, no paths of this machine.
#[derive(Serialize)]
pub(crate) struct PlanView<'a> {
    pub node: &'a str,
    pub state: &'a str,
    pub host: &'a str,
    pub transport: TransportKind,
    /// The node's `root` as written in its node file.
    pub root: &'a str,
    pub files: Vec<FileView<'a>>,
    pub scripts: Vec<PlannedScriptView<'a>>,
}

/// A planned file in `render --json`.
#[derive(Serialize)]
pub(crate) struct FileView<'a> {
    pub destination: &'a str,
    pub app: &'a str,
    pub source: &'a str,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub mode: String,
    pub size: usize,
    pub sha256: String,
}

/// A planned script in `render --json`.
#[derive(Serialize)]
pub(crate) struct PlannedScriptView<'a> {
    pub stage: Stage,
    pub phase: &'a str,
    pub name: &'a str,
    pub source: &'a str,
    pub sha256: String,
}

impl<'a> PlanView<'a> {
    /// The view of `plan`, a plan of a node of `master`.
    pub(crate) fn new(master: &'a Master, plan: &'a Plan) -> PlanView<'a> {
        let root = master
            .graph()
            .node(&plan.node)
            .ok()
            .and_then(|node| node.root.as_deref())
            .unwrap_or("/");
        PlanView {
            node: &plan.node,
            state: &plan.state,
            host: &plan.target.host,
            transport: plan.target.transport,
            root,
            files: plan
                .files
                .iter()
                .map(|file| FileView {
                    destination: file.destination.as_str(),
                    app: &file.app,
                    source: &file.source,
                    owner: file.owner.as_deref(),
                    group: file.group.as_deref(),
                    mode: file.mode.to_string(),
                    size: file.content.len(),
                    sha256: file.sha256.to_string(),
                })
                .collect(),
            scripts: plan
                .scripts
                .iter()
                .map(|script| PlannedScriptView {
                    stage: script.stage,
                    phase: &script.phase,
                    name: &script.name,
                    source: &script.source,
                    sha256: script.sha256.to_string(),
                })
                .collect(),
        }
    }
}
