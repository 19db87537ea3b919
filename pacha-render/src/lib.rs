//! Rendering for pacha: the files of each app in a state (`templates/<app>/<state>` over
//! `templates/<app>/default`), Handlebars templates rendered strictly and without HTML
//! escaping, `app.yaml` destinations, owners and modes, and the node's scripts, all gathered
//! into a [`pacha_core::Plan`] per node.
//!
//! The main type is [`Renderer`], which implements [`pacha_core::Planner`]: hand it to a
//! [`pacha_core::Engine`] and every operation renders through it.
//!
//! ```
//! use pacha_core::Master;
//! use pacha_render::Renderer;
//!
//! let dir = tempfile::tempdir()?;
//! let write = |path: &str, text: &str| {
//!     let path = dir.path().join(path);
//!     std::fs::create_dir_all(path.parent().unwrap()).unwrap();
//!     std::fs::write(path, text).unwrap();
//! };
//! write("pacha.yaml", "states: [default, production]\nvars: {port: 80}\n");
//! write("templates/motd/app.yaml", "dest: /etc\n");
//! write("templates/motd/default/motd.hbs", "Welcome to {{pacha.node}} on port {{port}} & more\n");
//! write("nodes/web1/web1.conf", "apps: [motd]\n");
//!
//! let master = Master::open(dir.path())?;
//! let plan = Renderer::new(&master).plan("web1", "production")?;
//! assert_eq!(plan.files[0].destination.as_str(), "/etc/motd");
//! assert_eq!(&*plan.files[0].content, b"Welcome to web1 on port 80 & more\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod app;
mod blame;
mod error;
mod helpers;
mod propose;
mod renderer;
mod template;
mod tree;

pub use blame::{Blame, BlameLine, BlameVar};
pub use error::RenderError;
pub use propose::{Conflict, MasterChange, Proposal};
pub use renderer::{FileDefaults, Renderer};
pub use tree::TEMPLATE_SUFFIX;
