//! `pacha watch`: the daemon on a host. It looks at the node's recorded and tracked files
//! every few seconds (one `sh` run, as a push reads a node) and sends what changed to the
//! master (`pacha record-changes` there), which records it as a capture. A change that makes
//! the files equal the history again (a push landing) records nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pacha_core::{
    Connector, ContentHash, Entry, Inspect, LiveFile, Mode, NodePath, RecordedFile, SshSettings, Target, Track,
    TransportKind, latest_snapshot, record_changes, tracked_files,
};
use pacha_transport::LocalConnector;
use serde::{Deserialize, Serialize};

use super::pull::{on_master, split_from};
use super::push::open_history;
use super::{Context, Status};
use crate::output::Output;

/// What the master tells a watcher.
#[derive(Serialize, Deserialize)]
struct WatchList {
    root: String,
    files: Vec<Watched>,
    track: Vec<String>,
}

/// A file as the history has it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
struct Watched {
    path: NodePath,
    sha256: ContentHash,
    mode: Mode,
    owner: String,
    group: String,
}

/// What a watcher sends its master.
#[derive(Serialize, Deserialize)]
struct Changes {
    changed: Vec<RecordedFile>,
    removed: Vec<NodePath>,
}

/// A file's state as seen: `None` when it is missing (or not a regular file we may read).
type Seen = Option<(ContentHash, Mode, String, String)>;

fn seen(live: &LiveFile) -> Seen {
    match live {
        LiveFile::File(stat) => Some((stat.sha256, stat.mode, stat.recorded_owner(), stat.recorded_group())),
        _ => None,
    }
}

/// How often the watcher asks the master again for the list of files (a push may add some).
const REFRESH: Duration = Duration::from_secs(60);

pub fn watch(
    out: &mut Output,
    node: &str,
    to: &str,
    interval: f64,
    remote_pacha: &str,
    ssh_config: Option<&Path>,
) -> anyhow::Result<Status> {
    if !(interval.is_finite() && interval > 0.0) {
        bail!("--interval must be a positive number of seconds");
    }
    let (destination, dir) = split_from(to)?;
    let fetch = || -> anyhow::Result<WatchList> {
        let answer = on_master(destination, ssh_config, remote_pacha, dir, &["watch-list", node], None)?;
        serde_json::from_slice(&answer).context("reading the master's list of files")
    };
    let mut list = fetch()?;
    let mut fetched = Instant::now();
    let target = Target {
        transport: TransportKind::Local,
        host: "localhost".to_owned(),
        port: None,
        user: None,
        root: list.root.clone(),
        ssh: SshSettings::default(),
    };
    let connector = LocalConnector::default();
    // Start from the history: what changed while nobody watched is captured first.
    let mut baseline: BTreeMap<NodePath, Seen> = list
        .files
        .iter()
        .map(|file| {
            (
                file.path.clone(),
                Some((file.sha256, file.mode, file.owner.clone(), file.group.clone())),
            )
        })
        .collect();
    out.line(format!(
        "watching {} files of {node} under {} (every {interval} s)",
        baseline.len(),
        list.root
    ))?;
    out.flush()?;
    loop {
        if fetched.elapsed() > REFRESH {
            list = fetch()?;
            fetched = Instant::now();
            for file in &list.files {
                baseline
                    .entry(file.path.clone())
                    .or_insert_with(|| Some((file.sha256, file.mode, file.owner.clone(), file.group.clone())));
            }
        }
        let track = Track::new(&list.track).map_err(|err| anyhow::anyhow!(err))?;
        let mut connection = connector.connect(node, &target)?;
        let mut paths: Vec<NodePath> = baseline.keys().cloned().collect();
        paths.extend(tracked_files(connection.as_mut(), &track)?);
        paths.sort();
        paths.dedup();
        let inspection = connection.inspect(&Inspect {
            paths: &paths,
            contents: false,
            lock: None,
        })?;
        let changed: Vec<(NodePath, Seen)> = paths
            .iter()
            .zip(&inspection.files)
            .map(|(path, live)| (path.clone(), seen(live)))
            .filter(|(path, now)| baseline.get(path).is_none_or(|before| before != now))
            .collect();
        if !changed.is_empty() {
            let present: Vec<NodePath> = changed
                .iter()
                .filter(|(_, now)| now.is_some())
                .map(|(path, _)| path.clone())
                .collect();
            let read = connection.inspect(&Inspect {
                paths: &present,
                contents: true,
                lock: None,
            })?;
            let mut files = Vec::new();
            for ((path, live), content) in present.iter().zip(&read.files).zip(read.contents) {
                if let (LiveFile::File(stat), Some(content)) = (live, content) {
                    files.push(RecordedFile {
                        path: path.clone(),
                        content: Arc::from(content),
                        sha256: stat.sha256,
                        mode: stat.mode,
                        owner: stat.recorded_owner(),
                        group: stat.recorded_group(),
                    });
                }
            }
            let removed: Vec<NodePath> = changed
                .iter()
                .filter(|(_, now)| now.is_none())
                .map(|(path, _)| path.clone())
                .collect();
            let input = serde_json::to_vec(&Changes {
                changed: files,
                removed,
            })?;
            let answer = on_master(
                destination,
                ssh_config,
                remote_pacha,
                dir,
                &["record-changes", node],
                Some(&input),
            )?;
            let recorded: Option<Entry> = serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|value| serde_json::from_value(value["recorded"].clone()).ok());
            if let Some(entry) = recorded {
                out.line(format!("{} {}", &entry.revision[..12], entry.summary))?;
                out.flush()?;
            }
            for (path, now) in changed {
                baseline.insert(path, now);
            }
        }
        connection.close()?;
        std::thread::sleep(Duration::from_secs_f64(interval));
    }
}

/// `pacha watch-list NODE` (on the master, for a watcher).
pub fn watch_list(context: &Context<'_>, out: &mut Output, node: &str) -> anyhow::Result<Status> {
    let master = context.master()?;
    let target = master.target(node)?;
    let track = master.node(node)?.track.clone();
    let history = open_history(&master)?;
    let files = match latest_snapshot(&history, node)? {
        Some((_, snapshot)) => snapshot
            .files
            .into_iter()
            .map(|file| Watched {
                path: file.path,
                sha256: file.sha256,
                mode: file.mode,
                owner: file.owner,
                group: file.group,
            })
            .collect(),
        None => Vec::new(),
    };
    out.raw(serde_json::to_vec(&WatchList {
        root: target.root,
        files,
        track,
    })?)?;
    Ok(Status::Success)
}

/// `pacha record-changes NODE` (on the master, for a watcher).
pub fn record_changes_command(context: &Context<'_>, out: &mut Output, node: &str) -> anyhow::Result<Status> {
    let master = context.master()?;
    master.node(node)?;
    let mut input = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut input).context("reading the watcher's report")?;
    let changes: Changes = serde_json::from_slice(&input).context("reading the watcher's report")?;
    for file in &changes.changed {
        if ContentHash::of(&file.content) != file.sha256 {
            bail!(
                "the watcher's report is damaged: {} does not match its sha256",
                file.path
            );
        }
    }
    let history = open_history(&master)?;
    let recorded = record_changes(&history, node, changes.changed, &changes.removed)?;
    out.raw(serde_json::to_vec(&serde_json::json!({ "recorded": recorded }))?)?;
    Ok(Status::Success)
}
