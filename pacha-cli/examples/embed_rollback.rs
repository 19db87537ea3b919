//! Places NODE's files exactly as recorded at REV and records the rollback, as `pacha rollback`
//! does; prints "<node> <outcome> <new revision>" and exits 1 if it failed.
//!
//! cargo run -p pacha-cli --example embed_rollback -- MASTER NODE REV

use std::process::ExitCode;

use pacha_core::{Engine, Master, PushOptions, Quiet};
use pacha_render::Renderer;
use pacha_transport::SshConnector;
use pacha_vcs::{Author, GitHistory};

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, node, revision] = args.as_slice() else {
        return Err("usage: embed_rollback MASTER NODE REV".into());
    };
    let master = Master::open(dir.as_ref())?;
    let renderer = Renderer::new(&master);
    let connector = SshConnector::new(master.dir().join(".pacha-ssh"))?;
    let history = GitHistory::open(&master.history_dir(), Author::new("embed", "embed@localhost"))?;
    let engine = Engine::new(&master, &renderer, &connector, &history);
    let report = engine.rollback(node, revision, &PushOptions::default(), &Quiet)?.report;
    let recorded = report.recorded.as_ref().map_or("-", |entry| entry.revision.as_str());
    println!("{} {} {recorded}", report.node, report.outcome.as_str());
    Ok(ExitCode::from(u8::from(report.failed())))
}
