//! The master directory: discovery, `pacha.yaml`, every node file, the graph of meta nodes,
//! and the errors that name the master file (and line) at fault.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) mod age;
pub(crate) mod definition;
pub(crate) mod error;
pub(crate) mod graph;
pub(crate) mod origin;
pub(crate) mod states;
pub mod yaml;

use crate::master::age::{AgeError, AgeKeys};
use crate::master::error::{ConfigError, GraphError, Location};
use crate::master::graph::NodeGraph;
use crate::master::states::{KnownStates, template_state_folders};
use crate::model::name::{NameKind, check_name};
use crate::model::node::{Definition, Node, TransportKind};
use crate::model::path::NodePath;
use crate::model::settings::MasterSettings;
use crate::model::target::Target;
use crate::model::track::Track;
use crate::model::vars::{self, Vars};

/// The file that makes a folder a master.
pub const SETTINGS_FILE: &str = "pacha.yaml";

/// A loaded master: its settings and every node and meta node.
#[derive(Debug, Clone)]
pub struct Master {
    dir: PathBuf,
    settings: MasterSettings,
    /// Secret values of `pacha.yaml`.
    secrets: Vec<String>,
    graph: NodeGraph,
    age: AgeKeys,
    sealed: Vec<SealedSecret>,
    states: KnownStates,
    /// Secret values of each state block of `pacha.yaml`.
    state_secrets: BTreeMap<String, Vec<String>>,
    /// Decrypted values of `sealed`, by index, filled as nodes need them.
    opened: Arc<Mutex<BTreeMap<usize, Result<String, AgeError>>>>,
}

/// An encrypted secret of the master: `secrets/NAME.age` or `nodes/NODE/secrets/NAME.age`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The variable it sets.
    pub name: String,
    /// The node whose layer it belongs to; `None` for the master-wide layer.
    pub node: Option<String>,
    /// Its file, relative to the master.
    pub file: String,
    /// Its contents (age ciphertext).
    pub ciphertext: Arc<[u8]>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("node", &self.node)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can be a git branch (`refs/heads/NAME` a valid ref, no leading `-`).
fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .chars()
            .all(|character| character.is_ascii_graphic() && !"~^:?*[\\".contains(character))
}

/// The folder of encrypted secrets, in the master and in a node's folder.
pub const SECRETS_DIR: &str = "secrets";

/// The variables of one node in one state, before an app's own variables are put in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeVars {
    /// `pacha.yaml` vars, then its block for the state (lowest precedence).
    pub master: Vars,
    /// Meta node, node and state vars merged (they all outrank `app.yaml`).
    pub upper: Vars,
    /// Values never to print.
    pub secrets: Vec<String>,
}

impl NodeVars {
    /// The variables an app's templates see: master, then the app's, then the node's layers.
    pub fn for_app(&self, app_vars: &Vars) -> Vars {
        let mut merged = self.master.clone();
        vars::merge(&mut merged, app_vars);
        vars::merge(&mut merged, &self.upper);
        merged
    }
}

impl Master {
    /// Finds the master: `explicit` (a folder the caller was told), else `from_env` (one set in
    /// the caller's environment), else the nearest folder from `cwd` upward that holds
    /// `pacha.yaml`.
    pub fn discover(explicit: Option<&Path>, from_env: Option<&Path>, cwd: &Path) -> Result<PathBuf, ConfigError> {
        if let Some(dir) = explicit.or(from_env) {
            let dir = if dir.is_relative() {
                cwd.join(dir)
            } else {
                dir.to_path_buf()
            };
            if !dir.join(SETTINGS_FILE).is_file() {
                return Err(ConfigError::NotAMaster { dir });
            }
            return Ok(dir);
        }
        cwd.ancestors()
            .find(|dir| dir.join(SETTINGS_FILE).is_file())
            .map(Path::to_path_buf)
            .ok_or_else(|| ConfigError::MasterNotFound {
                start: cwd.to_path_buf(),
            })
    }

