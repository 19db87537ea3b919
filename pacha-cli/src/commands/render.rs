//! `pacha render NODE STATE [--out DIR]`: the resolved plan of every leaf node.

use std::io;
use std::path::Path;

use pacha_core::Rendering;
use pacha_render::Renderer;

use super::{Context, Status};
use crate::output::{Output, pad};
use crate::ui::views::{FileView, PlanView};

pub(super) fn run(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    state: &str,
    dir: Option<&Path>,
) -> anyhow::Result<Status> {
    let master = context.master()?;
    let renderer = Renderer::new(&master);
    if out.json {
        out.raw("{\"plans\": [")?;
    }
    let mut first = true;
    Rendering::new(&master, &renderer).render(node, state, dir, |plan| -> anyhow::Result<()> {
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
    })?;
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
