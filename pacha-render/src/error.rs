//! Why a plan could not be made.

use pacha_core::{ConfigError, GraphError, Location, Stage};

/// Why rendering a node's plan failed. Every variant names the master file to look at.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{at}: app {app:?} has neither templates/{app}/{state} nor templates/{app}/default")]
    MissingApp { at: Location, app: String, state: String },
    #[error("{at}: undefined variable `{variable}` (rendering for node {node:?}){}", hint(.variable))]
    UndefinedVariable {
        at: Location,
        variable: String,
        node: String,
    },
    #[error("{at}: {message}")]
    Template { at: Location, message: String },
    #[error("{at}: {message} (rendering for node {node:?})")]
    Helper {
        at: Location,
        message: String,
        node: String,
    },
    #[error(
        "{source_file}: symlink points outside {tree} (to {target}); a symlink in a template tree must stay inside it"
    )]
    SymlinkEscapes {
        source_file: String,
        tree: String,
        target: String,
    },
    #[error("{at}: {message}")]
    PathEscapes { at: Location, message: String },
    #[error("{at}: {message}")]
    Conflict { at: Location, message: String },
    #[error("{source_file}: file names must be UTF-8")]
    NotUtf8Name { source_file: String },
    #[error("{source_file}: a .hbs template must be UTF-8 text (rename it without .hbs to copy it byte for byte)")]
    NotUtf8Template { source_file: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{destination} comes from two apps of node {node:?}: {first} and {second}")]
    DuplicateDestination {
        node: String,
        destination: String,
        first: String,
        second: String,
    },
    #[error("{at}: no script folder scripts/{stage}/{phase}")]
    MissingPhase { at: Location, stage: Stage, phase: String },
}

fn hint(variable: &str) -> String {
    if variable.starts_with("pacha.") {
        " (built-ins are pacha.node, pacha.host, pacha.state, pacha.app)".to_owned()
    } else {
        String::new()
    }
}

impl RenderError {
    pub(crate) fn io(path: impl Into<String>, source: std::io::Error) -> RenderError {
        RenderError::Io {
            path: path.into(),
            source,
        }
    }
}
