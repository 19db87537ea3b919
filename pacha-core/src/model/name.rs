//! Names of nodes, apps, states and script phases.
//!
//! They become folder names in the master and in the history, so they must be plain names:
//! one path component, never `..`.

use std::fmt;

/// What a name names, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A node or meta node.
    Node,
    /// An app (`templates/<app>`).
    App,
    /// A state.
    State,
    /// A script phase (`scripts/<stage>/<phase>`).
    Phase,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Node => "node",
            NameKind::App => "app",
            NameKind::State => "state",
            NameKind::Phase => "script phase",
        })
    }
}

/// A name that is not a plain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {name:?}: {reason}")]
pub struct NameError {
    /// What it names.
    pub kind: NameKind,
    /// The name as written.
    pub name: String,
    /// Why it is not a plain name.
    pub reason: &'static str,
}

/// Checks that `name` is a plain name: not empty, no `/`, no `..`, no NUL byte.
///
/// Spaces, quotes and other shell metacharacters are allowed: pacha never hands a name to a
/// shell unquoted.
pub fn check_name(kind: NameKind, name: &str) -> Result<(), NameError> {
    let reason = if name.is_empty() {
        "a name cannot be empty"
    } else if name.contains('/') {
        "a name cannot contain `/`"
    } else if name.contains("..") {
        "a name cannot contain `..`"
    } else if name == "." {
        "a name cannot be `.`"
    } else if name.contains('\0') {
        "a name cannot contain a NUL byte"
    } else {
        return Ok(());
    };
    Err(NameError {
        kind,
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in ["web1", "db-2", "a b", "it's", "$(rm)", "x.conf", ".hidden"] {
            assert_eq!(check_name(NameKind::Node, name), Ok(()), "{name}");
        }
    }

    #[test]
    fn paths_and_parents_are_refused() {
        for name in ["", "a/b", "..", "a..b", "../x", ".", "nul\0"] {
            let err = check_name(NameKind::App, name).unwrap_err();
            assert_eq!(err.kind, NameKind::App);
            assert!(err.to_string().starts_with("invalid app name"), "{err}");
        }
    }
}
