//! The [`Engine`]: a master and the edges composed, with one method per operation. The CLI
//! builds one and calls it; so does any program that embeds pacha. Every operation that
//! changes a node records it in the history before it returns.

use std::collections::BTreeMap;

use crate::edges::connection::Connector;
use crate::edges::history::{History, HistoryError};
use crate::edges::planner::Planner;
use crate::edges::report::{NodeError, NodeReport, Reporter};
use crate::error::EngineError;
use crate::master::Master;
use crate::master::error::GraphError;
use crate::model::node::Definition;
use crate::model::path::NodePath;
use crate::model::plan::Plan;
use crate::model::rollout::{Limit, RolloutSettings};
use crate::model::snapshot::{Entry, EventKind, Snapshot};
use crate::model::target::Target;
use crate::model::track::Track;
use crate::ops::capture::{Captured, HandEdits, capture, hand_edits};
use crate::ops::push::{Books, Found, PushOptions, in_parallel, push_plans};
use crate::ops::record::{last_state, latest_snapshot, record_push, record_recovered};
use crate::ops::render::Rendering;
use crate::ops::restore::{Restore, Restored};
use crate::ops::serve::Server;
use crate::ops::status::{NodeStatus, status};

/// A master with its planner, the connector to its nodes and its history.
pub struct Engine<'a> {
    master: &'a Master,
    rendering: Rendering<'a>,
    connector: &'a dyn Connector,
    history: &'a dyn History,
}

