//! The CLI's errors: each library error mapped to a category (the `kind` of `--json`), an exit
//! code and hints that name flags and commands. The libraries never name a flag; this file is
//! where that wording lives.

use std::io;

use pacha_core::{
    AgeError, ConfigError, EngineError, GraphError, HistoryError, LinkError, SavedPlanError, TransportError,
};
use pacha_render::RenderError;
use serde::Serialize;

/// A command that failed after every node's outcome was printed (some nodes failed): exit 1,
/// and the message goes to stderr only, since the report already said it all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NodesFailed(pub String);

/// A usage problem the CLI found itself (a bad flag value).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub String);

/// An error as the user sees it.
#[derive(Debug, Serialize)]
pub(crate) struct Shown {
    pub kind: &'static str,
    pub message: String,
    pub hints: Vec<String>,
}

/// The category, message and hints of `err`.
pub(crate) fn describe(err: &anyhow::Error) -> Shown {
    let mut message = err.to_string();
    let mut last = message.clone();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !last.contains(&text) {
            message.push_str(&format!("\n  caused by: {text}"));
        }
        last = text;
    }
    let (kind, hints) = categorize(err);
    Shown { kind, message, hints }
}

fn categorize(err: &anyhow::Error) -> (&'static str, Vec<String>) {
    for cause in err.chain() {
        if let Some(err) = cause.downcast_ref::<EngineError>() {
            return engine(err);
        }
        if let Some(err) = cause.downcast_ref::<ConfigError>() {
            return config(err);
        }
        if let Some(err) = cause.downcast_ref::<GraphError>() {
            return graph(err);
        }
        if let Some(err) = cause.downcast_ref::<HistoryError>() {
            return history(err);
        }
        if let Some(err) = cause.downcast_ref::<RenderError>() {
            return render(err);
        }
        if let Some(err) = cause.downcast_ref::<TransportError>() {
            return transport(err);
        }
        if let Some(err) = cause.downcast_ref::<LinkError>() {
            return link(err);
        }
        if let Some(err) = cause.downcast_ref::<SavedPlanError>() {
            return match err {
                SavedPlanError::Age(err) => age(err),
                _ => (
                    "plan",
                    vec!["`pacha plan NODE STATE -o FILE` makes a plan file".to_owned()],
                ),
            };
        }
        if cause.downcast_ref::<NodesFailed>().is_some() {
            return ("nodes-failed", Vec::new());
        }
        if cause.downcast_ref::<Usage>().is_some() {
            return ("usage", Vec::new());
        }
        if cause.downcast_ref::<crate::setup::DirtyMaster>().is_some() {
            return (
                "dirty-master",
                vec![
                    "`git status` in the master shows them; a dry run (`pacha diff`, `pacha plan`) is not refused"
                        .to_owned(),
                ],
            );
        }
    }
    if err.chain().any(|cause| cause.downcast_ref::<io::Error>().is_some()) {
        return ("io", Vec::new());
    }
    ("error", Vec::new())
}

fn engine(err: &EngineError) -> (&'static str, Vec<String>) {
    match err {
        EngineError::Config(err) => config(err),
        EngineError::Graph(err) => graph(err),
        EngineError::Render { source, .. } => match source.downcast_ref::<RenderError>() {
            Some(err) => render(err),
            None => ("render", Vec::new()),
        },
        EngineError::History(err) => history(err),
        EngineError::Transport { source, .. } => transport(source),
        EngineError::Link(err) => link(err),
        EngineError::Damaged(_) => ("protocol", Vec::new()),
        EngineError::Path(_) => ("usage", Vec::new()),
        EngineError::Write { .. } => ("io", Vec::new()),
        EngineError::State { .. } => (
            "io",
            vec!["the watcher keeps its spool in its state folder: give --state DIR for one it may write".to_owned()],
        ),
    }
}

fn config(err: &ConfigError) -> (&'static str, Vec<String>) {
    match err {
        ConfigError::MasterNotFound { .. } => (
            "no-master",
            vec!["pass --master DIR, set PACHA_MASTER, or run `pacha init` to create one".to_owned()],
        ),
        ConfigError::NotAMaster { .. } => (
            "no-master",
            vec!["--master, PACHA_MASTER, pull --from and watch --to must name a folder holding pacha.yaml".to_owned()],
        ),
        ConfigError::Age(err) => age(err),
        ConfigError::UnknownState { declared, .. } => (
            "unknown-state",
            vec![if *declared {
                "the states are those `states:` in pacha.yaml declares; add it there to make a new one".to_owned()
            } else {
                "a state is `default`, a folder templates/APP/STATE, or a `states:` key of a node, meta node or app.yaml; `states: [...]` in pacha.yaml declares them".to_owned()
            }],
        ),
        _ => ("config", Vec::new()),
    }
}

