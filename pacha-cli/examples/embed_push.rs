//! Pushes NODE (a node or meta node) to STATE and records it, as `pacha push` does; prints
//! "<node> <outcome>" per leaf and exits 1 if any node failed.
//!
//! cargo run -p pacha-cli --example embed_push -- MASTER NODE STATE

use std::process::ExitCode;

use pacha_core::{Engine, Master, PushOptions, Quiet};
use pacha_render::Renderer;
use pacha_transport::SshConnector;
use pacha_vcs::{Author, GitHistory};

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, node, state] = args.as_slice() else {
        return Err("usage: embed_push MASTER NODE STATE".into());
    };
    let master = Master::open(dir.as_ref())?;
    let renderer = Renderer::new(&master);
    let connector = SshConnector::new(master.dir().join(".pacha-ssh"))?;
    let history = GitHistory::open(&master.history_dir(), Author::new("embed", "embed@localhost"))?;
    let engine = Engine::new(&master, &renderer, &connector, &history);
    let reports = engine.push(node, state, &PushOptions::default(), &Quiet)?;
    for report in &reports {
        println!("{} {}", report.node, report.outcome.as_str());
    }
    Ok(ExitCode::from(u8::from(reports.iter().any(|report| report.failed()))))
}
