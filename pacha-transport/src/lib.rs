//! pacha's connections to nodes: [`SshConnector`] runs the system's OpenSSH as one
//! multiplexed master per node (through the `openssh` crate); [`LocalConnector`] runs on this
//! machine. Both send the same POSIX shell snippets (built in one module, every value through
//! one quoting function) and read the node's answers with pure parsers, so a node needs only
//! an SSH server, `sh` and coreutils. A node reaches its master through [`SshLink`] (`pacha
//! serve` over ssh, with the connector's ssh arguments) or [`LocalLink`] (a master folder on
//! the same machine).
//!
//! ```
//! use pacha_core::{Connector, Inspect, LiveFile, NodePath, SshSettings, Target, TransportKind};
//! use pacha_transport::LocalConnector;
//!
//! let root = tempfile::tempdir()?;
//! std::fs::create_dir_all(root.path().join("etc"))?;
//! std::fs::write(root.path().join("etc/motd"), "hello\n")?;
//! let target = Target {
//!     transport: TransportKind::Local,
//!     host: "localhost".into(),
//!     port: None,
//!     user: None,
//!     root: root.path().display().to_string(),
//!     ssh: SshSettings::default(),
//! };
//! let mut connection = LocalConnector::default().connect("n1", &target)?;
//! let paths = [NodePath::parse("/etc/motd")?, NodePath::parse("/etc/absent")?];
//! let inspection = connection.inspect(&Inspect { paths: &paths, contents: false, lock: None })?;
//! assert!(matches!(inspection.files[0], LiveFile::File(_)));
//! assert_eq!(inspection.files[1], LiveFile::Missing);
//! connection.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod link;
mod local;
mod parse;
mod script;
mod session;
mod shell;
mod ssh;

pub use link::{LocalLink, MasterAddress, SshLink};
pub use local::LocalConnector;
pub use shell::quote;
pub use ssh::SshConnector;
