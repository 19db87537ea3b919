//! Node files (`nodes/<name>/<name>.conf`): a node to configure, or a meta node grouping others.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::rollout::RolloutSettings;
use crate::model::settings::{HealthSettings, OnFailure, SshSettings};
use crate::model::vars::Vars;

/// How pacha reaches a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// The system's OpenSSH (the default).
    #[default]
    Ssh,
    /// The machine pacha runs on, without SSH: for tests, images and chroots.
    Local,
}

/// The scripts phases a node runs before and after its files are placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptPhases {
    #[serde(default)]
    /// Phases run before files are placed, in order.
    pub pre: Vec<String>,
    #[serde(default)]
    /// Phases run after files are placed, in order.
    pub post: Vec<String>,
    /// Seconds a script may run before its whole process group is killed (0: no limit);
    /// `scripts: {timeout: N}` in `pacha.yaml` when the node sets none.
    pub timeout: Option<u64>,
}

/// Settings that apply to a node only in one state.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    #[serde(default)]
    /// Variables of this layer.
    pub vars: Vars,
    #[serde(default)]
    /// Like `vars`, but never printed.
    pub secrets: Vars,
}

/// A node: one host to configure.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The SSH destination (`host`, `user@host` or an ssh_config alias); defaults to the node's
    /// name.
    pub host: Option<String>,
    /// The SSH port (overrides the ssh config).
    pub port: Option<u16>,
    /// The SSH user (overrides the ssh config).
    pub user: Option<String>,
    #[serde(default)]
    /// SSH (the default) or this machine.
    pub transport: TransportKind,
    /// The folder on the node under which every file is placed (default `/`).
    pub root: Option<String>,
    /// The apps of the node, in order.
    #[serde(default)]
    pub apps: Vec<String>,
    #[serde(default)]
    /// Variables of this layer.
    pub vars: Vars,
    /// Variables rendered into files but never printed.
    #[serde(default)]
    pub secrets: Vars,
    /// Per-state settings: `states: {production: {vars: {...}}}`.
    #[serde(default)]
    pub states: BTreeMap<String, StateSettings>,
    #[serde(default)]
    /// The script phases it runs.
    pub scripts: ScriptPhases,
    /// Globs of extra files on the node whose changes `capture` records.
    #[serde(default)]
    pub track: Vec<String>,
    /// Absolute paths on the node that must not exist (a push removes them).
    #[serde(default)]
    pub absent: Vec<String>,
    /// Overrides of the master's `ssh` settings.
    #[serde(default)]
    pub ssh: SshSettings,
    /// Health checks after the post scripts (else `pacha.yaml`'s).
    #[serde(default)]
    pub health: HealthSettings,
    /// What a failing post script or health check does (else `pacha.yaml`'s, else roll back).
    pub on_failure: Option<OnFailure>,
    /// Values of every secret of this node (filled in after parsing).
    #[serde(skip)]
    pub secret_values: Vec<String>,
}

/// A meta node: an ordered group of nodes and meta nodes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaNode {
    /// Names of the included nodes, in order, without the `.conf` suffix once loaded.
    pub include_nodes: Vec<String>,
    #[serde(default)]
    /// Variables of this layer.
    pub vars: Vars,
    #[serde(default)]
    /// Like `vars`, but never printed.
    pub secrets: Vars,
    /// Per-state settings, above this meta node's `vars` in that state.
    #[serde(default)]
    pub states: BTreeMap<String, StateSettings>,
    /// How a push of this meta node goes unless the command line says otherwise.
    #[serde(default)]
    pub rollout: RolloutSettings,
    /// The line of each entry of `include_nodes`, for error messages.
    #[serde(skip)]
    pub include_lines: Vec<Option<usize>>,
    #[serde(skip)]
    /// Values of every secret of this meta node (filled in after parsing).
    pub secret_values: Vec<String>,
}

/// What a node file defines.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    /// A node.
    Node(Box<Node>),
    /// A meta node.
    Meta(Box<MetaNode>),
}
