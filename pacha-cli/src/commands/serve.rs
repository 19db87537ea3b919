//! `pacha serve`: the master's end of pull and watch, on standard input and output (run by ssh,
//! usually as a key's forced command). With `--node`, the session may act for that node only.

use std::io::{self, BufReader};

use super::{Context, Status};

pub(super) fn serve(context: &Context<'_>, node: Option<&str>) -> anyhow::Result<Status> {
    let parts = crate::setup::Parts::serving(context.master()?)?;
    if let Some(node) = node {
        parts.master.node(node)?;
    }
    parts.with_engine(|engine| {
        let server = engine.serve(node);
        let mut input = BufReader::new(io::stdin().lock());
        let mut output = io::stdout().lock();
        let served = server.serve(&mut input, &mut output);
        log_refusals(&server.refusals());
        served
    })?;
    Ok(Status::Success)
}

/// Appends each refusal, with the time, to the master user's `serve.log`
/// (`$XDG_STATE_HOME/pacha/`, else `~/.local/state/pacha/`); the node hears it as an error.
fn log_refusals(refusals: &[String]) {
    if refusals.is_empty() {
        return;
    }
    let dir = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".local/state")))
        .map(|dir| dir.join("pacha"));
    let Some(dir) = dir else { return };
    let now = pacha_core::unix_seconds(std::time::SystemTime::now());
    let mut text = String::new();
    for refusal in refusals {
        text.push_str(&format!("{} {}\n", crate::output::utc_time(now), refusal));
    }
    let _ = std::fs::create_dir_all(&dir).and_then(|()| {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .and_then(|mut file| file.write_all(text.as_bytes()))
    });
}
