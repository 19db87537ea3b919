//! The model and engine of pacha, a configuration manager: a master directory of templates,
//! scripts and node files becomes, per node and state, a [`Plan`] of files and scripts.
//!
//! This crate holds the model ([`Master`], [`Node`], [`MetaNode`], the [`NodeGraph`] of meta
//! nodes, variable layering, [`Plan`]) and reads the master's YAML files. It never prints and
//! never reads the environment: the caller passes everything in.
//!
//! ```
//! use pacha_core::Master;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("pacha.yaml"), "vars: {greeting: hello}\n")?;
//! std::fs::create_dir_all(dir.path().join("nodes/web1"))?;
//! std::fs::write(dir.path().join("nodes/web1/web1.conf"), "host: web1.example.com\napps: [motd]\n")?;
//! std::fs::create_dir_all(dir.path().join("nodes/web"))?;
//! std::fs::write(dir.path().join("nodes/web/web.conf"), "include_nodes: [web1]\nvars: {tier: front}\n")?;
//!
//! let master = Master::open(dir.path())?;
//! assert_eq!(master.expand("web")?, ["web1"]);
//! let vars = master.node_vars("web1", "production")?.for_app(&Default::default());
//! assert_eq!(vars["tier"], "front");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod bytes;
mod connection;
mod error;
mod graph;
mod history;
mod master;
mod mode;
mod name;
mod node;
mod path;
mod plan;
mod push;
mod restore;
mod settings;
#[cfg(test)]
mod testing;
mod vars;
pub mod yaml;

pub use connection::{
    Applied, Apply, Connection, Connector, FileStat, Inspect, Inspection, LiveFile, Placement, ScriptRun,
    TransportError,
};
pub use error::{ConfigError, GraphError, Location};
pub use graph::{InheritedVars, NodeGraph};
pub use history::{Entry, Event, EventKind, History, HistoryError, RecordedFile, RecordedScript, Snapshot};
pub use master::{Master, NodeVars, SETTINGS_FILE, Target};
pub use mode::{Mode, ModeError};
pub use name::{NameError, NameKind, check_name};
pub use node::{Definition, MetaNode, Node, ScriptPhases, StateSettings, TransportKind, line_of};
pub use path::{NodePath, PathError, normalize_relative};
pub use plan::{ContentHash, Plan, PlannedFile, PlannedScript, Stage};
pub use push::{
    Change, ChangeKind, NodeReport, Outcome, PushOptions, Quiet, Reporter, Timings, changes, in_parallel, push,
};
pub use restore::{
    Captured, Drift, NodeStatus, RestoreError, Restored, Track, capture, latest_snapshot, pushed_snapshot, rebuild,
    record_changes, record_push, record_reported, rollback, snapshot_plan, status, tracked_files,
};
pub use settings::{HostKeyPolicy, MasterSettings, SshSettings};
pub use vars::{Vars, fold_secrets, merge as merge_vars};
