//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// pacha: versioned configuration for your hosts, pushed over SSH.
///
/// A master directory holds templates per app and state, scripts, and one YAML file per node;
/// `pacha push NODE STATE` brings every node of NODE to STATE and records it in git.
#[derive(Debug, Parser)]
#[command(name = "pacha", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The master directory [default: the nearest folder upward holding pacha.yaml]
    #[arg(long, global = true, value_name = "DIR", env = "PACHA_MASTER")]
    pub master: Option<PathBuf>,

    /// Print JSON instead of text (the schema is in docs/json.md)
    #[arg(long, global = true)]
    pub json: bool,

    /// When to colour the output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a working master: an example app, nodes, a meta node and scripts
    Init {
        /// Where to create it [default: the current folder]
        dir: Option<PathBuf>,
    },
    /// List nodes and meta nodes
    Nodes,
    /// The leaf nodes of a (meta) node, in push order
    Expand {
        /// A node or meta node
        node: String,
    },
    /// Show the plan: every file with destination, owner, group, mode, sha256 and source, and the scripts
    Render {
        /// A node or meta node
        node: String,
        /// The state, e.g. production
        state: String,
        /// Write each node's files to DIR/<node>/<destination> with the planned modes
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}
