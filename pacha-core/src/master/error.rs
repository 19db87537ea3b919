//! The errors of the master model: each names the file (relative to the master) and, where
//! the parser knows it, the line.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::master::age::AgeError;
use crate::model::name::NameError;

/// A `file:line:column` position in a master file, printed the way compilers print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, relative to the master.
    pub file: String,
    /// The line, 1-based.
    pub line: Option<usize>,
    /// The column, 1-based.
    pub column: Option<usize>,
}

impl Location {
    /// A whole file.
    pub fn file(file: impl Into<String>) -> Location {
        Location {
            file: file.into(),
            line: None,
            column: None,
        }
    }

    /// A line of a file, when known.
    pub fn line(file: impl Into<String>, line: Option<usize>) -> Location {
        Location {
            file: file.into(),
            line,
            column: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// Something wrong in the master's files.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No folder from the start upward holds `pacha.yaml`.
    #[error("no pacha master here: no pacha.yaml in {} or any folder above it", start.display())]
    MasterNotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// The folder named as the master has no `pacha.yaml`.
    #[error("{} is not a pacha master: it has no pacha.yaml", dir.display())]
    NotAMaster {
        /// The folder named.
        dir: PathBuf,
    },
    /// A master file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file, relative to the master.
        file: String,
        /// Why.
        source: io::Error,
    },
    /// A master file is not the YAML pacha expects.
    #[error("{}: {message}", Location { file: file.clone(), line: *line, column: *column })]
    Yaml {
        /// The file, relative to the master.
        file: String,
        /// The line, where the parser knows it.
        line: Option<usize>,
        /// The column, where the parser knows it.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A line written `key = value` (the seed's own example used that form).
    #[error("{file}:{line}: `{found}` is not YAML; write `{suggestion}` instead")]
    KeyEqualsValue {
        /// The file, relative to the master.
        file: String,
        /// The line.
        line: usize,
        /// The line as written.
        found: String,
        /// The YAML to write instead.
        suggestion: String,
    },
    /// A name (node, app, state, phase) in a master file that is not a plain name.
    #[error("{at}: {source}")]
    Name {
        /// Where it is written.
        at: Location,
        /// What is wrong with it.
        source: NameError,
    },
    /// A state asked for that is not a plain name (it names no file).
    #[error(transparent)]
    StateName(NameError),
    /// A value in a master file that pacha cannot use.
    #[error("{at}: {message}")]
    Invalid {
        /// Where it is written.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A state that the master does not know.
    #[error("unknown state {state:?} (states: {}){}", known.join(", "), suggest(suggestion.as_deref()))]
    UnknownState {
        /// The state asked for.
        state: String,
        /// The master's states.
        known: Vec<String>,
        /// The closest known state, when one is close enough to be a typo.
        suggestion: Option<String>,
        /// Whether `pacha.yaml` declares the states (else they are found in the master).
        declared: bool,
    },
    /// An encrypted secret that cannot be decrypted, or a secret that cannot be encrypted.
    #[error(transparent)]
    Age(#[from] AgeError),
}

/// Something wrong in how nodes and meta nodes refer to each other.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// No node file has this name.
    #[error("unknown node {name:?}: there is no nodes/{name}/{name}.conf{}", hint(suggestion.as_deref()))]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// The closest known name, when one is close enough to be a typo.
        suggestion: Option<String>,
    },
    /// A meta node includes a name no node file has.
    #[error("{at}: meta node {meta:?} includes {name:?}, but there is no nodes/{name}/{name}.conf{}", hint(suggestion.as_deref()))]
    MissingInclude {
        /// Where the meta node includes it.
        at: Location,
        /// The meta node.
        meta: String,
        /// The missing name.
        name: String,
        /// The closest known name, when one is close enough to be a typo.
        suggestion: Option<String>,
    },
    /// Meta nodes that include each other.
    #[error("meta nodes include each other in a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The whole cycle, its first name again at the end.
        cycle: Vec<String>,
    },
    /// Two unrelated meta nodes set one variable of a node differently.
    #[error(
        "node {node:?} inherits variable `{variable}` from two meta nodes that disagree: {first:?} sets {first_value}, {second:?} sets {second_value}; set `{variable}` in nodes/{node}/{node}.conf to choose"
    )]
    VarConflict {
        /// The node.
        node: String,
        /// The variable's dotted path.
        variable: String,
        /// One meta node.
        first: String,
        /// Its value, shortened.
        first_value: String,
        /// The other meta node.
        second: String,
        /// Its value, shortened.
        second_value: String,
    },
    /// A limit that leaves no node of the target.
    #[error("the limit {limit:?} matches none of the nodes of {node:?} ({})", leaves.join(", "))]
    LimitMatchesNothing {
        /// The target.
        node: String,
        /// The limit as written.
        limit: String,
        /// The target's leaf nodes.
        leaves: Vec<String>,
    },
    /// A meta node where a single node is needed.
    #[error("{name:?} is a meta node; name a single node")]
    NotALeaf {
        /// The meta node.
        name: String,
    },
    /// A master file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |name| format!(" (did you mean {name:?}?)"))
}

fn suggest(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |name| format!("; did you mean {name:?}?"))
}
