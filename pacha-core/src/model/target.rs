//! Where a node is: how pacha reaches it and the folder on it under which files go.

use crate::model::node::TransportKind;
use crate::model::settings::SshSettings;

/// How pacha reaches one node, resolved from the node file and the master's settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// SSH, or this machine.
    pub transport: TransportKind,
    /// The SSH destination.
    pub host: String,
    /// The SSH port, when the node file sets one (else ssh's configuration decides).
    pub port: Option<u16>,
    /// The SSH user, when the node file sets one.
    pub user: Option<String>,
    /// The folder on the node (an absolute path there) under which files are placed.
    pub root: String,
    /// The master's `ssh` settings overlaid by the node's, paths made absolute.
    pub ssh: SshSettings,
}