    /// Loads the master in `dir`: `pacha.yaml` and every `nodes/<name>/<name>.conf`.
    pub fn open(dir: &Path) -> Result<Master, ConfigError> {
        let dir = dir.to_path_buf();
        if !dir.join(SETTINGS_FILE).is_file() {
            return Err(ConfigError::NotAMaster { dir });
        }
        let settings_text = read_text(&dir.join(SETTINGS_FILE), SETTINGS_FILE)?;
        let mut settings: MasterSettings = yaml::parse(SETTINGS_FILE, &settings_text).map_err(|err| match err {
            // `states:` is read whole (a list or a map), so its errors are placed at the key.
            ConfigError::Yaml { file, message, .. } if message.starts_with("states:") => ConfigError::Yaml {
                line: yaml::line_of(&settings_text, "states:"),
                column: None,
                file,
                message,
            },
            other => other,
        })?;
        let mut secrets = Vec::new();
        vars::fold_secrets(&mut settings.vars, &settings.secrets, &mut secrets);
        let mut state_secrets = BTreeMap::new();
        if let Some(declared) = &mut settings.states {
            for (state, block) in &mut declared.settings {
                let values = state_secrets.entry(state.clone()).or_insert_with(Vec::new);
                vars::fold_secrets(&mut block.vars, &block.secrets, values);
            }
        }
        for (key, value) in [
            ("serial", settings.rollout.serial),
            ("max_fail", settings.rollout.max_fail),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid {
                    at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, key)),
                    message: format!("rollout: {key} must be at least 1"),
                });
            }
        }
        if let Err(message) = settings.health.check() {
            return Err(ConfigError::Invalid {
                at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, "health")),
                message,
            });
        }
        if let Some(remote) = &settings.history.remote
            && (remote.trim().is_empty() || remote.starts_with('-') || remote.contains(['\n', '\0']))
        {
            return Err(ConfigError::Invalid {
                at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, "remote")),
                message: format!("history: remote {remote:?} is not a git URL or path"),
            });
        }
        if let Some(branch) = &settings.history.branch
            && !valid_branch(branch)
        {
            return Err(ConfigError::Invalid {
                at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, "branch")),
                message: format!("history: branch {branch:?} is not a git branch name"),
            });
        }
        if settings.jobs == Some(0) {
            return Err(ConfigError::Invalid {
                at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, "jobs")),
                message: "jobs must be at least 1".to_owned(),
            });
        }

        let age_settings = settings.age.clone().unwrap_or_default();
        let age = AgeKeys::new(
            &age_settings.recipients,
            age_settings.identity.map(|path| dir.join(path)),
        )
        .map_err(|err| ConfigError::Invalid {
            at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, "recipients")),
            message: err.to_string(),
        })?;
        let mut sealed = read_sealed(&dir.join(SECRETS_DIR), SECRETS_DIR, None)?;
        for secret in &sealed {
            if settings.secrets.contains_key(&secret.name) {
                return Err(twice(secret, SETTINGS_FILE));
            }
        }

        let mut state_uses = template_state_folders(&dir)?;
        let mut definitions = BTreeMap::new();
        let mut files = BTreeMap::new();
        let nodes_dir = dir.join("nodes");
        if nodes_dir.is_dir() {
            let entries = fs::read_dir(&nodes_dir).map_err(|source| ConfigError::Read {
                file: "nodes".to_owned(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| ConfigError::Read {
                    file: "nodes".to_owned(),
                    source,
                })?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let shown = format!("nodes/{name}/{name}.conf");
                let path = entry.path().join(format!("{name}.conf"));
                if !path.is_file() {
                    continue;
                }
                check_name(NameKind::Node, &name).map_err(|source| ConfigError::Name {
                    at: Location::file(&shown),
                    source,
                })?;
                let text = read_text(&path, &shown)?;
                let definition = Definition::parse(&shown, &text)?;
                let states = match &definition {
                    Definition::Node(node) => node.states.keys(),
                    Definition::Meta(meta) => meta.states.keys(),
                };
                for state in states {
                    state_uses.push((state.clone(), Location::line(&shown, yaml::line_of(&text, state))));
                }
                let node_sealed = read_sealed(
                    &entry.path().join(SECRETS_DIR),
                    &format!("nodes/{name}/{SECRETS_DIR}"),
                    Some(&name),
                )?;
                match (&definition, node_sealed.first()) {
                    (_, None) => {}
                    (Definition::Meta(_), Some(secret)) => {
                        return Err(ConfigError::Invalid {
                            at: Location::file(&secret.file),
                            message: format!(
                                "{name} is a meta node, and only the master (secrets/) and single nodes have encrypted secrets"
                            ),
                        });
                    }
                    (Definition::Node(node), Some(_)) => {
                        if let Some(secret) = node_sealed
                            .iter()
                            .find(|secret| node.secrets.contains_key(&secret.name))
                        {
                            return Err(twice(secret, &shown));
                        }
                    }
                }
                sealed.extend(node_sealed);
                definitions.insert(name.clone(), definition);
                files.insert(name, shown);
            }
        }
        let states = KnownStates::new(settings.states.as_ref(), &state_uses)?;
        Ok(Master {
            dir,
            states,
            state_secrets,
            settings,
            secrets,
            graph: NodeGraph::new(definitions, files),
            age,
            sealed,
            opened: Arc::default(),
        })
    }

    /// The states this master knows, in order: those `pacha.yaml` declares, else `default`,
    /// every state folder under `templates/*/` and every `states:` key of a node file.
    pub fn states(&self) -> &[String] {
        &self.states.names
    }

    /// Refuses `state` unless the master knows it (with the known states and a did-you-mean).
    pub fn check_state(&self, state: &str) -> Result<(), ConfigError> {
        check_name(NameKind::State, state).map_err(ConfigError::StateName)?;
        self.states.check(state)
    }

    /// The master's age recipients and identity.
    pub fn age(&self) -> &AgeKeys {
        &self.age
    }

    /// Decrypts with the identity file `path` (relative: from the master) instead of the one
    /// `pacha.yaml` names.
    pub fn set_age_identity(&mut self, path: &Path) {
        self.age = self.age.clone().with_identity(self.dir.join(path));
        self.opened = Arc::default();
    }

    /// Every encrypted secret: the master's, then each node's.
    pub fn sealed_secrets(&self) -> &[SealedSecret] {
        &self.sealed
    }

    /// The encrypted secrets of one layer (`None`: the master-wide one), decrypted.
    fn opened_layer(&self, node: Option<&str>) -> Result<Vars, ConfigError> {
        let mut layer = Vars::new();
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        for (index, secret) in self.sealed.iter().enumerate() {
            if secret.node.as_deref() != node {
                continue;
            }
            let value = opened.entry(index).or_insert_with(|| {
                let plaintext = self.age.decrypt(&secret.file, &secret.ciphertext)?;
                let text = String::from_utf8(plaintext).map_err(|_| AgeError::Damaged {
                    what: secret.file.clone(),
                    message: "its value is not UTF-8 text".to_owned(),
                })?;
                Ok(text)
            });
            let value = value.clone()?;
            layer.insert(secret.name.clone(), serde_json::Value::String(value));
        }
        Ok(layer)
    }

    /// The master folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings of `pacha.yaml`.
    pub fn settings(&self) -> &MasterSettings {
        &self.settings
    }

    /// Every node and meta node.
    pub fn graph(&self) -> &NodeGraph {
        &self.graph
    }

    /// Where the history repository lives.
    pub fn history_dir(&self) -> PathBuf {
        let configured = self
            .settings
            .history
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("hosts"));
        if configured.is_relative() {
            self.dir.join(configured)
        } else {
            configured
        }
    }

    /// Where the history is shared, when `history: {remote: …}` says: the URL as git takes
    /// it (a relative path made absolute against the master) and the branch.
    pub fn history_remote(&self) -> Option<(String, String)> {
        let remote = self.settings.history.remote.as_ref()?;
        let branch = self
            .settings
            .history
            .branch
            .clone()
            .unwrap_or_else(|| "main".to_owned());
        // `scheme://…` and scp-like `host:path` are URLs; anything else is a path.
        let url_like = remote.contains("://")
            || remote
                .split_once(':')
                .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'));
        let url = if url_like || Path::new(remote).is_absolute() {
            remote.clone()
        } else {
            self.dir.join(remote).display().to_string()
        };
        Some((url, branch))
    }

    /// Whether any layer of the master declares a secret (pacha.yaml, its states, encrypted
    /// secret files, node and meta node files). app.yaml files are read when rendering.
    pub fn declares_secrets(&self) -> bool {
        let in_states = |states: &BTreeMap<String, crate::model::node::StateSettings>| {
            states.values().any(|block| !block.secrets.is_empty())
        };
        !self.secrets.is_empty()
            || self.state_secrets.values().any(|names| !names.is_empty())
            || !self.sealed.is_empty()
            || self.graph.names().any(|name| match self.graph.definition(name) {
                Ok(Definition::Node(node)) => !node.secrets.is_empty() || in_states(&node.states),
                Ok(Definition::Meta(meta)) => !meta.secrets.is_empty() || in_states(&meta.states),
                Err(_) => false,
            })
    }

    /// `path` as the user should see it: relative to the master when inside it.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir).unwrap_or(path).display().to_string()
    }

    /// The leaf nodes of `name`, in order.
    pub fn expand(&self, name: &str) -> Result<Vec<String>, GraphError> {
        self.graph.expand(name)
    }

    /// The node `name` (not a meta node).
    pub fn node(&self, name: &str) -> Result<&Node, GraphError> {
        self.graph.node(name)
    }

    /// The `track` globs of node `name`, compiled (they were checked when the file was read).
    pub fn track(&self, name: &str) -> Result<Track, GraphError> {
        let node = self.node(name)?;
        Track::new(&node.track).map_err(|err| {
            GraphError::Config(ConfigError::Invalid {
                at: Location::file(self.graph.file(name).unwrap_or_default()),
                message: err.to_string(),
            })
        })
    }

    /// Every leaf node (not meta node), in name order.
    pub fn leaf_nodes(&self) -> Vec<String> {
        self.graph
            .names()
            .filter(|name| matches!(self.graph.definition(name), Ok(Definition::Node(_))))
            .map(str::to_owned)
            .collect()
    }

    /// How to reach node `name`.
    pub fn target(&self, name: &str) -> Result<Target, GraphError> {
        let node = self.node(name)?;
        let file = self.graph.file(name).unwrap_or_default().to_owned();
        let written_root = node.root.clone().unwrap_or_else(|| "/".to_owned());
        let root = match node.transport {
            TransportKind::Local if !written_root.starts_with('/') => {
                self.dir.join(&written_root).display().to_string()
            }
            _ => written_root,
        };
        let root = NodePath::parse(&root).map_err(|err| ConfigError::Invalid {
            at: Location::file(&file),
            message: format!("root: {err}; write an absolute path on the node"),
        })?;
        Ok(Target {
            transport: node.transport,
            host: node.host.clone().unwrap_or_else(|| name.to_owned()),
            port: node.port,
            user: node.user.clone(),
            root: root.to_string(),
            ssh: self.settings.ssh.overlaid(&node.ssh).resolved(&self.dir),
        })
    }

    /// The layered variables of node `name` in `state`, with meta node inheritance resolved.
    pub fn node_vars(&self, name: &str, state: &str) -> Result<NodeVars, GraphError> {
        self.check_state(state)?;
        let node = self.node(name)?;
        let state_vars = node.states.get(state).map(|settings| &settings.vars);
        let master_sealed = self.opened_layer(None)?;
        let node_sealed = self.opened_layer(Some(name))?;
        let node_sets = |path: &str| {
            vars::sets_path(&node.vars, path)
                || vars::sets_path(&node_sealed, path)
                || state_vars.is_some_and(|v| vars::sets_path(v, path))
        };
        let inherited = self.graph.inherited_vars(name, state, &node_sets)?;
        let mut upper = inherited.vars;
        vars::merge(&mut upper, &node.vars);
        vars::merge(&mut upper, &node_sealed);
        if let Some(state_vars) = state_vars {
            vars::merge(&mut upper, state_vars);
        }
        let mut secrets = self.secrets.clone();
        secrets.extend(inherited.secrets);
        secrets.extend(node.secret_values.iter().cloned());
        for layer in [&master_sealed, &node_sealed] {
            layer
                .values()
                .for_each(|value| vars::collect_secret_values(value, &mut secrets));
        }
        secrets.sort();
        secrets.dedup();
        let mut master = self.settings.vars.clone();
        vars::merge(&mut master, &master_sealed);
        if let Some(block) = self
            .settings
            .states
            .as_ref()
            .and_then(|declared| declared.settings.get(state))
        {
            vars::merge(&mut master, &block.vars);
            secrets.extend(self.state_secrets.get(state).into_iter().flatten().cloned());
            secrets.sort();
            secrets.dedup();
        }
        Ok(NodeVars { master, upper, secrets })
    }
}

