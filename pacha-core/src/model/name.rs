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

/// An owner or group that is not a user or group name or number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid user or group: {reason}")]
pub struct AccountError {
    /// The value as written.
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

/// Checks an `owner` or `group`: a name (letters, digits, `_`, `-`, `.`, a trailing `$`, not
/// starting with `-`) or a number. It reaches `chown` on the node, so nothing else passes.
pub fn check_account(value: &str) -> Result<(), AccountError> {
    let refuse = |reason| {
        Err(AccountError {
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return refuse("it is empty");
    }
    if value.starts_with('-') {
        return refuse("it starts with `-`");
    }
    if value.len() > 64 {
        return refuse("it is longer than 64 characters");
    }
    let body = value.strip_suffix('$').unwrap_or(value);
    if !body
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return refuse("only letters, digits, `_`, `-`, `.` (and a trailing `$`) are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_names_or_numbers() {
        for good in ["root", "www-data", "_apt", "1001", "machine$", "a.b"] {
            assert_eq!(check_account(good), Ok(()), "{good}");
        }
        for bad in ["", "-R", "root:root", "a b", "$(id)", "x\n"] {
            assert!(check_account(bad).is_err(), "{bad:?}");
        }
    }

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
