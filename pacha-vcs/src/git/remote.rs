//! A history shared through a git remote. Fetch and push run the system `git` (so the user's
//! OpenSSH setup and credential helpers apply), with a timeout; everything else stays git2.
//!
//! Each record fetches the remote's branch, puts the local records the remote does not have
//! on top of it (a record touches only its node's subtree, so records of different nodes made
//! by different masters combine without conflict; a node's `Pacha-Previous` is pointed at that
//! node's latest record on the new line), records, and pushes `main` and the node refs in one
//! atomic push, fetching and trying again when someone pushed first. A remote that cannot be
//! reached leaves the record local, and says why ([`GitHistory::sync_problem`]): the next
//! record or [`GitHistory::sync`] sends it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git2::{FileMode, Oid, Repository};
use pacha_core::HistoryError;

use super::{BRANCH, GitHistory, META_FILE, node_ref};
use crate::meta::NodeMeta;

/// Where the remote's branch is kept locally: what the remote held at the last fetch or push.
const REMOTE_MAIN: &str = "refs/pacha/remote/main";
const REMOTE_NODES: &str = "refs/pacha/remote/nodes/";
/// How often a push rejected because someone else pushed first is tried again.
const PUSH_TRIES: usize = 5;

/// A shared history's remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// A git URL or a path, as `git fetch` takes it.
    pub url: String,
    /// The branch on the remote (`main` by default).
    pub branch: String,
    /// How long one fetch or push may take.
    pub timeout: Duration,
}

impl Remote {
    /// The remote at `url`, branch `branch`, with a 30 s timeout.
    pub fn new(url: impl Into<String>, branch: impl Into<String>) -> Remote {
        Remote {
            url: url.into(),
            branch: branch.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The URL as it may be shown: a password in it (`https://user:token@host/…`) is
    /// replaced by `***`.
    pub fn shown(&self) -> String {
        redact_url(&self.url)
    }
}

/// `url` with the password of its `user:password@` part replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

/// How long records stay local after a fetch failed, before the remote is tried again.
const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Records the remote did not have before and has now.
    pub sent: usize,
    /// Records the remote had that this history did not.
    pub received: usize,
}

/// Why talking to the remote failed.
enum Failure {
    /// Someone pushed first: fetch and try again.
    Rejected,
    /// Anything else (unreachable, refused, timed out): the records stay local.
    Other(String),
}

impl GitHistory {
    /// Shares this history through `remote`: every record fetches, records on top of the
    /// remote's branch and pushes.
    pub fn with_remote(mut self, remote: Remote) -> GitHistory {
        self.remote = Some(remote);
        self
    }

    /// The remote, when the history is shared.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// Why the last record could not be sent to the remote, when it could not (it is kept
    /// locally until a record or [`GitHistory::sync`] sends it).
    pub fn sync_problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }

    /// Fetches the remote and sends what it does not have: an error says why it could not.
    pub fn sync(&self) -> Result<Synced, HistoryError> {
        let Some(remote) = &self.remote else {
            return Ok(Synced::default());
        };
        let repo = self.repository()?;
        let _lock = self.lock()?;
        let received = self
            .fetch(&repo, remote)
            .map_err(|failure| self.failed(remote, failure))?;
        *self
            .unreachable_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let before = self.unsynced_in(&repo)?.len();
        self.integrate(&repo)?;
        self.send(&repo, remote, &mut BTreeMap::new())
            .map_err(|failure| self.failed(remote, failure))?;
        self.set_problem(None);
        Ok(Synced { sent: before, received })
    }

    /// Only fetches the remote and puts the local records on top: a command about to push
    /// starts from what the other masters recorded. Not reaching the remote is no error (it
    /// is said by [`GitHistory::sync_problem`]).
    pub fn fetch_remote(&self) -> Result<(), HistoryError> {
        if self.remote.is_none() {
            return Ok(());
        }
        let repo = self.repository()?;
        let _lock = self.lock()?;
        self.before_record(&repo).map(|_| ())
    }

    /// The records on `main` that the remote does not have yet (as of the last fetch or
    /// push), newest first.
    pub fn unsynced(&self) -> Result<Vec<pacha_core::Entry>, HistoryError> {
        if self.remote.is_none() {
            return Ok(Vec::new());
        }
        let Some(repo) = self.existing_clone() else {
            return Ok(Vec::new());
        };
        let oids = self.unsynced_in(&repo)?;
        let mut entries = Vec::new();
        for oid in oids.iter().rev() {
            let commit = repo
                .find_commit(*oid)
                .map_err(|err| self.err("reading a commit", err))?;
            entries.extend(self.entry_of(&commit));
        }
        Ok(entries)
    }

