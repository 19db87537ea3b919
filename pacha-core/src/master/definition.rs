//! Reading node files (`nodes/<name>/<name>.conf`) into [`Definition`]s: a node or a meta node,
//! with every name checked and every error at its line.

use crate::master::error::{ConfigError, Location};
use crate::master::yaml::{self, line_of};
use crate::model::name::{NameKind, check_name};
use crate::model::node::{Definition, MetaNode, Node};
use crate::model::path::NodePath;
use crate::model::track::Track;
use crate::model::vars::fold_secrets;

impl Definition {
    /// Parses a node file; `file` is its path as shown to the user.
    pub fn parse(file: &str, text: &str) -> Result<Definition, ConfigError> {
        // Decide between node and meta node on the raw mapping, then parse again into the
        // right type so that unknown keys are reported with their line.
        let raw: yaml_serde::Value = yaml::parse(file, text)?;
        let is_meta = raw
            .as_mapping()
            .is_some_and(|mapping| mapping.contains_key("include_nodes"));
        if is_meta {
            let mut meta: MetaNode = yaml::parse(file, text)?;
            meta.include_lines = Vec::with_capacity(meta.include_nodes.len());
            for included in &mut meta.include_nodes {
                let line = line_of(text, included);
                if let Some(stripped) = included.strip_suffix(".conf") {
                    *included = stripped.to_owned();
                }
                check_name(NameKind::Node, included).map_err(|source| ConfigError::Name {
                    at: Location::line(file, line),
                    source,
                })?;
                meta.include_lines.push(line);
            }
            for (key, value) in [("serial", meta.rollout.serial), ("max_fail", meta.rollout.max_fail)] {
                if value == Some(0) {
                    return Err(ConfigError::Invalid {
                        at: Location::line(file, line_of(text, key)),
                        message: format!("rollout: {key} must be at least 1"),
                    });
                }
            }
            for state in meta.states.keys() {
                check_name(NameKind::State, state).map_err(|source| ConfigError::Name {
                    at: Location::line(file, line_of(text, state)),
                    source,
                })?;
            }
            let mut secrets = Vec::new();
            fold_secrets(&mut meta.vars, &meta.secrets, &mut secrets);
            for state in meta.states.values_mut() {
                fold_secrets(&mut state.vars, &state.secrets, &mut secrets);
            }
            meta.secret_values = secrets;
            return Ok(Definition::Meta(Box::new(meta)));
        }
        let mut node: Node = yaml::parse(file, text)?;
        let named = |kind, value: &str| {
            check_name(kind, value).map_err(|source| ConfigError::Name {
                at: Location::line(file, line_of(text, value)),
                source,
            })
        };
        for app in &node.apps {
            named(NameKind::App, app)?;
        }
        for state in node.states.keys() {
            named(NameKind::State, state)?;
        }
        for phase in node.scripts.pre.iter().chain(&node.scripts.post) {
            named(NameKind::Phase, phase)?;
        }
        if let Err(message) = node.health.check() {
            return Err(ConfigError::Invalid {
                at: Location::line(file, line_of(text, "health")),
                message,
            });
        }
        if let Some(host) = &node.host
            && (host.starts_with('-') || host.is_empty())
        {
            return Err(ConfigError::Invalid {
                at: Location::line(file, line_of(text, "host")),
                message: format!("host {host:?} is not a valid SSH destination"),
            });
        }
        if let Some(user) = &node.user
            && (user.starts_with('-') || user.is_empty())
        {
            return Err(ConfigError::Invalid {
                at: Location::line(file, line_of(text, "user")),
                message: format!("user {user:?} is not a valid user name"),
            });
        }
        for glob in &node.track {
            Track::new(std::slice::from_ref(glob)).map_err(|err| ConfigError::Invalid {
                at: Location::line(file, line_of(text, glob)),
                message: err.to_string(),
            })?;
        }
        for path in &node.absent {
            NodePath::parse(path).map_err(|err| ConfigError::Invalid {
                at: Location::line(file, line_of(text, path)),
                message: format!("absent: {err}"),
            })?;
        }
        let mut secrets = Vec::new();
        fold_secrets(&mut node.vars, &node.secrets, &mut secrets);
        for state in node.states.values_mut() {
            fold_secrets(&mut state.vars, &state.secrets, &mut secrets);
        }
        node.secret_values = secrets;
        Ok(Definition::Node(Box::new(node)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::node::TransportKind;

    #[test]
    fn parses_a_node() {
        let text = "host: web1.example.com\nport: 2222\napps: [apache, php]\nvars:\n  port: 80\nstates:\n  production:\n    vars: {port: 443}\nscripts:\n  pre: [install]\n  post: [reload]\n";
        let Definition::Node(node) = Definition::parse("nodes/web1/web1.conf", text).unwrap() else {
            panic!()
        };
        assert_eq!(node.host.as_deref(), Some("web1.example.com"));
        assert_eq!(node.port, Some(2222));
        assert_eq!(node.apps, ["apache", "php"]);
        assert_eq!(node.states["production"].vars["port"], 443);
        assert_eq!(node.scripts.post, ["reload"]);
        assert_eq!(node.transport, TransportKind::Ssh);
    }

    #[test]
    fn parses_a_meta_node_and_drops_conf_suffix() {
        let text = "include_nodes:\n  - srv1.conf\n  - srv2\nvars: {tier: web}\n";
        let Definition::Meta(meta) = Definition::parse("nodes/srvs/srvs.conf", text).unwrap() else {
            panic!()
        };
        assert_eq!(meta.include_nodes, ["srv1", "srv2"]);
        assert_eq!(meta.include_lines, [Some(2), Some(3)]);
    }

    #[test]
    fn bad_names_point_at_their_line() {
        let err = Definition::parse("nodes/n/n.conf", "host: n\napps:\n  - ../etc\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "nodes/n/n.conf:3: invalid app name \"../etc\": a name cannot contain `/`"
        );
    }

    #[test]
    fn meta_with_node_keys_is_refused() {
        let err = Definition::parse("nodes/m/m.conf", "include_nodes: [a]\nhost: x\n").unwrap_err();
        assert!(err.to_string().starts_with("nodes/m/m.conf:2:"), "{err}");
    }

    #[test]
    fn secrets_are_merged_and_remembered() {
        let text = "host: n\nvars: {a: 1}\nsecrets: {db_password: hunter2}\n";
        let Definition::Node(node) = Definition::parse("n.conf", text).unwrap() else {
            panic!()
        };
        assert_eq!(node.vars["db_password"], "hunter2");
        assert_eq!(node.secret_values, ["hunter2"]);
    }

    #[test]
    fn track_globs_are_checked_where_they_are_written() {
        let err = Definition::parse("n.conf", "host: n\ntrack:\n  - etc/relative\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "n.conf:3: track: \"etc/relative\" must be an absolute path on the node"
        );
        let err = Definition::parse("n.conf", "host: n\ntrack: [\"/etc/[x\"]\n").unwrap_err();
        assert!(err.to_string().starts_with("n.conf:2: track: invalid glob"), "{err}");
    }

    #[test]
    fn option_like_hosts_are_refused() {
        let err = Definition::parse("n.conf", "host: -oProxyCommand=x\n").unwrap_err();
        assert!(err.to_string().contains("not a valid SSH destination"), "{err}");
    }
}
