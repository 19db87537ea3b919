//! `pacha adopt NODE PATH --app APP [--state S]`: a live file becomes part of the master. Its
//! content goes to `templates/APP/S/<path under the app's dest>` (a plain file: copied byte
//! for byte when pushed), its owner, group and mode to a `files:` rule in the app's
//! `app.yaml` when they differ from what the app gives a file, and the app joins the node's
//! `apps:` when it is not there. A new app gets `dest:` the file's folder. Nothing is
//! overwritten: a file or template already at that place is refused.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use pacha_core::{Connector as _, Inspect, LiveFile, NodePath};
use pacha_render::{FileDefaults, Renderer, TEMPLATE_SUFFIX};

use super::{Context, Status, write_atomically};
use crate::error::Usage;
use crate::output::{Output, printable};

pub(super) fn adopt(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    path: &str,
    app: &str,
    state: Option<&str>,
) -> anyhow::Result<Status> {
    let state = state.unwrap_or("default");
    let path = NodePath::parse(path).map_err(|err| Usage(format!("{path:?}: {err}")))?;
    let master = context.master()?;
    master.check_state(state)?;
    let definition = master.graph().node(node)?;
    let node_file = master.graph().file(node).unwrap_or_default().to_owned();
    let renderer = Renderer::new(&master);
    let parent = path.parent().unwrap_or_else(NodePath::root);
    let relative_of = |dest: &NodePath| {
        path.as_str()
            .strip_prefix(dest.as_str().trim_end_matches('/'))
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_owned)
    };
    let (new_app, dest, relative, owner, group, mode) = match renderer.file_defaults(app, state, "")? {
        Some(FileDefaults { dest, .. }) => {
            let Some(relative) = relative_of(&dest) else {
                bail!("{path} is not under {dest}, the dest of templates/{app}/app.yaml");
            };
            let Some(FileDefaults { owner, group, mode, .. }) = renderer.file_defaults(app, state, &relative)? else {
                bail!("templates/{app} vanished");
            };
            (false, dest, relative, owner, group, mode)
        }
        None => {
            let relative = relative_of(&parent).unwrap_or_default();
            (true, parent.clone(), relative, None, None, pacha_core::Mode::FILE)
        }
    };
    let folder = master.dir().join("templates").join(app).join(state);
    let target = folder.join(&relative);
    let template = folder.join(format!("{relative}{TEMPLATE_SUFFIX}"));
    for existing in [&target, &template] {
        if existing.exists() {
            bail!(
                "{} already exists: pacha adopt never overwrites a template",
                master.display_path(existing)
            );
        }
    }

    // The live file, read as a push reads a node.
    let connector = crate::setup::connector()?;
    let mut connection = connector.connect(node, &master.target(node)?)?;
    let read = connection.inspect(&Inspect {
        paths: std::slice::from_ref(&path),
        contents: true,
        lock: None,
    });
    let _ = connection.close();
    let read = read?;
    let (stat, content) = match (read.files.first(), read.contents.into_iter().next().flatten()) {
        (Some(LiveFile::File(stat)), Some(content)) => (stat.clone(), content),
        (Some(LiveFile::Missing), _) => bail!("{node} has no file {path}"),
        _ => bail!("{path} on {node} is not a regular file pacha can read"),
    };
    // A secret never lands in the master's tree in plaintext: not a file the history marks
    // as holding one, nor one holding a secret value the node's layers set.
    let parts = crate::setup::Parts::new(master.clone())?;
    let recorded_secret = parts
        .with_engine(|engine| engine.show(node, None))
        .ok()
        .is_some_and(|(_, snapshot)| snapshot.file(&path).is_some_and(|file| file.secret));
    let text = String::from_utf8_lossy(&content);
    let holds_secret = master
        .node_vars(node, state)
        .map(|vars| vars.secrets)
        .unwrap_or_default()
        .iter()
        .any(|secret| !secret.is_empty() && text.contains(secret.as_str()));
    if recorded_secret || holds_secret {
        bail!(
            "{path} on {node} holds a secret: adopting it would write the secret in plaintext into templates/{app}; make it a template that reads the secret ({{{{name}}}}) instead"
        );
    }

    if let Some(folder) = target.parent() {
        fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    }
    let mut did = Vec::new();
    if new_app {
        let app_yaml = master.dir().join("templates").join(app).join("app.yaml");
        write_atomically(&app_yaml, format!("dest: {dest}\n").as_bytes())
            .with_context(|| format!("writing {}", app_yaml.display()))?;
        did.push(format!("created templates/{app}/app.yaml (dest: {dest})"));
    }
    write_atomically(&target, &content).with_context(|| format!("writing {}", target.display()))?;
    did.push(format!(
        "copied {node}:{} to {} ({} bytes)",
        printable(path.as_str()),
        master.display_path(&target),
        content.len()
    ));
    let live_owner = stat.recorded_owner();
    let live_group = stat.recorded_group();
    let differs = |set: &Option<String>, live: &str| set.as_deref().unwrap_or("root") != live;
    let mut rule = Vec::new();
    if differs(&owner, &live_owner) {
        rule.push(format!("owner: {}", yaml_scalar(&live_owner)));
    }
    if differs(&group, &live_group) {
        rule.push(format!("group: {}", yaml_scalar(&live_group)));
    }
    if stat.mode != mode {
        rule.push(format!("mode: \"{}\"", stat.mode));
    }
    if !rule.is_empty() {
        let line = format!("{{match: {}, {}}}", yaml_scalar(&relative), rule.join(", "));
        let app_yaml = master.dir().join("templates").join(app).join("app.yaml");
        match add_list_item(&app_yaml, "files", &line)? {
            true => did.push(format!("added to templates/{app}/app.yaml files: {line}")),
            false => did.push(format!(
                "add to files: in templates/{app}/app.yaml (written in a way pacha does not edit): {line}"
            )),
        }
    }
    if !definition.apps.iter().any(|name| name == app) {
        let node_path = master.dir().join(&node_file);
        match add_list_item(&node_path, "apps", app)? {
            true => did.push(format!("added {app} to apps: in {node_file}")),
            false => did.push(format!(
                "add {app} to apps: in {node_file} (written in a way pacha does not edit)"
            )),
        }
    }
    if out.json {
        out.json_document(&serde_json::json!({
            "node": node,
            "path": path,
            "app": app,
            "state": state,
            "file": master.display_path(&target),
            "done": did,
        }))?;
    } else {
        for line in &did {
            out.line(line)?;
        }
        out.line(format!(
            "`pacha diff {node} {state}` should show no change for {path} now"
        ))?;
    }
    Ok(Status::Success)
}

