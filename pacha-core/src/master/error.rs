//! The errors of the master model: each names the file (relative to the master) and, where
//! the parser knows it, the line.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::model::name::NameError;

/// A `file:line:column` position in a master file, printed the way compilers print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Location {
        Location {
            file: file.into(),
            line: None,
            column: None,
        }
    }

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
    #[error("no pacha master here: no pacha.yaml in {} or any folder above it", start.display())]
    MasterNotFound { start: PathBuf },
    #[error("{} is not a pacha master: it has no pacha.yaml", dir.display())]
    NotAMaster { dir: PathBuf },
    #[error("{file}: {source}")]
    Read { file: String, source: io::Error },
    #[error("{}: {message}", Location { file: file.clone(), line: *line, column: *column })]
    Yaml {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{file}:{line}: `{found}` is not YAML; write `{suggestion}` instead")]
    KeyEqualsValue {
        file: String,
        line: usize,
        found: String,
        suggestion: String,
    },
    #[error("{at}: {source}")]
    Name { at: Location, source: NameError },
    /// A state asked for that is not a plain name (it names no file).
    #[error(transparent)]
    StateName(NameError),
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

/// Something wrong in how nodes and meta nodes refer to each other.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("unknown node {name:?}: there is no nodes/{name}/{name}.conf{}", hint(suggestion.as_deref()))]
    UnknownNode { name: String, suggestion: Option<String> },
    #[error("{at}: meta node {meta:?} includes {name:?}, but there is no nodes/{name}/{name}.conf{}", hint(suggestion.as_deref()))]
    MissingInclude {
        at: Location,
        meta: String,
        name: String,
        suggestion: Option<String>,
    },
    #[error("meta nodes include each other in a cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error(
        "node {node:?} inherits variable `{variable}` from two meta nodes that disagree: {first:?} sets {first_value}, {second:?} sets {second_value}; set `{variable}` in nodes/{node}/{node}.conf to choose"
    )]
    VarConflict {
        node: String,
        variable: String,
        first: String,
        first_value: String,
        second: String,
        second_value: String,
    },
    #[error("{name:?} is a meta node; name a single node")]
    NotALeaf { name: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |name| format!(" (did you mean {name:?}?)"))
}
