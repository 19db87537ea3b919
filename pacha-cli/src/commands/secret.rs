//! `pacha secret set` and `pacha secret list`: encrypted secrets in the master, never a value
//! on the screen.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use pacha_core::{AgeError, ConfigError, Definition, Master, SECRETS_DIR, check_secret_name};
use serde::Serialize;

use super::{Context, Status};
use crate::error::Usage;
use crate::output::{Output, pad, printable};

/// Where a secret is defined, as `pacha secret list` shows it.
#[derive(Serialize)]
struct Defined {
    name: String,
    /// `master`, `meta` or `node`.
    layer: &'static str,
    /// The node (or meta node) whose layer it is.
    node: Option<String>,
    /// The state whose `states:` block sets it.
    state: Option<String>,
    /// The file that defines it, relative to the master.
    file: String,
    /// Whether the file holds it encrypted (`NAME.age`).
    encrypted: bool,
}

pub(super) fn list(context: &Context<'_>, out: &mut Output) -> anyhow::Result<Status> {
    let master = context.master()?;
    let mut defined = Vec::new();
    let yaml = |name: &str, layer, node: Option<&str>, state: Option<&str>, file: &str| Defined {
        name: name.to_owned(),
        layer,
        node: node.map(str::to_owned),
        state: state.map(str::to_owned),
        file: file.to_owned(),
        encrypted: false,
    };
    for name in master.settings().secrets.keys() {
        defined.push(yaml(name, "master", None, None, pacha_core::SETTINGS_FILE));
    }
    for sealed in master.sealed_secrets() {
        defined.push(Defined {
            name: sealed.name.clone(),
            layer: if sealed.node.is_some() { "node" } else { "master" },
            node: sealed.node.clone(),
            state: None,
            file: sealed.file.clone(),
            encrypted: true,
        });
    }
    let graph = master.graph();
    for node in graph.names() {
        let file = graph.file(node).unwrap_or_default();
        match graph.definition(node)? {
            Definition::Meta(meta) => {
                for name in meta.secrets.keys() {
                    defined.push(yaml(name, "meta", Some(node), None, file));
                }
            }
            Definition::Node(settings) => {
                for name in settings.secrets.keys() {
                    defined.push(yaml(name, "node", Some(node), None, file));
                }
                for (state, block) in &settings.states {
                    for name in block.secrets.keys() {
                        defined.push(yaml(name, "node", Some(node), Some(state), file));
                    }
                }
            }
        }
    }
    let recipients: Vec<&str> = master.age().recipient_names().collect();
    if out.json {
        out.json_document(&serde_json::json!({
            "recipients": recipients,
            "identity": master.age().identity_path(),
            "secrets": defined,
        }))?;
        return Ok(Status::Success);
    }
    if recipients.is_empty() {
        out.line("recipients: none (add `age: {recipients: [age1…]}` to pacha.yaml to encrypt secrets)")?;
    } else {
        out.line(format!("recipients: {}", recipients.join(", ")))?;
    }
    let name_width = defined.iter().map(|d| d.name.chars().count()).max().unwrap_or(0);
    let layers: Vec<String> = defined.iter().map(layer_text).collect();
    let layer_width = layers.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    for (entry, layer) in defined.iter().zip(&layers) {
        let style = out.style;
        out.line(format!(
            "{}  {}  {}{}",
            style.bold(&pad(&printable(&entry.name), name_width)),
            pad(layer, layer_width),
            printable(&entry.file),
            if entry.encrypted { " (encrypted)" } else { "" }
        ))?;
    }
    if defined.is_empty() {
        out.line("no secrets")?;
    }
    Ok(Status::Success)
}

fn layer_text(defined: &Defined) -> String {
    let mut text = defined.layer.to_owned();
    if let Some(node) = &defined.node {
        text.push(' ');
        text.push_str(&printable(node));
    }
    if let Some(state) = &defined.state {
        text.push_str(&format!(" ({})", printable(state)));
    }
    text
}

pub(super) fn set(context: &Context<'_>, out: &mut Output, node: Option<&str>, name: &str) -> anyhow::Result<Status> {
    let master = context.master()?;
    check_secret_name(name).map_err(Usage)?;
    if !master.age().can_encrypt() {
        return Err(ConfigError::Age(AgeError::NoRecipients).into());
    }
    let (folder, shown) = target(&master, node, name)?;
    let value = read_value(name)?;
    let sealed = master.age().encrypt(name, value.as_bytes()).map_err(ConfigError::Age)?;
    drop(value);

    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", master.display_path(&folder)))?;
    let path = folder.join(format!("{name}.age"));
    let replaced = path.exists();
    // Written beside and renamed over, so the file is always one whole ciphertext.
    let draft = folder.join(format!(".{name}.age.new-{}", std::process::id()));
    let written = std::fs::File::create(&draft)
        .and_then(|mut file| file.write_all(&sealed).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&draft, &path));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&draft);
        return Err(err).with_context(|| format!("writing {shown}"));
    }

    let count = master.age().recipient_names().count();
    if out.json {
        out.json_document(&serde_json::json!({
            "name": name,
            "node": node,
            "file": shown,
            "recipients": count,
            "replaced": replaced,
        }))?;
    } else {
        let verb = if replaced { "replaced" } else { "wrote" };
        let plural = if count == 1 { "" } else { "s" };
        let layer = node.map_or_else(|| "master-wide".to_owned(), |node| format!("node {}", printable(node)));
        out.line(format!(
            "{verb} {shown}: `{name}` ({layer}) encrypted to {count} recipient{plural}"
        ))?;
    }
    Ok(Status::Success)
}

/// The folder a secret goes to and its file as shown; refuses a name its layer already sets in
/// YAML.
fn target(master: &Master, node: Option<&str>, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let Some(node) = node else {
        if master.settings().secrets.contains_key(name) {
            return Err(Usage(format!(
                "`{name}` is already set under `secrets:` in pacha.yaml; remove it there first"
            ))
            .into());
        }
        return Ok((master.dir().join(SECRETS_DIR), format!("{SECRETS_DIR}/{name}.age")));
    };
    let settings = master.node(node)?;
    if settings.secrets.contains_key(name) {
        let file = master.graph().file(node).unwrap_or_default();
        return Err(Usage(format!(
            "`{name}` is already set under `secrets:` in {file}; remove it there first"
        ))
        .into());
    }
    Ok((
        master.dir().join("nodes").join(node).join(SECRETS_DIR),
        format!("nodes/{node}/{SECRETS_DIR}/{name}.age"),
    ))
}

/// The value on standard input, without one trailing newline (as `$(cat)` would).
fn read_value(name: &str) -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        #[expect(clippy::print_stderr, reason = "a prompt, never the value")]
        {
            eprintln!("type the value of {name}, then Ctrl-D:");
        }
    }
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .context("reading the value from standard input")?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(Usage(format!("no value for `{name}` on standard input")).into());
    }
    String::from_utf8(bytes).map_err(|_| Usage(format!("the value of `{name}` is not UTF-8 text")).into())
}
