//! Rollback and rebuild: a recorded snapshot made into a plan and placed the way a push
//! places, then recorded.

use crate::edges::connection::Connector;
use crate::edges::history::History;
use crate::edges::report::{NodeReport, Outcome, Reporter};
use crate::model::mode::Mode;
use crate::model::plan::{Plan, PlannedFile, PlannedScript};
use crate::model::snapshot::{Entry, Event, EventKind, Snapshot};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::push::{PushOptions, push_plans};
use crate::ops::record::pushed_snapshot;

/// A plan that places `snapshot` exactly: contents, owners, groups and modes as recorded, with
/// the recorded scripts.
pub(crate) fn snapshot_plan(node: &str, state: &str, target: Target, snapshot: &Snapshot) -> Plan {
    Plan {
        node: node.to_owned(),
        state: state.to_owned(),
        target,
        files: snapshot
            .files
            .iter()
            .map(|file| PlannedFile {
                destination: file.path.clone(),
                app: "history".to_owned(),
                source: "history".to_owned(),
                owner: (!file.owner.is_empty()).then(|| file.owner.clone()),
                group: (!file.group.is_empty()).then(|| file.group.clone()),
                mode: file.mode,
                dir_mode: Mode::EXECUTABLE,
                content: file.content.clone(),
                sha256: file.sha256,
            })
            .collect(),
        scripts: snapshot
            .scripts
            .iter()
            .map(|script| PlannedScript {
                stage: script.stage,
                phase: script.phase.clone(),
                name: script.name.clone(),
                source: "history".to_owned(),
                content: script.content.clone(),
                sha256: script.sha256,
            })
            .collect(),
        secrets: Vec::new(),
        absent: Vec::new(),
    }
}

/// What a rollback or rebuild did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The revision that was placed.
    pub from: Entry,
    /// The plan made of it.
    pub plan: Plan,
    /// How placing it went (with the new history entry, when files changed).
    pub report: NodeReport,
}

/// What to record a placed snapshot as (the event kind and the detail of its summary), and
/// where: `history` is `None` when placing it is no event of the node (a rebuild elsewhere).
pub(crate) struct Restore<'a> {
    pub(crate) kind: EventKind,
    pub(crate) detail: String,
    pub(crate) history: Option<&'a dyn History>,
    pub(crate) connector: &'a dyn Connector,
    pub(crate) options: &'a PushOptions,
    pub(crate) reporter: &'a dyn Reporter,
    /// What the target holds as far as the history knows (the node's latest snapshot, or
    /// nothing for another host): what it has beyond the placed snapshot is removed.
    pub(crate) prior: Option<Snapshot>,
    /// The node's `track` globs: tracked files recorded before stay recorded.
    pub(crate) track: Track,
}

impl Restore<'_> {
    /// Places `snapshot` (recorded at `from`) on `target` and records what that changed.
    pub(crate) fn place(&self, from: Entry, snapshot: &Snapshot, target: Target, secrets: Vec<String>) -> Restored {
        let state = from.state.clone().unwrap_or_else(|| "default".to_owned());
        let mut plan = snapshot_plan(&from.node, &state, target, snapshot);
        plan.secrets = secrets;
        let prior = |_: &Plan| Ok(self.prior.clone());
        let record = |plan: &Plan, previous: Option<&Snapshot>, report: &mut NodeReport| {
            let Some(history) = self.history else { return };
            if !(report.placed && (!report.changes.is_empty() || self.options.force)) {
                return;
            }
            let mut placed = pushed_snapshot(plan, report, previous, &self.track);
            // A file only captured at that revision stays only captured.
            for file in &mut placed.files {
                if let Some(recorded) = snapshot.file(&file.path) {
                    file.managed = recorded.managed;
                }
            }
            let changed = if self.options.force {
                plan.files.iter().map(|file| file.destination.clone()).collect()
            } else {
                report.changes.iter().map(|change| change.destination.clone()).collect()
            };
            let event = Event {
                kind: self.kind,
                node: from.node.clone(),
                state: from.state.clone(),
                changed,
                failed: report.outcome == Outcome::Failed,
                detail: Some(self.detail.clone()),
            };
            match history.record(&event, &placed) {
                Ok(entry) => report.recorded = Some(entry),
                Err(err) => report.error = Some(crate::edges::report::NodeError::History(err.into())),
            }
        };
        let report = push_plans(
            std::slice::from_ref(&plan),
            self.connector,
            self.options,
            self.reporter,
            &prior,
            &record,
        )
        .into_iter()
        .next()
        .unwrap_or_else(|| NodeReport::new(&plan));
        Restored { from, plan, report }
    }
}
