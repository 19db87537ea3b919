//! `<node>/meta.yaml`: what git does not keep about files (owner, group, all twelve mode bits).

use std::collections::BTreeMap;

use pacha_core::{EventKind, Mode, Stage};
use serde::{Deserialize, Serialize};

/// The metadata file of one node at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeMeta {
    pub node: String,
    pub event: EventKind,
    pub state: Option<String>,
    #[serde(default)]
    pub failed: bool,
    /// Recorded files by path on the node.
    pub files: BTreeMap<String, FileMeta>,
    #[serde(default)]
    pub scripts: Vec<ScriptMeta>,
    /// Symbolic links by path on the node (git symlinks under `files/` too).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, LinkMeta>,
    /// Managed folders by path on the node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dirs: BTreeMap<String, DirMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkMeta {
    pub target: String,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub managed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirMeta {
    pub mode: Mode,
    pub owner: String,
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileMeta {
    pub sha256: String,
    pub mode: Mode,
    pub owner: String,
    pub group: String,
    pub size: u64,
    /// Written only for a file pacha did not place (captured through `track`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub managed: bool,
    /// Written only for a file that holds a secret.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret: bool,
    /// Written only for a file stored as age ciphertext (a secret, with recipients set).
    #[serde(default, skip_serializing_if = "is_false")]
    pub encrypted: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScriptMeta {
    pub stage: Stage,
    pub phase: String,
    pub name: String,
    pub sha256: String,
}
