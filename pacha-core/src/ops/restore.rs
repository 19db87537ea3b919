//! Rollback and rebuild: a recorded snapshot made into a plan and placed the way a push
//! places, then recorded.

use crate::edges::connection::Connector;
use crate::edges::history::{History, HistoryError};
use crate::edges::report::{NodeError, NodeReport, Outcome, Reporter};
use crate::model::mode::Mode;
use crate::model::plan::{Plan, PlannedDir, PlannedFile, PlannedLink, PlannedScript};
use crate::model::snapshot::{Entry, Event, EventKind, Snapshot};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::push::{Books, Found, PushOptions, push_plans};
use crate::ops::record::{pushed_snapshot, record_recovered};

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
                secret: file.secret,
                // What is restored was live before: it is not checked again.
                validate: None,
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
                handles: Vec::new(),
            })
            .collect(),
        secrets: Vec::new(),
        absent: Vec::new(),
        links: snapshot
            .links
            .iter()
            .map(|link| PlannedLink {
                path: link.path.clone(),
                target: link.target.clone(),
                app: "history".to_owned(),
            })
            .collect(),
        dirs: snapshot
            .dirs
            .iter()
            .map(|dir| PlannedDir {
                path: dir.path.clone(),
                owner: (!dir.owner.is_empty()).then(|| dir.owner.clone()),
                group: (!dir.group.is_empty()).then(|| dir.group.clone()),
                mode: dir.mode,
                app: "history".to_owned(),
            })
            .collect(),
        script_timeout: None,
        // A rollback or rebuild is what an admin reaches for when things broke: it is never
        // undone by a failing post script.
        keep_on_failure: true,
        expect: None,
        confirm_ssh: None,
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
        let books = RestoreBooks {
            restore: self,
            from: &from,
            snapshot,
        };
        let report = push_plans(
            std::slice::from_ref(&plan),
            self.connector,
            self.options,
            self.reporter,
            &books,
        )
        .into_iter()
        .next()
        .unwrap_or_else(|| NodeReport::new(&plan));
        Restored { from, plan, report }
    }
}

/// The history around placing a snapshot: the node's latest as the prior, recovery, and the
/// record of the rollback or rebuild.
struct RestoreBooks<'r> {
    restore: &'r Restore<'r>,
    from: &'r Entry,
    /// The snapshot placed.
    snapshot: &'r Snapshot,
}

impl Books for RestoreBooks<'_> {
    fn keeps_history(&self) -> bool {
        self.restore.history.is_some()
    }

    fn prior(&self, _plan: &Plan) -> Result<Option<Snapshot>, HistoryError> {
        Ok(self.restore.prior.clone())
    }

    fn recover(
        &self,
        plan: &Plan,
        previous: Option<&Snapshot>,
        found: Found,
    ) -> Result<Option<(Entry, Snapshot)>, HistoryError> {
        match self.restore.history {
            Some(history) => record_recovered(history, &plan.node, previous, found),
            None => Ok(None),
        }
    }

    fn record(&self, plan: &Plan, previous: Option<&Snapshot>, report: &mut NodeReport) {
        let restore = self.restore;
        let Some(history) = restore.history else { return };
        if !(report.placed && (!report.changes.is_empty() || restore.options.force)) {
            return;
        }
        let mut placed = pushed_snapshot(plan, report, previous, &restore.track);
        // A file only captured at that revision stays only captured.
        for file in &mut placed.files {
            if let Some(recorded) = self.snapshot.file(&file.path) {
                file.managed = recorded.managed;
            }
        }
        let changed = if restore.options.force {
            plan.files.iter().map(|file| file.destination.clone()).collect()
        } else {
            report.changes.iter().map(|change| change.destination.clone()).collect()
        };
        let event = Event {
            kind: restore.kind,
            host: None,
            at: None,
            node: self.from.node.clone(),
            state: self.from.state.clone(),
            changed,
            failed: report.outcome == Outcome::Failed,
            detail: Some(restore.detail.clone()),
        };
        match history.record(&event, &placed) {
            Ok(entry) => report.recorded = Some(entry),
            Err(err) => report.error = Some(NodeError::History(err.into())),
        }
    }
}