    /// Part of a record, under the history's lock: fetch and integrate before it. `false`
    /// when the remote could not be reached (the record is then only local).
    pub(super) fn before_record(&self, repo: &Repository) -> Result<bool, HistoryError> {
        let Some(remote) = &self.remote else { return Ok(false) };
        let mut since = self
            .unreachable_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if since.is_some_and(|since| since.elapsed() < UNREACHABLE_FOR) {
            return Ok(false);
        }
        match self.fetch(repo, remote) {
            Ok(_) => {
                *since = None;
                self.integrate(repo)?;
                Ok(true)
            }
            Err(failure) => {
                *since = Some(Instant::now());
                self.set_problem(Some(describe(remote, failure)));
                Ok(false)
            }
        }
    }

    /// Part of a record, under the history's lock: push `main` with the new record `entry`;
    /// the record's revision after it was put on top of what others pushed meanwhile.
    pub(super) fn after_record(&self, repo: &Repository, revision: Oid) -> Result<Oid, HistoryError> {
        let Some(remote) = &self.remote else {
            return Ok(revision);
        };
        let mut moved = BTreeMap::new();
        match self.send(repo, remote, &mut moved) {
            Ok(()) => self.set_problem(None),
            Err(failure) => self.set_problem(Some(describe(remote, failure))),
        }
        let mut revision = revision;
        while let Some(next) = moved.get(&revision) {
            revision = *next;
        }
        Ok(revision)
    }

    /// Pushes; a rejected push is fetched, integrated and tried again. `moved` gains the old
    /// and new ids of the records put on top of the remote again.
    fn send(&self, repo: &Repository, remote: &Remote, moved: &mut BTreeMap<Oid, Oid>) -> Result<(), Failure> {
        for _ in 0..PUSH_TRIES {
            if self
                .unsynced_in(repo)
                .map_err(|err| Failure::Other(err.to_string()))?
                .is_empty()
            {
                return Ok(());
            }
            self.check_no_plaintext_secrets(repo)?;
            match self.push(repo, remote) {
                Ok(()) => return Ok(()),
                Err(Failure::Rejected) => {
                    self.fetch(repo, remote)?;
                    moved.extend(self.integrate(repo).map_err(|err| Failure::Other(err.to_string()))?);
                }
                Err(other) => return Err(other),
            }
        }
        Err(Failure::Other(format!(
            "the remote's branch kept moving: {PUSH_TRIES} pushes were rejected"
        )))
    }

    /// A plaintext secret never reaches a shared history: with no age recipients, records of
    /// secret-bearing files stay local.
    fn check_no_plaintext_secrets(&self, repo: &Repository) -> Result<(), Failure> {
        for oid in self.unsynced_in(repo).map_err(|err| Failure::Other(err.to_string()))? {
            let Some(node) = repo
                .find_commit(oid)
                .ok()
                .and_then(|commit| self.entry_of(&commit))
                .map(|entry| entry.node)
            else {
                continue;
            };
            let meta = repo
                .find_commit(oid)
                .and_then(|commit| commit.tree())
                .and_then(|tree| tree.get_path(&std::path::Path::new(&node).join(META_FILE)))
                .and_then(|item| repo.find_blob(item.id()))
                .ok()
                .and_then(|blob| yaml_serde::from_slice::<NodeMeta>(blob.content()).ok());
            if let Some(meta) = meta
                && let Some((path, _)) = meta.files.iter().find(|(_, file)| file.secret && !file.encrypted)
            {
                return Err(Failure::Other(format!(
                    "record {} holds {path} of {node}, which holds a secret, in plaintext: set age recipients in pacha.yaml so secrets are encrypted before the history is shared",
                    &oid.to_string()[..12],
                )));
            }
        }
        Ok(())
    }

    fn failed(&self, remote: &Remote, failure: Failure) -> HistoryError {
        let problem = describe(remote, failure);
        self.set_problem(Some(problem.clone()));
        self.err("sharing the history", problem)
    }

    /// The history's repository, created when there is none.
    fn repository(&self) -> Result<Repository, HistoryError> {
        if let Some(repo) = self.existing_clone() {
            return Ok(repo);
        }
        let mut slot = self.existing();
        if slot.is_none() {
            *slot = Some(self.create()?);
        }
        drop(slot);
        self.existing_clone()
            .ok_or_else(|| self.err("creating the history", "the repository vanished"))
    }

