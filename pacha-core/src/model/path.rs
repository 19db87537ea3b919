//! Paths on a node, kept normalised so that no path pacha computes can leave the folder it
//! belongs to.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An absolute, normalised path on a node, as the node sees it (before the node's `root` is
/// put in front). Always starts with `/`, has no `.` or `..` component, no empty component and
/// no trailing `/` (except the root itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodePath(String);

/// A path that would leave its base folder, or is not a path at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A relative path that climbs above its base.
    #[error("{path:?} leaves {base}")]
    Escapes {
        /// The path as given.
        path: String,
        /// What it would leave.
        base: String,
    },
    /// A path that must be absolute and is not.
    #[error("{path:?} is not an absolute path")]
    NotAbsolute {
        /// The path as given.
        path: String,
    },
    /// A path with a NUL byte, which no file name holds.
    #[error("{path:?} contains a NUL byte")]
    Nul {
        /// The path as given.
        path: String,
    },
}

/// Normalises a relative path lexically (`a/./b` is `a/b`, `a/../b` is `b`) and refuses one
/// that climbs above its start. The result has no leading or trailing `/`; it is empty for the
/// start itself.
pub(crate) fn normalize_relative(path: &str) -> Result<String, PathError> {
    if path.contains('\0') {
        return Err(PathError::Nul { path: path.to_owned() });
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes {
                        path: path.to_owned(),
                        base: "its folder".to_owned(),
                    });
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

impl NodePath {
    /// The root folder `/`.
    pub fn root() -> NodePath {
        NodePath("/".to_owned())
    }

    /// Parses an absolute path and normalises it; `..` may not climb above `/`.
    pub fn parse(path: &str) -> Result<NodePath, PathError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PathError::NotAbsolute { path: path.to_owned() });
        };
        let relative = normalize_relative(rest).map_err(|err| match err {
            PathError::Escapes { .. } => PathError::Escapes {
                path: path.to_owned(),
                base: "/".to_owned(),
            },
            other => other,
        })?;
        Ok(NodePath(format!("/{relative}")))
    }

    /// `self` joined with a relative path that must stay inside `self`.
    pub fn join(&self, relative: &str) -> Result<NodePath, PathError> {
        let normalized = normalize_relative(relative).map_err(|err| match err {
            PathError::Escapes { .. } => PathError::Escapes {
                path: relative.to_owned(),
                base: self.0.clone(),
            },
            other => other,
        })?;
        Ok(match (self.0.as_str(), normalized.as_str()) {
            (base, "") => NodePath(base.to_owned()),
            ("/", rest) => NodePath(format!("/{rest}")),
            (base, rest) => NodePath(format!("{base}/{rest}")),
        })
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without its leading `/`: where it goes below a node's `root`.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// Whether `self` is `base` or lies inside it.
    pub fn starts_with(&self, base: &NodePath) -> bool {
        base.0 == "/"
            || self.0 == base.0
            || (self.0.starts_with(&base.0) && self.0.as_bytes().get(base.0.len()) == Some(&b'/'))
    }

    /// The folder holding this path; `None` for `/`.
    pub fn parent(&self) -> Option<NodePath> {
        if self.0 == "/" {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(NodePath(if cut == 0 {
            "/".to_owned()
        } else {
            self.0[..cut].to_owned()
        }))
    }

    /// The path relative to `base`, when it lies strictly inside it.
    pub fn strip_prefix(&self, base: &NodePath) -> Option<&str> {
        if base.0 == "/" {
            return Some(self.relative());
        }
        self.0.strip_prefix(&base.0).and_then(|rest| rest.strip_prefix('/'))
    }

    /// This path placed under a node's `root` (itself an absolute path on the node).
    pub fn under_root(&self, root: &str) -> String {
        let root = root.trim_end_matches('/');
        if self.0 == "/" {
            return if root.is_empty() {
                "/".to_owned()
            } else {
                root.to_owned()
            };
        }
        format!("{root}{}", self.0)
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NodePath {
    type Error = PathError;

    fn try_from(value: String) -> Result<NodePath, PathError> {
        NodePath::parse(&value)
    }
}

impl From<NodePath> for String {
    fn from(path: NodePath) -> String {
        path.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            NodePath::parse("/etc//apache2/./x/../ports.conf").unwrap().as_str(),
            "/etc/apache2/ports.conf"
        );
        assert_eq!(NodePath::parse("/").unwrap().as_str(), "/");
        assert_eq!(NodePath::parse("/etc/").unwrap().as_str(), "/etc");
        assert!(NodePath::parse("etc").is_err());
        assert!(NodePath::parse("/..").is_err());
    }

    #[test]
    fn join_stays_inside() {
        let base = NodePath::parse("/etc/app").unwrap();
        assert_eq!(base.join("a/b").unwrap().as_str(), "/etc/app/a/b");
        assert_eq!(base.join("").unwrap().as_str(), "/etc/app");
        assert_eq!(NodePath::root().join("etc").unwrap().as_str(), "/etc");
        let err = base.join("../../shadow").unwrap_err();
        assert_eq!(err.to_string(), "\"../../shadow\" leaves /etc/app");
    }

    #[test]
    fn parents_and_prefixes() {
        let path = NodePath::parse("/etc/app/x.conf").unwrap();
        assert_eq!(path.parent().unwrap().as_str(), "/etc/app");
        assert_eq!(NodePath::parse("/etc").unwrap().parent().unwrap().as_str(), "/");
        assert_eq!(NodePath::root().parent(), None);
        assert!(path.starts_with(&NodePath::parse("/etc").unwrap()));
        assert!(!path.starts_with(&NodePath::parse("/et").unwrap()));
        assert_eq!(path.strip_prefix(&NodePath::parse("/etc").unwrap()), Some("app/x.conf"));
        assert_eq!(path.under_root("/srv/n1/"), "/srv/n1/etc/app/x.conf");
        assert_eq!(path.under_root("/"), "/etc/app/x.conf");
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just(String::new()),
            "[a-z ;$'\"\\\\]{1,6}",
        ]
    }

    proptest! {
        /// Whatever the relative path, a joined path either is refused or stays inside its base.
        #[test]
        fn joined_paths_never_escape(base in prop::collection::vec("[a-z]{1,4}", 0..4), parts in prop::collection::vec(component(), 0..8)) {
            let base = NodePath::parse(&format!("/{}", base.join("/"))).unwrap();
            let relative = parts.join("/");
            match base.join(&relative) {
                Ok(joined) => {
                    prop_assert!(joined.starts_with(&base), "{joined} outside {base}");
                    prop_assert!(!joined.as_str().split('/').any(|c| c == ".." || c == "."));
                    prop_assert_eq!(NodePath::parse(joined.as_str()).unwrap(), joined.clone());
                }
                Err(PathError::Escapes { .. }) => {
                    // Climbing must really have gone above the base: count the depth.
                    let mut depth: i64 = 0;
                    let mut escaped = false;
                    for part in relative.split('/') {
                        match part { "" | "." => {}, ".." => { depth -= 1; if depth < 0 { escaped = true; } }, _ => depth += 1 }
                    }
                    prop_assert!(escaped);
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
    }
}
