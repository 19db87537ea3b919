//! The model and engine of pacha, a configuration manager: a master directory of templates,
//! scripts and node files becomes, per node and state, a [`Plan`] of files and scripts, which
//! the [`Engine`] brings to the node and records in the node's history.
//!
//! The crate reads as its architecture: the **model** (plain data: [`Master`] settings,
//! [`Node`], [`MetaNode`], [`Plan`], [`Snapshot`], …), the **master** (loading, the graph of
//! meta nodes), the **edges** (traits other crates implement: [`Connector`] to reach nodes,
//! [`History`] to record them, [`Planner`] to render, [`MasterLink`] for a node to reach its
//! master, [`Reporter`] to hear progress), and the **operations** the [`Engine`] composes:
//! push, rollback, rebuild, capture, status, and both ends of pull and watch. It never prints
//! and never reads the environment: the caller passes everything in.
//!
//! A push and a rollback, over the in-memory connector and history of the `testing` feature
//! (the real ones are `pacha_transport::SshConnector` and `pacha_vcs::GitHistory`):
//!
//! ```
//! use pacha_core::testing::{Memory, MemoryHistory, StaticPlanner};
//! use pacha_core::{Engine, History, Master, Outcome, PushOptions, Quiet};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("pacha.yaml"), "states: [default, production]\n")?;
//! std::fs::create_dir_all(dir.path().join("nodes/web1"))?;
//! std::fs::write(dir.path().join("nodes/web1/web1.conf"), "host: web1.example.com\n")?;
//! let master = Master::open(dir.path())?;
//!
//! let planner = StaticPlanner::new(&master, &[("/etc/motd", "hello\n")]);
//! let nodes = Memory::with_nodes(&["web1"]);
//! let history = MemoryHistory::default();
//! let engine = Engine::new(&master, &planner, &nodes, &history);
//!
//! let reports = engine.push("web1", "production", &PushOptions::default(), &Quiet)?;
//! assert_eq!(reports[0].outcome, Outcome::Changed);
//! let first = reports[0].recorded.clone().expect("a push that changed the node is recorded");
//!
//! planner.set_files(&[("/etc/motd", "changed\n")]);
//! engine.push("web1", "production", &PushOptions::default(), &Quiet)?;
//! assert_eq!(nodes.content("web1", "/etc/motd").as_deref(), Some(&b"changed\n"[..]));
//!
//! let done = engine.rollback("web1", &first.revision, &PushOptions::default(), &Quiet)?;
//! assert_eq!(done.report.outcome, Outcome::Changed);
//! assert_eq!(nodes.content("web1", "/etc/motd").as_deref(), Some(&b"hello\n"[..]));
//! assert_eq!(history.log("web1")?.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod edges;
mod engine;
mod error;
#[cfg(test)]
mod layers;
mod master;
mod model;
mod ops;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use edges::connection::{
    Applied, Apply, Connection, Connector, DirStat, FailedValidation, FileStat, Inspect, Inspection, LiveFile,
    Placement, ScriptRun, Step, TransportError,
};
pub use edges::history::{History, HistoryError};
pub use edges::link::{LinkError, MasterLink};
pub use edges::planner::{PlanError, Planner};
pub use edges::report::{Change, ChangeKind, NodeError, NodeReport, Outcome, Quiet, Reporter, Skip, Timings};
pub use engine::Engine;
pub use error::EngineError;
pub use master::age::{AgeError, AgeKeys};
pub use master::error::{ConfigError, GraphError, Location};
pub use master::graph::NodeGraph;
pub use master::origin::{VarLayers, VarOrigin, set_scalar};
pub use master::{Master, NodeVars, SECRETS_DIR, SETTINGS_FILE, SealedSecret, check_secret_name, yaml};
pub use model::hash::{ContentHash, Damaged};
pub use model::mode::{Mode, ModeError};
pub use model::name::{AccountError, NameError, NameKind, check_account, check_name};
pub use model::node::{Definition, MetaNode, Node, ScriptPhases, StateSettings, TransportKind};
pub use model::path::{NodePath, PathError};
pub use model::plan::{
    Expectation, HandledApp, Plan, PlannedDir, PlannedFile, PlannedLink, PlannedScript, Seen, Stage, redact,
};
pub use model::rollout::{Limit, LimitError, RolloutSettings};
pub use model::settings::{
    AgeSettings, HealthSettings, HostKeyPolicy, MasterSettings, OnFailure, ScriptDefaults, SshSettings,
};
pub use model::snapshot::{
    Entry, Event, EventKind, RecordedDir, RecordedFile, RecordedLink, RecordedScript, Snapshot, unix_seconds,
};
pub use model::target::Target;
pub use model::track::{Track, TrackError};
pub use model::vars::{self, Vars};
pub use ops::capture::{Captured, EditedFile, HandEdits};
pub use ops::pull::{Pulled, pull};
pub use ops::push::PushOptions;
pub use ops::render::Rendering;
pub use ops::restore::Restored;
pub use ops::saved::{SavedPlan, SavedPlanError};
pub use ops::serve::Server;
pub use ops::status::{Drift, NodeStatus};
pub use ops::watch::{MAX_SPOOLED, WatchSession, Watcher};
pub use ops::wire::{PROTOCOL_VERSION, read_message, write_message};