    fn existing_clone(&self) -> Option<Repository> {
        Repository::open_bare(&self.path).ok()
    }

    /// Fetches the remote's branch and node refs; how many records came that were not here.
    fn fetch(&self, repo: &Repository, remote: &Remote) -> Result<usize, Failure> {
        let before = repo.refname_to_id(REMOTE_MAIN).ok();
        let nodes = format!("+refs/pacha/nodes/*:{REMOTE_NODES}*");
        let fetch = |refspecs: &[&str]| {
            let mut args: Vec<OsString> = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
                .into_iter()
                .map(OsString::from)
                .collect();
            args.push(remote.url.clone().into());
            args.extend(refspecs.iter().map(OsString::from));
            self.git(remote, &args)
        };
        match fetch(&[&format!("+refs/heads/{}:{REMOTE_MAIN}", remote.branch), &nodes]) {
            Ok(_) => {}
            // An empty remote (or one without the branch yet): nothing to fetch.
            Err((_, stderr)) if stderr.contains("couldn't find remote ref") => {
                let _ = fetch(&[&nodes]);
                return Ok(0);
            }
            Err((_, stderr)) => return Err(Failure::Other(last_line(&stderr))),
        }
        let after = repo.refname_to_id(REMOTE_MAIN).ok();
        let received = match (before, after) {
            (_, None) => 0,
            (before, Some(after)) => {
                let mut walk = repo.revwalk().map_err(|err| Failure::Other(err.to_string()))?;
                walk.push(after).map_err(|err| Failure::Other(err.to_string()))?;
                if let Some(before) = before {
                    let _ = walk.hide(before);
                }
                if let Ok(local) = repo.refname_to_id(BRANCH) {
                    let _ = walk.hide(local);
                }
                walk.count()
            }
        };
        Ok(received)
    }

