//! Why a plan could not be made.

use pacha_core::{ConfigError, GraphError, Location, Stage};

/// Why rendering a node's plan failed. Every variant names the master file to look at.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A node name is unknown or the meta nodes do not fit together.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A master file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A node names an app with no templates for the state nor a default.
    #[error("{at}: app {app:?} has neither templates/{app}/{state} nor templates/{app}/default")]
    MissingApp {
        /// Where the node names the app.
        at: Location,
        /// The app.
        app: String,
        /// The state rendered.
        state: String,
    },
    /// A template reads a variable no layer sets.
    #[error("{at}: undefined variable `{variable}` (rendering for node {node:?}){}", hint(.variable))]
    UndefinedVariable {
        /// The template, line and column.
        at: Location,
        /// The variable's dotted path.
        variable: String,
        /// The node rendered.
        node: String,
    },
    /// A template Handlebars cannot parse or render.
    #[error("{at}: {message}")]
    Template {
        /// The template, and line where known.
        at: Location,
        /// Handlebars' message.
        message: String,
    },
    /// A helper refused its arguments.
    #[error("{at}: {message} (rendering for node {node:?})")]
    Helper {
        /// The template, and line where known.
        at: Location,
        /// The helper's message.
        message: String,
        /// The node rendered.
        node: String,
    },
    /// A symlink in a template tree points outside the tree.
    #[error(
        "{source_file}: symlink points outside {tree} (to {target}); a symlink in a template tree must stay inside it"
    )]
    SymlinkEscapes {
        /// The symlink, relative to the master.
        source_file: String,
        /// The tree it must stay in.
        tree: String,
        /// Where it points.
        target: String,
    },
    /// A destination that would leave its app's `dest`.
    #[error("{at}: {message}")]
    PathEscapes {
        /// Where the path comes from.
        at: Location,
        /// Which path, and what it leaves.
        message: String,
    },
    /// Two sources that cannot both be placed.
    #[error("{at}: {message}")]
    Conflict {
        /// Where one of them comes from.
        at: Location,
        /// What conflicts.
        message: String,
    },
    /// A file name in a template tree that is not UTF-8.
    #[error("{source_file}: file names must be UTF-8")]
    NotUtf8Name {
        /// The file, relative to the master.
        source_file: String,
    },
    /// A `.hbs` template that is not UTF-8 text.
    #[error("{source_file}: a .hbs template must be UTF-8 text (rename it without .hbs to copy it byte for byte)")]
    NotUtf8Template {
        /// The template, relative to the master.
        source_file: String,
    },
    /// A master file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file, relative to the master.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file the node's plan does not place (blame, proposals).
    #[error("node {node:?} gets no file {path} in state {state:?} (it is not placed by any of its apps' templates)")]
    NotPlaced {
        /// The node.
        node: String,
        /// The state.
        state: String,
        /// The path on the node.
        path: String,
    },
    /// Two apps of one node place the same destination.
    #[error("{destination} comes from two apps of node {node:?}: {first} and {second}")]
    DuplicateDestination {
        /// The node.
        node: String,
        /// The destination on the node.
        destination: String,
        /// One source.
        first: String,
        /// The other source.
        second: String,
    },
    /// One destination is a file for one source and a folder of another's.
    #[error("{path} is both a file ({file}) and a folder of {inside} for node {node:?}")]
    FileAndFolder {
        /// The node.
        node: String,
        /// The destination that is both.
        path: String,
        /// The source that makes it a file.
        file: String,
        /// A source placed inside it.
        inside: String,
    },
    /// A node names a script phase with no folder.
    #[error("{at}: no script folder scripts/{stage}/{phase}")]
    MissingPhase {
        /// Where the node names the phase.
        at: Location,
        /// Pre or post.
        stage: Stage,
        /// The phase.
        phase: String,
    },
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
