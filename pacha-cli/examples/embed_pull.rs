//! Pulls NODE's plan in STATE from a master folder on this machine, applies it here under the
//! node's root and records it in that master's history, as `pacha pull --from DIR` does; prints
//! "<node> <outcome>" and exits 1 if it failed.
//!
//! cargo run -p pacha-cli --example embed_pull -- MASTER_DIR NODE STATE

use std::process::ExitCode;

use pacha_core::{Engine, Master, PushOptions, Quiet, pull};
use pacha_render::Renderer;
use pacha_transport::{LocalConnector, LocalLink};
use pacha_vcs::{Author, GitHistory};

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, node, state] = args.as_slice() else {
        return Err("usage: embed_pull MASTER_DIR NODE STATE".into());
    };
    let master = Master::open(dir.as_ref())?;
    let renderer = Renderer::new(&master);
    let here = LocalConnector::default();
    let history = GitHistory::open(&master.history_dir(), Author::new("embed", "embed@localhost"))?;
    let engine = Engine::new(&master, &renderer, &here, &history);
    let mut link = LocalLink::new(engine.serve(Some(node)), dir.as_str());
    let pulled = pull(&mut link, node, Some(state), &here, &PushOptions::default(), &Quiet)?;
    println!("{} {}", pulled.report.node, pulled.report.outcome.as_str());
    Ok(ExitCode::from(u8::from(pulled.report.failed())))
}