impl<'a> Engine<'a> {
    /// Composes an engine. Rendering uses every core of this machine unless
    /// [`Engine::with_threads`] says otherwise.
    pub fn new(
        master: &'a Master,
        planner: &'a dyn Planner,
        connector: &'a dyn Connector,
        history: &'a dyn History,
    ) -> Engine<'a> {
        Engine {
            master,
            rendering: Rendering::new(master, planner),
            connector,
            history,
        }
    }

    /// Renders on up to `threads` threads.
    pub fn with_threads(mut self, threads: usize) -> Engine<'a> {
        self.rendering = self.rendering.with_threads(threads);
        self
    }

    /// The master.
    pub fn master(&self) -> &Master {
        self.master
    }

    /// The history.
    pub fn history(&self) -> &dyn History {
        self.history
    }

    /// Rendering through this engine's planner.
    pub fn rendering(&self) -> &Rendering<'a> {
        &self.rendering
    }

    /// The plan of leaf node `node` in `state`.
    pub fn plan(&self, node: &str, state: &str) -> Result<Plan, EngineError> {
        self.rendering.plan(node, state)
    }

    /// The plans of every leaf of `node` in `state` ([`Rendering::plans`]).
    pub fn plans(&self, node: &str, state: &str) -> Result<Vec<Plan>, EngineError> {
        self.rendering.plans(node, state)
    }

    /// The plans of every leaf of `node`, each in the state it was last recorded in (a leaf
    /// never recorded is an error: it has no state to go back to).
    pub fn plans_in_last_states(&self, node: &str) -> Result<Vec<Plan>, EngineError> {
        self.plans_for(node, None, None)
    }

    /// The plans of the leaves of `node` that `limit` allows (all without one), in `state`, or
    /// each in its last recorded state when `state` is `None`. Every plan renders before any
    /// is returned.
    pub fn plans_for(&self, node: &str, state: Option<&str>, limit: Option<&Limit>) -> Result<Vec<Plan>, EngineError> {
        let leaves = self.master.expand(node)?;
        let chosen: Vec<String> = match limit {
            Some(limit) => leaves.iter().filter(|leaf| limit.allows(leaf)).cloned().collect(),
            None => leaves.clone(),
        };
        if let Some(limit) = limit
            && chosen.is_empty()
        {
            return Err(GraphError::LimitMatchesNothing {
                node: node.to_owned(),
                limit: limit.as_str().to_owned(),
                leaves,
            }
            .into());
        }
        let nodes = chosen
            .into_iter()
            .map(|leaf| {
                let state = match state {
                    Some(state) => state.to_owned(),
                    None => self.last_state(&leaf)?,
                };
                Ok((leaf, state))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        self.rendering.plans_of(nodes)
    }

    /// How a push of `node` goes by default: `pacha.yaml`'s `rollout`, overridden key by key
    /// by the meta node's own when `node` is one.
    pub fn rollout(&self, node: &str) -> RolloutSettings {
        let master = self.master.settings().rollout;
        match self.master.graph().definition(node) {
            Ok(Definition::Meta(meta)) => master.overlaid(meta.rollout),
            _ => master,
        }
    }

    /// Pushes every leaf of `node` to `state`: renders all first (nothing touches a node if
    /// any plan fails), then brings each node to its plan and records each node that changed
    /// as soon as it is done (a dry run records nothing). One report per leaf, in order.
    pub fn push(
        &self,
        node: &str,
        state: &str,
        options: &PushOptions,
        reporter: &dyn Reporter,
    ) -> Result<Vec<NodeReport>, EngineError> {
        let plans = self.plans(node, state)?;
        self.push_plans(&plans, options, reporter)
    }

    /// Pushes plans made by [`Engine::plans`] and records each node that changed.
    pub fn push_plans(
        &self,
        plans: &[Plan],
        options: &PushOptions,
        reporter: &dyn Reporter,
    ) -> Result<Vec<NodeReport>, EngineError> {
        if !options.dry_run {
            self.history.check_writable()?;
        }
        let tracks = plans
            .iter()
            .map(|plan| Ok((plan.node.clone(), self.master.track(&plan.node)?)))
            .collect::<Result<BTreeMap<String, Track>, EngineError>>()?;
        let books = PushBooks {
            engine: self,
            tracks,
            forced: options.force,
        };
        Ok(push_plans(plans, self.connector, options, reporter, &books))
    }

    /// The latest snapshot of `node`, as a push starts from it: a file that a `track` glob
    /// names is the node's own, never pacha's to remove, whatever recorded it.
    fn prior(&self, node: &str, track: Option<&Track>) -> Result<Option<Snapshot>, HistoryError> {
        let Some((_, mut snapshot)) = latest_snapshot(self.history, node)? else {
            return Ok(None);
        };
        if let Some(track) = track {
            for file in &mut snapshot.files {
                if track.matches(&file.path) {
                    file.managed = false;
                }
            }
        }
        Ok(Some(snapshot))
    }

    /// The state `node` was last pushed (or pulled, rolled back, rebuilt) in.
    pub fn last_state(&self, node: &str) -> Result<String, EngineError> {
        Ok(last_state(self.history, node)?)
    }

    /// `node`'s history, newest first. A node removed from the master keeps its history; a
    /// name that is neither in the master nor in the history is an unknown node.
    pub fn log(&self, node: &str) -> Result<Vec<Entry>, EngineError> {
        let entries = self.history.log(node)?;
        if entries.is_empty() {
            self.master.node(node)?;
        }
        Ok(entries)
    }

    /// The entry at `revision` (the latest when `None`) and what it recorded.
    pub fn show(&self, node: &str, revision: Option<&str>) -> Result<(Entry, Snapshot), EngineError> {
        self.log_exists(node)?;
        let entry = match revision {
            Some(revision) => self.history.entry(node, revision)?,
            None => self
                .history
                .latest(node)?
                .ok_or_else(|| HistoryError::Empty { node: node.to_owned() })?,
        };
        let snapshot = self.history.snapshot(node, &entry.revision)?;
        Ok((entry, snapshot))
    }

    /// The secret values `node` renders in `state` (never to be printed); none for a node the
    /// master no longer has.
    pub fn secrets(&self, node: &str, state: Option<&str>) -> Vec<String> {
        self.master
            .node_vars(node, state.unwrap_or("default"))
            .map(|vars| vars.secrets)
            .unwrap_or_default()
    }

    /// Places `node`'s files exactly as recorded at `revision` (content, owner, group, mode; its
    /// scripts run when files change, as in a push), then records that.
    pub fn rollback(
        &self,
        node: &str,
        revision: &str,
        options: &PushOptions,
        reporter: &dyn Reporter,
    ) -> Result<Restored, EngineError> {
        self.history.check_writable()?;
        let target = self.master.target(node)?;
        let track = self.master.track(node)?;
        let from = self.history.entry(node, revision)?;
        let snapshot = self.history.snapshot(node, &from.revision)?;
        let restore = Restore {
            kind: EventKind::Rollback,
            detail: format!("to {}", &from.revision[..from.revision.len().min(12)]),
            history: Some(self.history),
            connector: self.connector,
            options,
            reporter,
            prior: self.prior(node, Some(&track))?,
            track,
        };
        let secrets = self.secrets(node, from.state.as_deref());
        Ok(restore.place(from, &snapshot, target, secrets))
    }

    /// Rebuilds a (new) host from `node`'s latest recorded state: every file placed with its
    /// owner and mode, every script run. `onto` is where (the node itself when `None`). A
    /// rebuild onto anything but the node itself (another host, another root) is not an event
    /// of the node, so its history is left alone (`recorded` stays `None`).
    pub fn rebuild(
        &self,
        node: &str,
        onto: Option<Target>,
        options: &PushOptions,
        reporter: &dyn Reporter,
    ) -> Result<Restored, EngineError> {
        self.history.check_writable()?;
        let own = self.master.target(node)?;
        let track = self.master.track(node)?;
        let target = onto.unwrap_or_else(|| own.clone());
        let same_node = target.transport == own.transport
            && target.host == own.host
            && target.port == own.port
            && target.user == own.user
            && target.root == own.root;
        let Some((from, snapshot)) = latest_snapshot(self.history, node)? else {
            return Err(HistoryError::Empty { node: node.to_owned() }.into());
        };
        let options = PushOptions {
            force: true,
            ..options.clone()
        };
        let restore = Restore {
            kind: EventKind::Rebuild,
            detail: format!("onto {}", target.host),
            history: same_node.then_some(self.history),
            connector: self.connector,
            options: &options,
            reporter,
            prior: if same_node {
                self.prior(node, Some(&track))?
            } else {
                None
            },
            track,
        };
        let secrets = self.secrets(node, from.state.as_deref());
        Ok(restore.place(from, &snapshot, target, secrets))
    }

    /// Reads the live files of `node` (its recorded files and its tracked files, or only `only`
    /// when given) into history, when they differ from the latest recorded ones. `holder` names
    /// this pacha to another that finds the node locked.
    pub fn capture(&self, node: &str, only: &[NodePath], holder: &str) -> Result<Captured, EngineError> {
        self.history.check_writable()?;
        let target = self.master.target(node)?;
        let track = self.master.track(node)?;
        capture(self.history, node, &target, &track, only, self.connector, holder)
    }

    /// The files of `node` edited by hand since the latest record (live content differs from
    /// the recorded one), read without recording anything.
    pub fn hand_edits(&self, node: &str, holder: &str) -> Result<HandEdits, EngineError> {
        let target = self.master.target(node)?;
        let track = self.master.track(node)?;
        hand_edits(self.history, node, &target, &track, self.connector, holder)
    }

    /// Compares each node's latest recorded files with its live files, up to `jobs` nodes at
    /// once; one result per node, in order.
    pub fn status(&self, nodes: &[String], jobs: usize) -> Vec<Result<NodeStatus, EngineError>> {
        in_parallel(nodes, jobs, |_, node| {
            let target = self.master.target(node)?;
            let track = self.master.track(node)?;
            status(self.history, node, &target, &track, self.connector)
        })
    }

    /// The master's end of pull and watch; with `only`, for that node alone.
    pub fn serve(&self, only: Option<&str>) -> Server<'_> {
        Server::new(self.master, &self.rendering, self.history, only)
    }

    /// An unknown node is an error unless the history still has it.
    fn log_exists(&self, node: &str) -> Result<(), EngineError> {
        match self.master.node(node) {
            Ok(_) => Ok(()),
            Err(err @ GraphError::UnknownNode { .. }) => match self.history.latest(node)? {
                Some(_) => Ok(()),
                None => Err(err.into()),
            },
            Err(err) => Err(err.into()),
        }
    }
}

