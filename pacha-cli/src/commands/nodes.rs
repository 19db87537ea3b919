//! `pacha nodes` and `pacha expand`.

use pacha_core::{Definition, TransportKind};
use serde::Serialize;

use super::{Context, Status};
use crate::output::{Output, pad};

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Entry<'a> {
    Node {
        name: &'a str,
        host: &'a str,
        transport: TransportKind,
        apps: &'a [String],
    },
    Meta {
        name: &'a str,
        include_nodes: &'a [String],
    },
}

pub(super) fn list(context: &Context<'_>, out: &mut Output) -> anyhow::Result<Status> {
    let master = context.master()?;
    let graph = master.graph();
    let mut entries = Vec::with_capacity(graph.len());
    for name in graph.names() {
        entries.push(match graph.definition(name)? {
            Definition::Node(node) => Entry::Node {
                name,
                host: node.host.as_deref().unwrap_or(name),
                transport: node.transport,
                apps: &node.apps,
            },
            Definition::Meta(meta) => Entry::Meta {
                name,
                include_nodes: &meta.include_nodes,
            },
        });
    }
    if out.json {
        out.json_document(&serde_json::json!({ "nodes": entries }))?;
        return Ok(Status::Success);
    }
    let width = graph.names().map(|name| name.chars().count()).max().unwrap_or(0);
    let style = out.style;
    for entry in &entries {
        let line = match entry {
            Entry::Node {
                name,
                host,
                transport,
                apps,
            } => {
                let via = match transport {
                    TransportKind::Ssh => String::new(),
                    TransportKind::Local => " (local)".to_owned(),
                };
                format!(
                    "{}  node  {host}{via}  apps: {}",
                    style.bold(&pad(name, width)),
                    apps.join(", ")
                )
            }
            Entry::Meta { name, include_nodes } => {
                format!(
                    "{}  meta  includes: {}",
                    style.bold(&pad(name, width)),
                    include_nodes.join(", ")
                )
            }
        };
        out.line(line)?;
    }
    Ok(Status::Success)
}

pub(super) fn expand(context: &Context<'_>, out: &mut Output, node: &str) -> anyhow::Result<Status> {
    let master = context.master()?;
    let leaves = master.expand(node)?;
    if out.json {
        out.json_document(&serde_json::json!({ "node": node, "nodes": leaves }))?;
    } else {
        for leaf in &leaves {
            out.line(leaf)?;
        }
    }
    Ok(Status::Success)
}