fn age(err: &AgeError) -> (&'static str, Vec<String>) {
    let hints = match err {
        AgeError::NoIdentity { .. } | AgeError::NotForIdentity { .. } | AgeError::Identity { .. } => vec![
            "set `age: {identity: PATH}` in pacha.yaml or PACHA_AGE_IDENTITY to the identity file (age-keygen's output) of one of the recipients".to_owned(),
        ],
        AgeError::NoRecipients => vec!["`age-keygen -o key.txt` makes an identity and prints its recipient (age1…)".to_owned()],
        _ => Vec::new(),
    };
    ("secret", hints)
}

fn graph(err: &GraphError) -> (&'static str, Vec<String>) {
    match err {
        GraphError::UnknownNode { .. } => ("unknown-node", vec!["`pacha nodes` lists the nodes".to_owned()]),
        GraphError::NotALeaf { name } => (
            "meta-node",
            vec![format!("`pacha expand {name}` lists its nodes; name one of them")],
        ),
        GraphError::Config(err) => config(err),
        _ => ("config", Vec::new()),
    }
}

fn history(err: &HistoryError) -> (&'static str, Vec<String>) {
    match err {
        HistoryError::Empty { node } => ("history", vec![format!("push it first: `pacha push {node} STATE`")]),
        HistoryError::UnknownRevision { node, .. } | HistoryError::OtherNode { node, .. } => (
            "unknown-revision",
            vec![format!("`pacha log {node}` lists its revisions")],
        ),
        HistoryError::Ambiguous { .. } => ("unknown-revision", Vec::new()),
        HistoryError::Age { source, .. } => age(source),
        _ => ("history", Vec::new()),
    }
}

fn render(err: &RenderError) -> (&'static str, Vec<String>) {
    match err {
        RenderError::Graph(err) => graph(err),
        RenderError::Config(err) => config(err),
        _ => ("render", Vec::new()),
    }
}

/// The hints of a node's transport error, as a push report shows them under the node.
pub(crate) fn transport_hints(err: &TransportError) -> Vec<String> {
    transport(err).1
}

fn transport(err: &TransportError) -> (&'static str, Vec<String>) {
    match err {
        TransportError::HostKey { host, detail } => (
            "host-key",
            vec![format!(
                "after checking the key out of band: `{} >> KNOWN_HOSTS` (the file `ssh: {{known_hosts: …}}` names, else ~/.ssh/known_hosts), or set `ssh: {{host_keys: accept-new}}` to trust new hosts on first contact",
                keyscan(host, detail)
            )],
        ),
        TransportError::Locked { .. } => (
            "lock",
            vec!["another pacha is working on the node; run again when it is done".to_owned()],
        ),
        _ => ("connection", Vec::new()),
    }
}

fn link(err: &LinkError) -> (&'static str, Vec<String>) {
    match err {
        LinkError::Version { .. } => ("protocol", Vec::new()),
        LinkError::Refused { kind, .. } if kind == "refused" => ("refused", Vec::new()),
        LinkError::Refused { .. } => ("master", Vec::new()),
        LinkError::Malformed { .. } => (
            "protocol",
            vec!["the master must run `pacha serve`: check --remote-pacha and the key's forced command".to_owned()],
        ),
        _ => ("connection", Vec::new()),
    }
}

/// The `ssh-keyscan` command for the host ssh named (`[host]:port` when not on port 22).
fn keyscan(host: &str, detail: &str) -> String {
    let named = detail
        .split("host key is known for ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or(host);
    match named.strip_prefix('[').and_then(|rest| rest.split_once("]:")) {
        Some((name, port)) => format!("ssh-keyscan -p {port} {name}"),
        None => format!("ssh-keyscan {named}"),
    }
}

#[cfg(test)]
mod keyscan_tests {
    use super::keyscan;

    #[test]
    fn the_keyscan_hint_names_the_host_and_port_ssh_used() {
        let detail = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.";
        assert_eq!(keyscan("web1", detail), "ssh-keyscan -p 2222 127.0.0.1");
        let detail = "No ED25519 host key is known for web1.example.com and you have requested strict checking.";
        assert_eq!(keyscan("web1", detail), "ssh-keyscan web1.example.com");
        assert_eq!(keyscan("web1", "Host key verification failed."), "ssh-keyscan web1");
    }
}
