//! `pacha render NODE STATE [--out DIR]`: the resolved plan of every leaf node.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context as _;
use pacha_core::{Master, Plan, Stage, TransportKind};
use pacha_render::{Renderer, render_in_order};
use serde::Serialize;

use super::{Context, Status};
use crate::output::{Output, pad};

/// A plan as `render --json` prints it: no file contents, no paths of this machine.
#[derive(Serialize)]
pub struct PlanView<'a> {
    pub node: &'a str,
    pub state: &'a str,
    pub host: &'a str,
    pub transport: TransportKind,
    /// The node's `root` as written in its node file.
    pub root: &'a str,
    pub files: Vec<FileView<'a>>,
    pub scripts: Vec<ScriptView<'a>>,
}

#[derive(Serialize)]
pub struct FileView<'a> {
    pub destination: &'a str,
    pub app: &'a str,
    pub source: &'a str,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub mode: String,
    pub size: usize,
    pub sha256: String,
}

#[derive(Serialize)]
pub struct ScriptView<'a> {
    pub stage: Stage,
    pub phase: &'a str,
    pub name: &'a str,
    pub source: &'a str,
    pub sha256: String,
}

impl<'a> PlanView<'a> {
    pub fn new(master: &'a Master, plan: &'a Plan) -> PlanView<'a> {
        let root = master
            .graph()
            .node(&plan.node, "rendering")
            .ok()
            .and_then(|node| node.root.as_deref())
            .unwrap_or("/");
        PlanView {
            node: &plan.node,
            state: &plan.state,
            host: &plan.target.host,
            transport: plan.target.transport,
            root,
            files: plan
                .files
                .iter()
                .map(|file| FileView {
                    destination: file.destination.as_str(),
                    app: &file.app,
                    source: &file.source,
                    owner: file.owner.as_deref(),
                    group: file.group.as_deref(),
                    mode: file.mode.to_string(),
                    size: file.content.len(),
                    sha256: file.sha256.to_string(),
                })
                .collect(),
            scripts: plan
                .scripts
                .iter()
                .map(|script| ScriptView {
                    stage: script.stage,
                    phase: &script.phase,
                    name: &script.name,
                    source: &script.source,
                    sha256: script.sha256.to_string(),
                })
                .collect(),
        }
    }
}

pub fn run(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: &str,
    dir: Option<&Path>,
) -> anyhow::Result<Status> {
    let master = context.master()?;
    let nodes = master.expand(node)?;
    let renderer = Renderer::new(&master);
    if out.json {
        out.raw("{\"plans\": [")?;
    }
    let mut first = true;
    render_in_order(
        &renderer,
        &nodes,
        state,
        context.threads(),
        |_, plan| -> anyhow::Result<()> {
            let plan = plan?;
            if let Some(dir) = dir {
                write_files(dir, &plan)
                    .with_context(|| format!("writing the files of {} to {}", plan.node, dir.display()))?;
            }
            let view = PlanView::new(&master, &plan);
            if out.json {
                if !first {
                    out.raw(",")?;
                }
                out.raw("\n")?;
                out.raw(serde_json::to_string(&view)?)?;
            } else {
                print_plan(out, &view)?;
            }
            first = false;
            Ok(())
        },
    )?;
    if out.json {
        out.raw("\n]}\n")?;
    }
    Ok(Status::Success)
}

fn print_plan(out: &mut Output, plan: &PlanView<'_>) -> io::Result<()> {
    let style = out.style;
    out.line(format!(
        "{} {}",
        style.bold(&format!("node {}", plan.node)),
        style.dim(&format!(
            "(state {}, host {}, root {})",
            plan.state, plan.host, plan.root
        ))
    ))?;
    let width = plan
        .files
        .iter()
        .map(|file| file.destination.chars().count())
        .max()
        .unwrap_or(0);
    let owner_width = plan
        .files
        .iter()
        .map(|file| owner_text(file).chars().count())
        .max()
        .unwrap_or(0);
    for file in &plan.files {
        out.line(format!(
            "  {}  {}  {}  {}  {}",
            pad(file.destination, width),
            file.mode,
            pad(&owner_text(file), owner_width),
            style.dim(&file.sha256[..12]),
            file.source
        ))?;
    }
    for script in &plan.scripts {
        out.line(format!(
            "  {} {}/{}  {}",
            style.cyan(&pad(&script.stage.to_string(), 4)),
            script.phase,
            script.name,
            style.dim(script.source)
        ))?;
    }
    if plan.files.is_empty() && plan.scripts.is_empty() {
        out.line("  (nothing: the node has no apps and no scripts)")?;
    }
    Ok(())
}

fn owner_text(file: &FileView<'_>) -> String {
    format!("{}:{}", file.owner.unwrap_or("-"), file.group.unwrap_or("-"))
}

/// Writes the files of `plan` under `dir/<node>/`, with the planned modes.
fn write_files(dir: &Path, plan: &Plan) -> io::Result<()> {
    let node_dir = dir.join(&plan.node);
    for file in &plan.files {
        let path = node_dir.join(file.destination.relative());
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        // A file left by an earlier run may be read-only.
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        fs::write(&path, &file.content)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode.bits()))?;
    }
    Ok(())
}
