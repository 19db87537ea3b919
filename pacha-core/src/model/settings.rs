//! `pacha.yaml`: the settings of a whole master, and the `ssh` settings a node may override.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::name::{NameKind, check_name};
use crate::model::node::StateSettings;
use crate::model::rollout::RolloutSettings;
use crate::vars::Vars;

/// The contents of `pacha.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSettings {
    /// Variables with the lowest precedence, seen by every node.
    #[serde(default)]
    pub vars: Vars,
    /// Like `vars`, but never printed.
    #[serde(default)]
    pub secrets: Vars,
    /// Where the history repository lives (default `hosts`), and where it is shared.
    #[serde(default)]
    pub history: HistorySettings,
    /// How many nodes a push works on at once.
    pub jobs: Option<usize>,
    /// Refuse to push, apply or roll back from a master with uncommitted changes.
    #[serde(default)]
    pub require_clean_master: bool,
    /// How pacha runs OpenSSH.
    #[serde(default)]
    pub ssh: SshSettings,
    /// Defaults for every node's scripts.
    #[serde(default)]
    pub scripts: ScriptDefaults,
    /// Who can read the secrets pacha encrypts, and the key that decrypts them.
    pub age: Option<AgeSettings>,
    /// The master's states, when declared (else they are found in the master).
    pub states: Option<DeclaredStates>,
    /// How a push of many nodes goes unless the command line says otherwise.
    #[serde(default)]
    pub rollout: RolloutSettings,
    /// The health checks of every node that sets none.
    #[serde(default)]
    pub health: HealthSettings,
    /// What a failing post script or health check does, for nodes that do not say.
    pub on_failure: Option<OnFailure>,
}

/// `history:` in `pacha.yaml`: a path (`history: hosts`), or `{path, remote, branch}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistorySettings {
    /// The repository's folder, relative to the master (default `hosts`).
    pub path: Option<PathBuf>,
    /// A git URL or path the history is shared through.
    pub remote: Option<String>,
    /// The remote's branch (default `main`).
    pub branch: Option<String>,
}

impl<'de> Deserialize<'de> for HistorySettings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<HistorySettings, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            path: Option<PathBuf>,
            remote: Option<String>,
            branch: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Path(PathBuf),
            Full(Full),
        }
        match Written::deserialize(deserializer) {
            Ok(Written::Path(path)) => Ok(HistorySettings {
                path: Some(path),
                ..HistorySettings::default()
            }),
            Ok(Written::Full(full)) => Ok(HistorySettings {
                path: full.path,
                remote: full.remote,
                branch: full.branch,
            }),
            Err(_) => Err(serde::de::Error::custom(
                "history: a path (history: hosts) or {path, remote, branch}",
            )),
        }
    }
}

/// What a failing post script or health check does to a node's change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Put the node back as it was before the push, run the post scripts again (the default).
    #[default]
    Rollback,
    /// Leave the new files in place; the post scripts are due on the next push.
    Keep,
}

impl HealthSettings {
    /// The default seconds a node waits for confirmation.
    pub const DEFAULT_TIMEOUT: u64 = 60;

    /// These settings with every key that `over` sets replaced by its value.
    pub fn overlaid(&self, over: &HealthSettings) -> HealthSettings {
        HealthSettings {
            scripts: over.scripts.clone().or_else(|| self.scripts.clone()),
            ssh: over.ssh.or(self.ssh),
            timeout: over.timeout.or(self.timeout),
        }
    }

    /// Seconds to wait for confirmation, when confirm or revert is on.
    pub fn confirm(&self) -> Option<u64> {
        (self.ssh == Some(true)).then(|| self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT))
    }

    /// Refuses what this version cannot do yet, and phase names that are not plain names.
    pub fn check(&self) -> Result<(), String> {
        if self.timeout == Some(0) {
            return Err("health: timeout must be at least 1".to_owned());
        }
        for phase in self.scripts.iter().flatten() {
            check_name(NameKind::Phase, phase).map_err(|err| format!("health: {err}"))?;
        }
        Ok(())
    }
}

/// `health:` in `pacha.yaml` or a node file: checks after the post scripts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Phases of `scripts/health/<phase>/`, run in order after the post scripts.
    pub scripts: Option<Vec<String>>,
    /// After the change, open a new SSH connection to the node and run `true` there; the node
    /// rolls back unless that worked and pacha confirmed within `timeout`.
    pub ssh: Option<bool>,
    /// Seconds the node waits for pacha's confirmation (default 60).
    pub timeout: Option<u64>,
}

/// `states:` in `pacha.yaml`: a list of names (`[default, staging, production]`), or a map
/// whose values carry each state's settings (`production: {vars: {…}, secrets: {…}}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "RawStates")]
pub struct DeclaredStates {
    /// Every declared state, in the order written.
    pub names: Vec<String>,
    /// The settings of the states written with some.
    pub settings: BTreeMap<String, StateSettings>,
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "states: a list of state names ([default, staging, production]) or a map of state names to {vars, secrets}"
)]
enum RawStates {
    List(Vec<String>),
    Map(serde_json::Map<String, serde_json::Value>),
}

