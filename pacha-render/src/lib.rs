//! Rendering for pacha: the files of each app in a state (`templates/<app>/<state>` over
//! `templates/<app>/default`), Handlebars templates rendered strictly and without HTML
//! escaping, `app.yaml` destinations, owners and modes, and the node's scripts, all gathered
//! into a [`pacha_core::Plan`] per node.
//!
//! The main type is [`Renderer`]; [`render_in_order`] renders many nodes on several threads.
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
//! write("pacha.yaml", "vars: {port: 80}\n");
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
mod error;
mod helpers;
mod renderer;
mod template;
mod tree;

use std::thread;

pub use app::{AppConfig, Attributes};
pub use error::RenderError;
pub use helpers::HELPERS;
pub use renderer::Renderer;
pub use tree::{TEMPLATE_SUFFIX, overlay};

use pacha_core::Plan;

/// Renders the plans of `nodes` in `state` on up to `threads` threads and hands each result to
/// `sink` in the order of `nodes`. Only a small batch of plans is in memory at once. Stops at
/// the first error `sink` returns.
pub fn render_in_order<E>(
    renderer: &Renderer<'_>,
    nodes: &[String],
    state: &str,
    threads: usize,
    mut sink: impl FnMut(&str, Result<Plan, RenderError>) -> Result<(), E>,
) -> Result<(), E> {
    let threads = threads.max(1);
    for batch in nodes.chunks(threads * 4) {
        let mut results: Vec<Option<Result<Plan, RenderError>>> = (0..batch.len()).map(|_| None).collect();
        if threads == 1 || batch.len() == 1 {
            for (slot, node) in results.iter_mut().zip(batch) {
                *slot = Some(renderer.plan(node, state));
            }
        } else {
            let per_thread = batch.len().div_ceil(threads);
            thread::scope(|scope| {
                for (slots, nodes) in results.chunks_mut(per_thread).zip(batch.chunks(per_thread)) {
                    scope.spawn(move || {
                        for (slot, node) in slots.iter_mut().zip(nodes) {
                            *slot = Some(renderer.plan(node, state));
                        }
                    });
                }
            });
        }
        for (node, result) in batch.iter().zip(results) {
            if let Some(result) = result {
                sink(node, result)?;
            }
        }
    }
    Ok(())
}
