//! Rendering many nodes: plans made on several threads and handed on in the expanded order, a
//! small batch in memory at a time; and a plan's files written to a folder (`render --out`).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread;

use crate::edges::planner::{PlanError, Planner};
use crate::error::EngineError;
use crate::master::Master;
use crate::model::plan::Plan;

/// A master with its planner: the plans of nodes, rendered on several threads.
pub struct Rendering<'a> {
    master: &'a Master,
    planner: &'a dyn Planner,
    threads: usize,
}

impl<'a> Rendering<'a> {
    /// Renders `master`'s nodes through `planner`, on every core of this machine unless
    /// [`Rendering::with_threads`] says otherwise.
    pub fn new(master: &'a Master, planner: &'a dyn Planner) -> Rendering<'a> {
        Rendering {
            master,
            planner,
            threads: thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// Renders on up to `threads` threads.
    pub fn with_threads(mut self, threads: usize) -> Rendering<'a> {
        self.threads = threads.max(1);
        self
    }

    /// The plan of leaf node `node` in `state`.
    pub fn plan(&self, node: &str, state: &str) -> Result<Plan, EngineError> {
        self.master.node(node)?;
        self.planner.plan(node, state).map_err(|source| EngineError::Render {
            node: node.to_owned(),
            source,
        })
    }

    /// The plans of every leaf of `node` in `state`, in the expanded order; an error if any
    /// plan fails, so nothing goes further unless every plan rendered.
    pub fn plans(&self, node: &str, state: &str) -> Result<Vec<Plan>, EngineError> {
        let nodes = self.master.expand(node)?;
        self.plans_of(nodes.into_iter().map(|node| (node, state.to_owned())).collect())
    }

    /// The plans of leaf nodes, each in its own state, in the order given; an error if any
    /// plan fails.
    pub fn plans_of(&self, nodes: Vec<(String, String)>) -> Result<Vec<Plan>, EngineError> {
        for (_, state) in &nodes {
            self.master.check_state(state)?;
        }
        let mut plans = Vec::with_capacity(nodes.len());
        render_in_order::<EngineError>(self.planner, &nodes, self.threads, |plan| {
            plans.push(plan);
            Ok(())
        })?;
        Ok(plans)
    }

    /// Renders every leaf of `node` in `state` and hands each plan to `sink` in the expanded
    /// order, a few in memory at a time (a fleet of thousands renders in little memory). With
    /// `out`, each plan's files are first written to `out/<node>/<path>` with their modes, as
    /// `pacha render --out` does.
    pub fn render<E: From<EngineError>>(
        &self,
        node: &str,
        state: &str,
        out: Option<&Path>,
        mut sink: impl FnMut(Plan) -> Result<(), E>,
    ) -> Result<(), E> {
        self.master.check_state(state).map_err(EngineError::from)?;
        let nodes: Vec<(String, String)> = self
            .master
            .expand(node)
            .map_err(EngineError::from)?
            .into_iter()
            .map(|node| (node, state.to_owned()))
            .collect();
        render_in_order(self.planner, &nodes, self.threads, |plan| {
            if let Some(out) = out {
                write_files(out, &plan)?;
            }
            sink(plan)
        })
    }
}

/// Renders the plans of `nodes` (each with its state) on up to `threads` threads and hands
/// each to `sink` in the order of `nodes`. Stops at the first error (a plan's or the sink's).
fn render_in_order<E: From<EngineError>>(
    planner: &dyn Planner,
    nodes: &[(String, String)],
    threads: usize,
    mut sink: impl FnMut(Plan) -> Result<(), E>,
) -> Result<(), E> {
    let threads = threads.max(1);
    for batch in nodes.chunks(threads * 4) {
        let mut results: Vec<Option<Result<Plan, PlanError>>> = (0..batch.len()).map(|_| None).collect();
        if threads == 1 || batch.len() == 1 {
            for (slot, (node, state)) in results.iter_mut().zip(batch) {
                *slot = Some(planner.plan(node, state));
            }
        } else {
            let per_thread = batch.len().div_ceil(threads);
            thread::scope(|scope| {
                for (slots, nodes) in results.chunks_mut(per_thread).zip(batch.chunks(per_thread)) {
                    scope.spawn(move || {
                        for (slot, (node, state)) in slots.iter_mut().zip(nodes) {
                            *slot = Some(planner.plan(node, state));
                        }
                    });
                }
            });
        }
        for ((node, _), result) in batch.iter().zip(results) {
            match result {
                Some(Ok(plan)) => sink(plan)?,
                Some(Err(source)) => {
                    return Err(EngineError::Render {
                        node: node.clone(),
                        source,
                    }
                    .into());
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// Writes the files of `plan` under `dir/<node>/`, with the planned modes.
fn write_files(dir: &Path, plan: &Plan) -> Result<(), EngineError> {
    let node_dir = dir.join(&plan.node);
    for file in &plan.files {
        let path = node_dir.join(file.destination.relative());
        let failed = |source| EngineError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(failed)?;
        }
        // A file left by an earlier run may be read-only.
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(failed(err)),
            _ => {}
        }
        fs::write(&path, &file.content).map_err(failed)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode.bits())).map_err(failed)?;
    }
    Ok(())
}