/// The history around a push through the engine.
struct PushBooks<'e> {
    engine: &'e Engine<'e>,
    tracks: BTreeMap<String, Track>,
    forced: bool,
}

impl Books for PushBooks<'_> {
    fn keeps_history(&self) -> bool {
        true
    }

    fn prior(&self, plan: &Plan) -> Result<Option<Snapshot>, HistoryError> {
        self.engine.prior(&plan.node, self.tracks.get(&plan.node))
    }

    fn prior_under_lock(&self, plan: &Plan) -> Result<Option<Snapshot>, HistoryError> {
        self.engine.history.refresh()?;
        self.prior(plan)
    }

    fn recover(
        &self,
        plan: &Plan,
        previous: Option<&Snapshot>,
        found: Found,
    ) -> Result<Option<(Entry, Snapshot)>, HistoryError> {
        record_recovered(self.engine.history, &plan.node, previous, found)
    }

    fn record(&self, plan: &Plan, previous: Option<&Snapshot>, report: &mut NodeReport) {
        let track = self.tracks.get(&plan.node).cloned().unwrap_or_default();
        match record_push(self.engine.history, plan, report, previous, &track, self.forced) {
            Ok(entry) => report.recorded = entry,
            Err(err) => report.error = Some(NodeError::History(err.into())),
        }
    }
}
