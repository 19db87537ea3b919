//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// pacha: versioned configuration for your hosts, pushed over SSH.
///
/// A master directory holds templates per app and state, scripts, and one YAML file per node;
/// `pacha push NODE STATE` brings every node of NODE to STATE and records it in git.
#[derive(Debug, Parser)]
#[command(name = "pacha", version = env!("PACHA_VERSION"), propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
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

/// The help of `--from` and `--to`.
const MASTER_AT: &str = "The master: [USER@]HOST:/MASTER/DIR (over ssh, HOST may be an ssh_config alias), or a master folder on this machine";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        #[arg(
            long,
            value_name = "DIR",
            help = "Write each node's files to DIR/<node>/<destination> with the planned modes"
        )]
        out: Option<PathBuf>,
    },
    /// What a push would change on the live node(s): unified diffs, owner and mode changes (exit 2 if any)
    Diff {
        /// A node or meta node
        node: String,
        /// The state, e.g. production [default: each node's last recorded state]
        state: Option<String>,
        /// Only these leaf nodes of NODE: comma-separated names or globs, e.g. 'web*,db1'
        #[arg(long, value_name = "LIST")]
        limit: Option<String>,
        /// Print the contents of files that hold secrets too
        #[arg(long)]
        show_secrets: bool,
        /// Compare two recorded revisions of NODE instead (A..B, B the latest when left out; HEAD~N works)
        #[arg(long, value_name = "A[..B]", conflicts_with_all = ["state", "limit"])]
        rev: Option<String>,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Bring node(s) to STATE: place what changed, run scripts, report per node
    Push {
        /// A node or meta node
        node: String,
        /// The state, e.g. production [default: each node's last recorded state]
        state: Option<String>,
        /// Report what would change (exit 2 if anything would); write nothing, run no script
        #[arg(long)]
        dry_run: bool,
        /// Place every file and run every script even when nothing changed
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        rollout: RolloutArgs,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Show the diff of a push and save exactly that change to FILE, with what each node holds (apply it with `pacha apply FILE`)
    Plan {
        /// A node or meta node
        node: String,
        /// The state, e.g. production [default: each node's last recorded state]
        state: Option<String>,
        /// The plan file to write (0600; secrets encrypted when pacha.yaml has age recipients)
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        /// Only these leaf nodes of NODE: comma-separated names or globs, e.g. 'web*,db1'
        #[arg(long, value_name = "LIST")]
        limit: Option<String>,
        /// Print the contents of files that hold secrets too
        #[arg(long)]
        show_secrets: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Push exactly a saved plan, on each node only if it still holds what the plan saw (else that node is refused)
    Apply {
        /// A plan file written by `pacha plan -o`
        file: PathBuf,
        /// Check each node against the plan and report what would change; write nothing, run no script
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        rollout: RolloutArgs,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// The node's history: every push, capture, rollback and rebuild, newest first
    Log {
        /// A node
        node: String,
        /// Only the newest N entries
        #[arg(short = 'n', long = "max-count", value_name = "N")]
        max_count: Option<usize>,
        /// Only entries that changed PATH or a file under it (a path on the node, e.g. /etc/nginx)
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
    },
    /// Files, owners and modes as recorded at REV (default: the latest); with PATH, that file
    Show {
        /// A node
        node: String,
        /// A revision as `pacha log` prints it (a unique prefix is enough; HEAD, HEAD~N) [default: the latest]
        rev: Option<String>,
        /// A file's path on the node, e.g. /etc/motd (`pacha show NODE PATH` shows the latest)
        path: Option<String>,
        /// Print a file that holds secrets as it is
        #[arg(long)]
        show_secrets: bool,
    },
    /// Place the node's files exactly as recorded at REV, then record that
    Rollback {
        /// A node
        node: String,
        /// A revision as `pacha log` prints it (a unique prefix is enough)
        rev: String,
    },
    /// Rebuild a (new) host from the node's latest recorded state: files, owners, modes, scripts
    Rebuild {
        /// A node
        node: String,
        /// The SSH destination to rebuild [default: the node's host]
        #[arg(long, value_name = "DEST")]
        host: Option<String>,
        /// The folder on the host under which files go [default: the node's root]
        #[arg(long, value_name = "DIR")]
        root: Option<String>,
    },
    /// Read the node's live files (recorded and tracked, or PATHs) into history when they differ
    Capture {
        /// A node
        node: String,
        /// Only these files (paths on the node)
        paths: Vec<String>,
        /// Record nothing: print the hand edits as a patch to the master (templates, var files) that `git apply` takes; conflicts on stderr
        #[arg(long)]
        propose: bool,
        /// With --propose: make those changes in the master
        #[arg(long, requires = "propose")]
        write: bool,
    },
    /// Where each line of a file comes from: its template file:line, and each variable with the file:line that set it
    Blame {
        /// A node
        node: String,
        /// The file's path on the node, e.g. /etc/nginx/nginx.conf
        path: String,
        /// The state [default: the node's last recorded state]
        state: Option<String>,
    },
    /// Per node: the last recorded push and whether the live files drifted from the history (exit 2 on drift)
    Status {
        /// A node or meta node [default: every node]
        node: Option<String>,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Run on a node itself: fetch NODE's plan from the master, apply it here, record it in the master's history
    Pull {
        /// This node's name in the master
        node: String,
        /// The state, e.g. production [default: the node's last recorded state]
        state: Option<String>,
        #[arg(long, value_name = "[USER@]HOST:/DIR", help = MASTER_AT)]
        from: String,
        /// Place every file and run every script even when nothing changed
        #[arg(long)]
        force: bool,
        /// The pacha program on the master
        #[arg(long, value_name = "PATH", default_value = "pacha")]
        remote_pacha: String,
        /// An ssh_config file for reaching the master (passed to ssh as -F)
        #[arg(long, short = 'F', value_name = "FILE")]
        ssh_config: Option<PathBuf>,
        /// Keep trying to reach the master for up to SECONDS (a host whose network comes up late, at boot)
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Run on a node itself: watch its placed and tracked files and capture each change into the master's history
    Watch {
        /// This node's name in the master
        node: String,
        #[arg(long, value_name = "[USER@]HOST:/DIR", help = MASTER_AT)]
        to: String,
        /// Look at the files every SECONDS instead of following file events (for filesystems without inotify)
        #[arg(long, value_name = "SECONDS")]
        poll: Option<f64>,
        /// The host's state folder, where the watcher keeps its spool and watch list [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/pacha, else ~/.local/state/pacha]
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// The pacha program on the master
        #[arg(long, value_name = "PATH", default_value = "pacha")]
        remote_pacha: String,
        /// An ssh_config file for reaching the master (passed to ssh as -F)
        #[arg(long, short = 'F', value_name = "FILE")]
        ssh_config: Option<PathBuf>,
    },
    /// Print the authorized_keys line that lets a host's key reach this master for NODE only (pacha serve --node as a forced command, restrict)
    Authorize {
        /// The node the key may act for
        node: String,
        /// The host's public key file (its .pub), or - for standard input
        pubkey: PathBuf,
        /// The pacha program on this master, as the forced command runs it
        #[arg(long, value_name = "PATH", default_value = "pacha")]
        program: String,
    },
    /// The master's end of pull and watch, on standard input and output (what a node's ssh runs)
    Serve {
        /// Act for this node only: its plan, its history (a per-host key's forced command)
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
    },
    /// Encrypted secrets in the master: set one from standard input, list where each is defined
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// The shared history: send the records made while its remote could not be reached
    History {
        #[command(subcommand)]
        action: HistoryAction,
    },
    /// Make a live file part of the master: templates/APP/STATE/<path under the app's dest>, a files: rule for its owner, group and mode, the app added to the node
    Adopt {
        /// A node
        node: String,
        /// The file's path on the node, e.g. /etc/chrony/chrony.conf
        path: String,
        /// The app it joins (created with dest: the file's folder when it does not exist)
        #[arg(long, value_name = "APP")]
        app: String,
        /// The state folder it goes to [default: default]
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// Check what pushes need (ssh, the master, its ssh files, the history, each node reachable with sh and coreutils), one line per check with a fix; exit 1 when one fails
    Doctor {
        /// A node or meta node [default: every node]
        node: Option<String>,
    },
    /// Print a shell completion script: pacha completions bash > /etc/bash_completion.d/pacha
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Write the man pages (pacha.1 and one per command, pacha-push.1, …) into DIR
    Man {
        /// The folder, e.g. /usr/share/man/man1
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Close the SSH connections kept for the next run (all, or NODE's)
    Disconnect {
        /// A node or meta node [default: every kept connection]
        node: Option<String>,
    },
}

/// What `pacha history` does.
#[derive(Debug, Subcommand)]
pub(crate) enum HistoryAction {
    /// Fetch the shared history's remote, put the local records on top and push them
    Sync,
}

/// What `pacha secret` does.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretAction {
    /// Encrypt the value on standard input to the master's age recipients: secrets/NAME.age, or nodes/NODE/secrets/NAME.age
    Set {
        /// The node whose layer the secret belongs to [default: the master-wide layer]
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
        /// The variable templates read it as
        name: String,
    },
    /// Every secret's name, layer and file, and the recipients (never a value)
    List,
}

/// Which nodes a push reaches and how it goes through them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RolloutArgs {
    /// Only these leaf nodes of NODE: comma-separated names or globs, e.g. 'web*,db1'
    #[arg(long, value_name = "LIST")]
    pub limit: Option<String>,
    /// Batches of N nodes in order; the next starts only when no node of the previous failed [default: rollout.serial in pacha.yaml or the meta node]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub serial: Option<u16>,
    /// Once N nodes failed, start no new node [default: rollout.max_fail in pacha.yaml or the meta node]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_fail: Option<u16>,
}

/// Options of commands that talk to nodes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectionArgs {
    /// How many nodes to work on at once [default: jobs in pacha.yaml, else the number of nodes, at most 32]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}