    /// Pushes `main` and the node refs, atomically; a push that would not fast-forward is
    /// [`Failure::Rejected`].
    fn push(&self, repo: &Repository, remote: &Remote) -> Result<(), Failure> {
        let result = self.git(
            remote,
            &[
                "push".into(),
                "--quiet".into(),
                "--atomic".into(),
                "--porcelain".into(),
                remote.url.clone().into(),
                format!("{BRANCH}:refs/heads/{}", remote.branch).into(),
                "refs/pacha/nodes/*:refs/pacha/nodes/*".into(),
            ],
        );
        match result {
            Ok(_) => {
                // What the remote holds now.
                let tip = repo
                    .refname_to_id(BRANCH)
                    .map_err(|err| Failure::Other(err.to_string()))?;
                repo.reference(REMOTE_MAIN, tip, true, "pacha: pushed")
                    .map_err(|err| Failure::Other(err.to_string()))?;
                for (name, oid) in self.node_refs(repo, "refs/pacha/nodes/") {
                    let _ = repo.reference(&format!("{REMOTE_NODES}{name}"), oid, true, "pacha: pushed");
                }
                Ok(())
            }
            // A ref the remote would not take (someone pushed first, or is pushing right now
            // and holds the ref's lock): fetched and tried again, a few times.
            Err((stdout, _)) if stdout.lines().any(|line| line.starts_with('!')) => Err(Failure::Rejected),
            Err((stdout, stderr)) => Err(Failure::Other(last_line(if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            }))),
        }
    }

    /// The refs under `prefix`, by the name after it.
    fn node_refs(&self, repo: &Repository, prefix: &str) -> Vec<(String, Oid)> {
        let Ok(references) = repo.references_glob(&format!("{prefix}*")) else {
            return Vec::new();
        };
        references
            .flatten()
            .filter_map(|reference| {
                let name = reference.name().ok()?.strip_prefix(prefix)?.to_owned();
                Some((name, reference.target()?))
            })
            .collect()
    }

    /// The commits on `main` the remote does not have, oldest first.
    fn unsynced_in(&self, repo: &Repository) -> Result<Vec<Oid>, HistoryError> {
        let Ok(tip) = repo.refname_to_id(BRANCH) else {
            return Ok(Vec::new());
        };
        let mut walk = repo.revwalk().map_err(|err| self.err("reading main", err))?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .map_err(|err| self.err("reading main", err))?;
        walk.push(tip).map_err(|err| self.err("reading main", err))?;
        if let Ok(remote) = repo.refname_to_id(REMOTE_MAIN) {
            walk.hide(remote).map_err(|err| self.err("reading main", err))?;
        }
        walk.collect::<Result<Vec<_>, _>>()
            .map_err(|err| self.err("reading main", err))
    }

    /// Puts the local records the remote does not have on top of the remote's branch (as
    /// fetched); the old and new ids of the records moved.
    fn integrate(&self, repo: &Repository) -> Result<BTreeMap<Oid, Oid>, HistoryError> {
        let mut moved = BTreeMap::new();
        let Ok(remote) = repo.refname_to_id(REMOTE_MAIN) else {
            return Ok(moved);
        };
        let local = repo.refname_to_id(BRANCH).ok();
        let remote_nodes = self.node_refs(repo, REMOTE_NODES);
        match local {
            Some(local) if local == remote => return Ok(moved),
            Some(local) if repo.graph_descendant_of(local, remote).unwrap_or(false) => return Ok(moved),
            None => {
                repo.reference(BRANCH, remote, true, "pacha: from the remote")
                    .map_err(|err| self.err("moving main", err))?;
            }
            Some(local) if repo.graph_descendant_of(remote, local).unwrap_or(false) => {
                repo.reference_matching(BRANCH, remote, true, local, "pacha: fast-forward to the remote")
                    .map_err(|err| self.err("moving main", err))?;
            }
            Some(local) => {
                let base = repo.merge_base(local, remote).ok();
                let mut walk = repo.revwalk().map_err(|err| self.err("reading main", err))?;
                walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
                    .map_err(|err| self.err("reading main", err))?;
                walk.push(local).map_err(|err| self.err("reading main", err))?;
                if let Some(base) = base {
                    walk.hide(base).map_err(|err| self.err("reading main", err))?;
                }
                let ours: Vec<Oid> = walk
                    .collect::<Result<_, _>>()
                    .map_err(|err| self.err("reading main", err))?;
                // Each node's latest record on the line being built.
                let mut latest: BTreeMap<String, Oid> = BTreeMap::new();
                for (hex, oid) in &remote_nodes {
                    if let Some(node) = node_of_hex(hex) {
                        latest.insert(node, *oid);
                    }
                }
                let mut tip = remote;
                for oid in ours {
                    let new = self.replay(repo, oid, tip, &mut latest, &moved)?;
                    moved.insert(oid, new);
                    tip = new;
                }
                repo.reference_matching(BRANCH, tip, true, local, "pacha: records put on top of the remote")
                    .map_err(|err| self.err("moving main", err))?;
            }
        }
        // Node refs: the remote's, unless a record moved on top of it is newer.
        let mut replayed: BTreeMap<String, Oid> = BTreeMap::new();
        for new in moved.values() {
            if let Some(entry) = repo.find_commit(*new).ok().and_then(|commit| self.entry_of(&commit)) {
                replayed.insert(entry.node, *new);
            }
        }
        for (hex, oid) in &remote_nodes {
            if let Some(node) = node_of_hex(hex)
                && !replayed.contains_key(&node)
            {
                repo.reference(&node_ref(&node), *oid, true, "pacha: from the remote")
                    .map_err(|err| self.err("moving a node's ref", err))?;
            }
        }
        for (node, oid) in &replayed {
            repo.reference(&node_ref(node), *oid, true, "pacha: put on top of the remote")
                .map_err(|err| self.err("moving a node's ref", err))?;
        }
        Ok(moved)
    }

    /// Writes `oid`'s record again on top of `base`: `base`'s tree with the record's node
    /// subtree, `Pacha-Previous` pointed at that node's latest record on the new line.
    fn replay(
        &self,
        repo: &Repository,
        oid: Oid,
        base: Oid,
        latest: &mut BTreeMap<String, Oid>,
        moved: &BTreeMap<Oid, Oid>,
    ) -> Result<Oid, HistoryError> {
        let failed = |err: git2::Error| self.err("putting a record on top of the remote", err);
        let commit = repo.find_commit(oid).map_err(failed)?;
        let base_commit = repo.find_commit(base).map_err(failed)?;
        let message = commit.message().unwrap_or_default().to_owned();
        let Some(entry) = self.entry_of(&commit) else {
            // Not a record (someone's own commit on main): carried over as it is.
            let tree = commit.tree().map_err(failed)?;
            return repo
                .commit(
                    None,
                    &commit.author(),
                    &commit.committer(),
                    &message,
                    &tree,
                    &[&base_commit],
                )
                .map_err(failed);
        };
        let node = entry.node;
        let tree = commit.tree().map_err(failed)?;
        let mut builder = repo
            .treebuilder(Some(&base_commit.tree().map_err(failed)?))
            .map_err(failed)?;
        match tree.get_name(&node) {
            Some(subtree) => {
                builder
                    .insert(&node, subtree.id(), i32::from(FileMode::Tree))
                    .map_err(failed)?;
            }
            None => {
                let _ = builder.remove(&node);
            }
        }
        let new_tree = repo.find_tree(builder.write().map_err(failed)?).map_err(failed)?;
        let original_previous = super::trailers(&message)
            .get("Previous")
            .and_then(|text| Oid::from_str(text).ok());
        let previous = latest
            .get(&node)
            .copied()
            .or_else(|| original_previous.map(|previous| moved.get(&previous).copied().unwrap_or(previous)));
        let message = with_previous(&message, previous);
        let new = repo
            .commit(
                None,
                &commit.author(),
                &commit.committer(),
                &message,
                &new_tree,
                &[&base_commit],
            )
            .map_err(failed)?;
        latest.insert(node, new);
        Ok(new)
    }

    /// Runs `git --git-dir=HISTORY ARGS` with the remote's timeout: stdout on success,
    /// stdout and stderr on failure.
    fn git(&self, remote: &Remote, args: &[OsString]) -> Result<String, (String, String)> {
        let mut command = Command::new("git");
        command
            .arg("--git-dir")
            .arg(&self.path)
            // Never a transport that runs commands, whatever the user's config allows.
            .args(["-c", "protocol.ext.allow=never"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
            command.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=10");
        }
        let mut child = command
            .spawn()
            .map_err(|err| (String::new(), format!("running git: {err}")))?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(stdout) = &mut stdout {
                let _ = stdout.read_to_string(&mut text);
            }
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(stderr) = &mut stderr {
                let _ = stderr.read_to_string(&mut text);
            }
            text
        });
        let deadline = Instant::now() + remote.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        match status {
            Some(status) if status.success() => Ok(stdout),
            Some(_) => Err((stdout, stderr)),
            None => Err((
                stdout,
                format!("git gave no answer within {} s", remote.timeout.as_secs()),
            )),
        }
    }
}