/// The `NAME.age` files of a secrets folder (none when it does not exist).
fn read_sealed(dir: &Path, shown: &str, node: Option<&str>) -> Result<Vec<SealedSecret>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        file: shown.to_owned(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(read_err(err)),
    };
    let mut sealed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_err)?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let file = format!("{shown}/{file_name}");
        let name = file_name.strip_suffix(".age").unwrap_or_default();
        if let Err(reason) = check_secret_name(name) {
            return Err(ConfigError::Invalid {
                at: Location::file(&file),
                message: format!("{reason}; {shown}/ holds only NAME.age files that `pacha secret set` writes"),
            });
        }
        let ciphertext = fs::read(entry.path()).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        sealed.push(SealedSecret {
            name: name.to_owned(),
            node: node.map(str::to_owned),
            file,
            ciphertext: ciphertext.into(),
        });
    }
    sealed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sealed)
}

/// Checks the name of an encrypted secret: a variable name (letters, digits, `_`, `-`, not
/// starting with `-`), so that the file name and the variable are the same word.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a secret file is named NAME.age".to_owned());
    }
    if name.starts_with('-')
        || !name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_-".contains(&byte))
    {
        return Err(format!(
            "{name:?} is not a secret name (letters, digits, `_` and `-`, not starting with `-`)"
        ));
    }
    Ok(())
}

