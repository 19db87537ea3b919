//! `pacha serve`: the master's end of pull and watch, on standard input and output (run by ssh,
//! usually as a key's forced command). With `--node`, the session may act for that node only.

use std::io::{self, BufReader};

use super::{Context, Status};

pub(super) fn serve(context: &Context<'_>, node: Option<&str>) -> anyhow::Result<Status> {
    let parts = context.parts()?;
    if let Some(node) = node {
        parts.master.node(node)?;
    }
    parts.with_engine(|engine| {
        let server = engine.serve(node);
        let mut input = BufReader::new(io::stdin().lock());
        let mut output = io::stdout().lock();
        server.serve(&mut input, &mut output)
    })?;
    Ok(Status::Success)
}