/// A node's name from its ref's hex.
fn node_of_hex(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|at| hex.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// `message` with its `Pacha-Previous` trailer set to `previous` (or dropped).
fn with_previous(message: &str, previous: Option<Oid>) -> String {
    let mut lines: Vec<String> = message
        .lines()
        .filter(|line| !line.starts_with("Pacha-Previous: "))
        .map(str::to_owned)
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if let Some(previous) = previous {
        lines.push(format!("Pacha-Previous: {previous}"));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("git failed without saying why")
        .to_owned()
}

/// Why talking to `remote` failed, with no password of its URL (git may repeat the URL).
fn describe(remote: &Remote, failure: Failure) -> String {
    let shown = remote.shown();
    match failure {
        Failure::Rejected => format!("{shown} kept rejecting the push"),
        Failure::Other(why) => format!("{shown}: {}", why.replace(&remote.url, &shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_remote_url_is_never_shown() {
        assert_eq!(
            redact_url("https://ada:hunter2@git.example.com/infra/h.git"),
            "https://ada:***@git.example.com/infra/h.git"
        );
        assert_eq!(
            redact_url("https://ada@git.example.com/h.git"),
            "https://ada@git.example.com/h.git"
        );
        assert_eq!(
            redact_url("ssh://git@git.example.com/h.git"),
            "ssh://git@git.example.com/h.git"
        );
        assert_eq!(redact_url("git@host:infra/h.git"), "git@host:infra/h.git");
        let remote = Remote::new("https://ada:hunter2@127.0.0.1:1/h.git", "main");
        let said = describe(
            &remote,
            Failure::Other("fatal: unable to access 'https://ada:hunter2@127.0.0.1:1/h.git/'".to_owned()),
        );
        assert!(!said.contains("hunter2"), "{said}");
    }

    #[test]
    fn node_names_come_back_from_their_refs() {
        let hex: String = "web 1".bytes().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(node_of_hex(&hex).as_deref(), Some("web 1"));
        assert_eq!(node_of_hex("zz"), None);
    }

    #[test]
    fn the_previous_trailer_is_replaced_or_dropped() {
        let old = Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let new = Oid::from_str("2222222222222222222222222222222222222222").unwrap();
        let message = format!("push web1\n\n/etc/motd\n\nPacha-Node: web1\nPacha-Previous: {old}\n");
        assert_eq!(
            with_previous(&message, Some(new)),
            format!("push web1\n\n/etc/motd\n\nPacha-Node: web1\nPacha-Previous: {new}\n")
        );
        assert_eq!(
            with_previous(&message, None),
            "push web1\n\n/etc/motd\n\nPacha-Node: web1\n"
        );
    }
}