impl TryFrom<RawStates> for DeclaredStates {
    type Error = String;

    fn try_from(raw: RawStates) -> Result<DeclaredStates, String> {
        let mut declared = DeclaredStates::default();
        match raw {
            RawStates::List(names) => declared.names = names,
            RawStates::Map(map) => {
                for (name, value) in map {
                    let settings = match value {
                        serde_json::Value::Null => StateSettings::default(),
                        value => serde_json::from_value(value).map_err(|err| format!("states: {name}: {err}"))?,
                    };
                    declared.names.push(name.clone());
                    declared.settings.insert(name, settings);
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &declared.names {
            check_name(NameKind::State, name).map_err(|err| format!("states: {err}"))?;
            if !seen.insert(name) {
                return Err(format!("states: {name:?} is declared twice"));
            }
        }
        Ok(declared)
    }
}

/// `age:` in `pacha.yaml`: secrets at rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeSettings {
    /// Public keys (`age1…`) that `pacha secret set` and the history encrypt to.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The identity file (`age-keygen` output) that decrypts; relative to the master.
    pub identity: Option<PathBuf>,
}

/// `scripts:` in `pacha.yaml`: what a node's scripts get unless its node file says otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptDefaults {
    /// Seconds a script may run (0: no limit).
    pub timeout: Option<u64>,
}

/// Whether an unknown host key is refused or recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Only hosts whose key is already in known_hosts are accepted (the default).
    #[default]
    Strict,
    /// An unknown host's key is recorded on first contact; a changed key is still refused.
    AcceptNew,
}

/// The `ssh` settings of `pacha.yaml`, which a node may override key by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// An ssh_config file passed to ssh as `-F`; its Host aliases work as node hosts.
    pub config_file: Option<PathBuf>,
    /// A private key file passed to ssh as `-i`.
    pub identity: Option<PathBuf>,
    /// A known_hosts file used instead of the user's.
    pub known_hosts: Option<PathBuf>,
    /// `strict` (the default) or `accept-new`.
    pub host_keys: Option<HostKeyPolicy>,
    /// Seconds to wait for the TCP connection.
    pub connect_timeout: Option<u64>,
    /// Seconds an idle connection is kept for the next pacha run (default 60, 0 disables).
    pub persist: Option<u64>,
}

impl SshSettings {
    /// The default number of seconds a connection is kept after use.
    pub const DEFAULT_PERSIST: u64 = 60;

    /// These settings with every key that `over` sets replaced by its value.
    pub fn overlaid(&self, over: &SshSettings) -> SshSettings {
        SshSettings {
            config_file: over.config_file.clone().or_else(|| self.config_file.clone()),
            identity: over.identity.clone().or_else(|| self.identity.clone()),
            known_hosts: over.known_hosts.clone().or_else(|| self.known_hosts.clone()),
            host_keys: over.host_keys.or(self.host_keys),
            connect_timeout: over.connect_timeout.or(self.connect_timeout),
            persist: over.persist.or(self.persist),
        }
    }

    /// Relative paths made absolute against `dir` (the master directory).
    pub fn resolved(mut self, dir: &Path) -> SshSettings {
        for path in [&mut self.config_file, &mut self.identity, &mut self.known_hosts]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
        self
    }

    /// The host key policy (strict unless set).
    pub fn host_key_policy(&self) -> HostKeyPolicy {
        self.host_keys.unwrap_or_default()
    }

    /// Seconds an idle connection is kept (60 unless set).
    pub fn persist_seconds(&self) -> u64 {
        self.persist.unwrap_or(Self::DEFAULT_PERSIST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keys_override_master_keys() {
        let master = SshSettings {
            config_file: Some("ssh_config".into()),
            persist: Some(10),
            ..SshSettings::default()
        };
        let node = SshSettings {
            persist: Some(0),
            host_keys: Some(HostKeyPolicy::AcceptNew),
            ..SshSettings::default()
        };
        let merged = master.overlaid(&node).resolved(Path::new("/m"));
        assert_eq!(merged.config_file.as_deref(), Some(Path::new("/m/ssh_config")));
        assert_eq!(merged.persist_seconds(), 0);
        assert_eq!(merged.host_key_policy(), HostKeyPolicy::AcceptNew);
    }

    #[test]
    fn parses_kebab_case_policy() {
        let ssh: SshSettings = yaml_serde::from_str("host_keys: accept-new\nconnect_timeout: 5\n").unwrap();
        assert_eq!(ssh.host_key_policy(), HostKeyPolicy::AcceptNew);
        assert!(yaml_serde::from_str::<SshSettings>("host_keys: loose\n").is_err());
    }
}
