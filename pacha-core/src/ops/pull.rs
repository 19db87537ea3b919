//! Pull: run on a node itself. The node's plan comes from its master over a [`MasterLink`], is
//! applied here the way a push applies it (same lock, snippets, atomic placement, scripts),
//! and what it placed is recorded in the master's history over the same link.

use std::sync::{Arc, Mutex, PoisonError};

use crate::edges::connection::Connector;
use crate::edges::link::{LinkError, MasterLink};
use crate::edges::report::{NodeError, NodeReport, Outcome, Reporter};
use crate::error::EngineError;
use crate::model::node::TransportKind;
use crate::model::plan::Plan;
use crate::model::snapshot::{Event, EventKind, Snapshot};
use crate::model::track::Track;
use crate::ops::push::{Books, PushOptions, push_plans};
use crate::ops::record::pushed_snapshot;
use crate::ops::wire::{Answer, Client, Request};

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The plan the master sent.
    pub plan: Plan,
    /// How applying it went; `recorded` holds the master's new history entry.
    pub report: NodeReport,
}

/// Pulls `node`'s plan in `state` (its last recorded state when `None`) from the master behind
/// `link`, applies it through `connector` (a local one: this machine is the node), and records
/// the result in the master's history.
pub fn pull(
    link: &mut dyn MasterLink,
    node: &str,
    state: Option<&str>,
    connector: &dyn Connector,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<Pulled, EngineError> {
    let mut client = Client::open(link)?;
    let mut plan = match client.call(&Request::Plan {
        node: node.to_owned(),
        state: state.map(str::to_owned),
    })? {
        Answer::Plan { plan } => *plan,
        other => return Err(client.unexpected(&other).into()),
    };
    plan.verify()?;
    if plan.node != node {
        return Err(LinkError::Malformed {
            master: client.master().to_owned(),
            detail: format!("the plan of {:?} came for {node:?}", plan.node),
        }
        .into());
    }
    // Here is the node: whatever transport the master uses, apply locally under its root.
    plan.target.transport = TransportKind::Local;
    let books = PullBooks {
        client: Mutex::new(client),
        forced: options.force,
    };
    let report = push_plans(std::slice::from_ref(&plan), connector, options, reporter, &books)
        .into_iter()
        .next()
        .unwrap_or_else(|| NodeReport::new(&plan));
    Ok(Pulled { plan, report })
}

/// A pull records in the master's history, over the session it fetched the plan on.
struct PullBooks<'a> {
    client: Mutex<Client<'a>>,
    forced: bool,
}

impl Books for PullBooks<'_> {
    fn record(&self, plan: &Plan, _previous: Option<&Snapshot>, report: &mut NodeReport) {
        if !(report.placed && (!report.changes.is_empty() || self.forced)) {
            return;
        }
        let event = Event {
            kind: EventKind::Pull,
            host: None,
            at: None,
            node: plan.node.clone(),
            state: Some(plan.state.clone()),
            changed: report.changes.iter().map(|change| change.destination.clone()).collect(),
            failed: report.outcome == Outcome::Failed,
            detail: None,
        };
        let request = Request::Record {
            event,
            snapshot: pushed_snapshot(plan, report, None, &Track::default()),
        };
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        match client.call(&request) {
            Ok(Answer::Recorded { entry }) => report.recorded = entry,
            Ok(other) => report.error = Some(NodeError::MasterHistory(Arc::new(client.unexpected(&other)))),
            Err(err) => report.error = Some(NodeError::MasterHistory(Arc::new(err))),
        }
    }
}