fn twice(secret: &SealedSecret, file: &str) -> ConfigError {
    ConfigError::Invalid {
        at: Location::file(&secret.file),
        message: format!(
            "secret `{}` is also set under `secrets:` in {file}; keep one of them",
            secret.name
        ),
    }
}

fn read_text(path: &Path, shown: &str) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: shown.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn discovers_nearest_master_upward() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "pacha.yaml", "");
        fs::create_dir_all(tmp.path().join("templates/a/b")).unwrap();
        let found = Master::discover(None, None, &tmp.path().join("templates/a/b")).unwrap();
        assert_eq!(found, tmp.path());
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            Master::discover(None, None, other.path()),
            Err(ConfigError::MasterNotFound { .. })
        ));
        assert!(matches!(
            Master::discover(Some(other.path()), None, tmp.path()),
            Err(ConfigError::NotAMaster { .. })
        ));
        assert!(matches!(
            Master::open(other.path()),
            Err(ConfigError::NotAMaster { dir }) if dir == other.path()
        ));
        assert_eq!(
            Master::discover(None, Some(tmp.path()), other.path()).unwrap(),
            tmp.path()
        );
    }

    #[test]
    fn layers_vars_in_precedence_order() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "pacha.yaml",
            "vars: {a: master, b: master, c: master, d: master}\nsecrets: {token: s3cret}\n",
        );
        write(
            tmp.path(),
            "nodes/web/web.conf",
            "include_nodes: [web1]\nvars: {b: meta, c: meta, d: meta}\n",
        );
        write(
            tmp.path(),
            "nodes/web1/web1.conf",
            "vars: {c: node, d: node}\nstates:\n  production:\n    vars: {d: state}\n",
        );
        let master = Master::open(tmp.path()).unwrap();
        let vars = master.node_vars("web1", "production").unwrap();
        let merged = vars.for_app(&serde_json::json!({"a": "app", "b": "app"}).as_object().unwrap().clone());
        assert_eq!(
            serde_json::Value::Object(merged),
            serde_json::json!({"a": "app", "b": "meta", "c": "node", "d": "state", "token": "s3cret"})
        );
        assert_eq!(vars.secrets, ["s3cret"]);
        let target = master.target("web1").unwrap();
        assert_eq!(target.host, "web1");
        assert_eq!(target.root, "/");
    }

    #[test]
    fn state_blocks_of_every_layer_sit_above_that_layer() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "pacha.yaml",
            "vars: {a: master, b: master, c: master, d: master}\nstates:\n  default:\n  production:\n    vars: {a: master-prod, b: master-prod}\n    secrets: {token: prod-token}\n",
        );
        write(
            tmp.path(),
            "nodes/all/all.conf",
            "include_nodes: [web1]\nvars: {b: meta}\nstates:\n  production:\n    vars: {c: meta-prod}\n",
        );
        write(tmp.path(), "nodes/web1/web1.conf", "vars: {d: node}\n");
        let master = Master::open(tmp.path()).unwrap();
        assert_eq!(master.states(), ["default", "production"]);
        let app = serde_json::json!({"a": "app"}).as_object().unwrap().clone();
        let production = master.node_vars("web1", "production").unwrap();
        assert_eq!(
            serde_json::Value::Object(production.for_app(&app)),
            serde_json::json!({"a": "app", "b": "meta", "c": "meta-prod", "d": "node", "token": "prod-token"})
        );
        assert_eq!(production.secrets, ["prod-token"]);
        let default = master.node_vars("web1", "default").unwrap().for_app(&Vars::new());
        assert_eq!(
            serde_json::Value::Object(default),
            serde_json::json!({"a": "master", "b": "meta", "c": "master", "d": "node"})
        );

        // Two unrelated meta nodes that disagree in a state's block conflict in that state only.
        write(
            tmp.path(),
            "nodes/other/other.conf",
            "include_nodes: [web1]\nstates:\n  production:\n    vars: {c: other-prod}\n",
        );
        let master = Master::open(tmp.path()).unwrap();
        let err = master.node_vars("web1", "production").unwrap_err().to_string();
        assert!(err.contains("inherits variable `c` from two meta nodes"), "{err}");
        master.node_vars("web1", "default").unwrap();

        // A meta node's state key outside the declared states is a load error at its line.
        write(
            tmp.path(),
            "nodes/other/other.conf",
            "include_nodes: [web1]\nstates:\n  staging:\n    vars: {c: x}\n",
        );
        let err = Master::open(tmp.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("nodes/other/other.conf:3: state \"staging\" is not declared"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_states_declaration_is_named_at_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        for (text, expected) in [
            ("vars: {}\nstates: 5\n", "pacha.yaml:2: states: a list of state names"),
            (
                "vars: {}\nstates:\n  production: {varz: {}}\n",
                "pacha.yaml:2: states: production: unknown field `varz`",
            ),
            (
                "states: [default, default]\n",
                "pacha.yaml:1: states: \"default\" is declared twice",
            ),
            ("states: [\"../x\"]\n", "pacha.yaml:1: states: invalid state name"),
        ] {
            write(tmp.path(), "pacha.yaml", text);
            let err = Master::open(tmp.path()).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{text}: {err}");
        }
    }

    #[test]
    fn undeclared_states_are_found_in_folders_and_states_keys() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "pacha.yaml", "");
        write(tmp.path(), "templates/nginx/staging/x.conf", "x");
        write(tmp.path(), "templates/nginx/default/x.conf", "x");
        write(
            tmp.path(),
            "templates/chrony/app.yaml",
            "states:\n  lab: {vars: {x: 1}}\n",
        );
        write(
            tmp.path(),
            "nodes/all/all.conf",
            "include_nodes: [web1]\nstates: {edge: {}}\n",
        );
        write(tmp.path(), "nodes/web1/web1.conf", "states: {production: {}}\n");
        let master = Master::open(tmp.path()).unwrap();
        assert_eq!(master.states(), ["default", "edge", "lab", "production", "staging"]);
        let err = master.check_state("prod").unwrap_err().to_string();
        assert!(
            err.starts_with("unknown state \"prod\" (states: default, edge, lab, production, staging)"),
            "{err}"
        );
    }

    #[test]
    fn encrypted_secrets_join_the_master_and_node_layers() {
        use ::age::secrecy::ExposeSecret;
        let tmp = tempfile::tempdir().unwrap();
        let identity = ::age::x25519::Identity::generate();
        write(
            tmp.path(),
            "key.txt",
            &format!("{}\n", identity.to_string().expose_secret()),
        );
        let recipient = identity.to_public().to_string();
        write(
            tmp.path(),
            "pacha.yaml",
            &format!("age: {{recipients: [{recipient}], identity: key.txt}}\nvars: {{token: plain, port: 1}}\n"),
        );
        write(tmp.path(), "nodes/web1/web1.conf", "vars: {tls: from-vars}\n");
        write(tmp.path(), "nodes/web2/web2.conf", "{}\n");
        let keys = AgeKeys::new(&[recipient], None).unwrap();
        let seal = |path: &str, value: &str| {
            let path = tmp.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, keys.encrypt("x", value.as_bytes()).unwrap()).unwrap();
        };
        seal("secrets/token.age", "t0ken");
        seal("nodes/web1/secrets/tls.age", "k3y");
        let master = Master::open(tmp.path()).unwrap();
        assert_eq!(master.sealed_secrets().len(), 2);
        assert!(!format!("{:?}", master.sealed_secrets()).contains("BEGIN"));
        let web1 = master.node_vars("web1", "default").unwrap();
        let merged = web1.for_app(&Vars::new());
        assert_eq!(merged["token"], "t0ken");
        assert_eq!(merged["tls"], "k3y");
        assert_eq!(web1.secrets, ["k3y", "t0ken"]);
        let web2 = master.node_vars("web2", "default").unwrap().for_app(&Vars::new());
        assert_eq!(web2["token"], "t0ken");
        assert!(!web2.contains_key("tls"));

        // Another identity: a clear error naming the file, at the first node that needs it.
        let other = ::age::x25519::Identity::generate();
        write(
            tmp.path(),
            "other.txt",
            &format!("{}\n", other.to_string().expose_secret()),
        );
        let mut wrong = Master::open(tmp.path()).unwrap();
        wrong.set_age_identity(Path::new("other.txt"));
        let err = wrong.node_vars("web2", "default").unwrap_err().to_string();
        assert!(
            err.contains("secrets/token.age cannot be decrypted") && err.contains("other.txt"),
            "{err}"
        );

        // One name in two places of one layer, a stray file, a meta node's folder: load errors.
        write(tmp.path(), "nodes/web1/web1.conf", "secrets: {tls: x}\n");
        let err = Master::open(tmp.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("nodes/web1/secrets/tls.age: secret `tls` is also set"),
            "{err}"
        );
        write(tmp.path(), "nodes/web1/web1.conf", "{}\n");
        write(tmp.path(), "secrets/token.txt", "plaintext");
        let err = Master::open(tmp.path()).unwrap_err().to_string();
        assert!(err.starts_with("secrets/token.txt: "), "{err}");
        fs::remove_file(tmp.path().join("secrets/token.txt")).unwrap();
        write(tmp.path(), "nodes/all/all.conf", "include_nodes: [web1]\n");
        seal("nodes/all/secrets/x.age", "v");
        let err = Master::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("all is a meta node"), "{err}");
    }

    #[test]
    fn relative_root_of_local_node_resolves_against_master() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "pacha.yaml", "");
        write(tmp.path(), "nodes/n/n.conf", "transport: local\nroot: nodes-out/n\n");
        write(tmp.path(), "nodes/s/s.conf", "root: relative\n");
        let master = Master::open(tmp.path()).unwrap();
        assert_eq!(
            master.target("n").unwrap().root,
            tmp.path().join("nodes-out/n").display().to_string()
        );
        let err = master.target("s").unwrap_err().to_string();
        assert!(err.contains("nodes/s/s.conf: root:"), "{err}");
    }
}
