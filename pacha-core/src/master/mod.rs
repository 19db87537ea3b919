//! The master directory: discovery, `pacha.yaml`, every node file, the graph of meta nodes,
//! and the errors that name the master file (and line) at fault.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub(crate) mod definition;
pub(crate) mod error;
pub(crate) mod graph;
pub mod yaml;

use crate::master::error::{ConfigError, GraphError, Location};
use crate::master::graph::NodeGraph;
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
}

/// The variables of one node in one state, before an app's own variables are put in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeVars {
    /// `pacha.yaml` vars (lowest precedence).
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
        let mut settings: MasterSettings = yaml::parse(SETTINGS_FILE, &settings_text)?;
        let mut secrets = Vec::new();
        vars::fold_secrets(&mut settings.vars, &settings.secrets, &mut secrets);
        if settings.jobs == Some(0) {
            return Err(ConfigError::Invalid {
                at: Location::line(SETTINGS_FILE, yaml::line_of(&settings_text, "jobs")),
                message: "jobs must be at least 1".to_owned(),
            });
        }

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
                definitions.insert(name.clone(), Definition::parse(&shown, &text)?);
                files.insert(name, shown);
            }
        }
        Ok(Master {
            dir,
            settings,
            secrets,
            graph: NodeGraph::new(definitions, files),
        })
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
        let configured = self.settings.history.clone().unwrap_or_else(|| PathBuf::from("hosts"));
        if configured.is_relative() {
            self.dir.join(configured)
        } else {
            configured
        }
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
        check_name(NameKind::State, state).map_err(ConfigError::StateName)?;
        let node = self.node(name)?;
        let state_vars = node.states.get(state).map(|settings| &settings.vars);
        let node_sets =
            |path: &str| vars::sets_path(&node.vars, path) || state_vars.is_some_and(|v| vars::sets_path(v, path));
        let inherited = self.graph.inherited_vars(name, &node_sets)?;
        let mut upper = inherited.vars;
        vars::merge(&mut upper, &node.vars);
        if let Some(state_vars) = state_vars {
            vars::merge(&mut upper, state_vars);
        }
        let mut secrets = self.secrets.clone();
        secrets.extend(inherited.secrets);
        secrets.extend(node.secret_values.iter().cloned());
        secrets.sort();
        secrets.dedup();
        Ok(NodeVars {
            master: self.settings.vars.clone(),
            upper,
            secrets,
        })
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