/// A YAML scalar for a name or path: quoted unless it is plain letters, digits and `._/-`.
fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "._/-".contains(character))
        && !text.starts_with(['-', '.'])
        && text.parse::<f64>().is_err();
    if plain {
        text.to_owned()
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

/// Adds `item` to the top-level list `key` of the YAML file at `path`: a new `key: [item]`
/// when there is none, `[…, item]` for a one-line flow list, `  - item` after a block list.
/// `false` when the list is written another way (left for the user).
fn add_list_item(path: &Path, key: &str, item: &str) -> anyhow::Result<bool> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let prefix = format!("{key}:");
    let Some(at) = lines.iter().position(|line| line.starts_with(&prefix)) else {
        let mut text = text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{key}:\n  - {item}\n"));
        write_atomically(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        return Ok(true);
    };
    let rest = lines[at][prefix.len()..].trim().to_owned();
    if rest.starts_with('[') && rest.ends_with(']') {
        let inner = rest[1..rest.len() - 1].trim();
        lines[at] = if inner.is_empty() {
            format!("{key}: [{item}]")
        } else {
            format!("{key}: [{inner}, {item}]")
        };
    } else if rest.is_empty() {
        let mut end = at + 1;
        while end < lines.len() && (lines[end].starts_with(' ') || lines[end].starts_with('-') || lines[end].is_empty())
        {
            end += 1;
        }
        let indent = lines[at + 1..end]
            .iter()
            .find_map(|line| line.find('-').filter(|_| line.trim_start().starts_with('-')))
            .unwrap_or(2);
        lines.insert(end, format!("{}- {item}", " ".repeat(indent)));
    } else {
        return Ok(false);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    write_atomically(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_are_added_to_flow_and_block_lists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.conf");
        fs::write(&file, "host: web1\napps: [motd, nginx]\n").unwrap();
        assert!(add_list_item(&file, "apps", "chrony").unwrap());
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "host: web1\napps: [motd, nginx, chrony]\n"
        );
        fs::write(&file, "apps:\n    - motd\nvars: {}\n").unwrap();
        assert!(add_list_item(&file, "apps", "chrony").unwrap());
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "apps:\n    - motd\n    - chrony\nvars: {}\n"
        );
        fs::write(&file, "host: web1").unwrap();
        assert!(add_list_item(&file, "apps", "chrony").unwrap());
        assert_eq!(fs::read_to_string(&file).unwrap(), "host: web1\napps:\n  - chrony\n");
        fs::write(&file, "apps: &shared [motd]\n").unwrap();
        assert!(!add_list_item(&file, "apps", "chrony").unwrap());
        assert_eq!(yaml_scalar("chrony.conf"), "chrony.conf");
        assert_eq!(yaml_scalar("it's here"), "\"it's here\"");
        assert_eq!(yaml_scalar("0640"), "\"0640\"");
    }
}
