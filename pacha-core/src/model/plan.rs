//! The plan of one node in one state: every file with its destination, owner, group, mode and
//! content, and the scripts to run. Rendering makes plans; push, diff and history use them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::hash::{ContentHash, Damaged};
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::target::Target;

/// One file a node should have. Its `Debug` shows the size and hash of the contents, never
/// the contents (a secret file's would land in whatever log printed it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Where the file goes, as the node sees it (the node's `root` comes in front).
    pub destination: NodePath,
    /// The app the file belongs to.
    pub app: String,
    /// The master file it comes from, relative to the master.
    pub source: String,
    /// The owner to set; `None` leaves the owner the connecting user gets.
    pub owner: Option<String>,
    /// The group to set; `None` leaves the connecting user's.
    pub group: Option<String>,
    /// Its permission bits.
    pub mode: Mode,
    /// The mode of folders pacha has to create for it.
    pub dir_mode: Mode,
    #[serde(with = "crate::model::bytes")]
    /// Its contents.
    pub content: Arc<[u8]>,
    /// The hash of `content`.
    pub sha256: ContentHash,
    /// Whether its rendering read a secret (directly or through any helper or partial): its
    /// contents are never shown, old or new, unless the person asks (`--show-secrets`).
    #[serde(default)]
    pub secret: bool,
    /// A command run on the node against the staged file (`%s`: its quoted path) before it
    /// replaces the live one; if it fails, nothing of the node is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
}

/// A symbolic link a node should have (`links:` in `app.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedLink {
    /// Where the link is, as the node sees it.
    pub path: NodePath,
    /// What it points at, written as it is (absolute or relative).
    pub target: String,
    /// The app it belongs to.
    pub app: String,
}

/// A folder a node should have, with its owner and mode (`dirs:` in `app.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedDir {
    /// The folder, as the node sees it.
    pub path: NodePath,
    /// The owner to set; `None` leaves the connecting user's.
    pub owner: Option<String>,
    /// The group to set; `None` leaves the connecting user's.
    pub group: Option<String>,
    /// Its permission bits.
    pub mode: Mode,
    /// The app it belongs to.
    pub app: String,
}

/// When a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before files are placed; a failure stops the node before anything is placed.
    Pre,
    /// After files are placed, with the changed paths in the environment.
    Post,
    /// After the post scripts: health checks; a failure puts the node back as it was.
    Health,
}

impl Stage {
    /// `pre`, `post` or `health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pre => "pre",
            Stage::Post => "post",
            Stage::Health => "health",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One script a node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedScript {
    /// Pre or post.
    pub stage: Stage,
    /// Its phase folder.
    pub phase: String,
    /// The file name inside the phase folder.
    pub name: String,
    /// The master file, relative to the master.
    pub source: String,
    #[serde(with = "crate::model::bytes")]
    /// Its contents.
    pub content: Arc<[u8]>,
    /// The hash of `content`.
    pub sha256: ContentHash,
    /// For a handler (a post phase an `app.yaml` names in `on_change`): the apps whose change
    /// runs it. Empty for the node's own scripts, which run whenever anything changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handles: Vec<HandledApp>,
}

/// An app whose change runs a handler: its name and `dest` (a removed file under `dest`
/// counts as its change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandledApp {
    /// The app.
    pub app: String,
    /// Its `dest`.
    pub dest: NodePath,
}

impl PlannedScript {
    /// `pre/<phase>/<name>`: unique within a plan.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.stage, self.phase, self.name)
    }
}

/// Everything one node needs in one state. Its `Debug` counts the secret values instead of
/// showing them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The node.
    pub node: String,
    /// The state rendered.
    pub state: String,
    /// How to reach the node.
    pub target: Target,
    /// Sorted by destination, each destination once.
    pub files: Vec<PlannedFile>,
    /// Pre scripts then post scripts, each in phase order then name order.
    pub scripts: Vec<PlannedScript>,
    /// Values that must never be printed (secrets rendered into files).
    pub secrets: Vec<String>,
    /// Paths that must not exist on the node (`absent:` of `app.yaml` and the node file), as
    /// the node sees them; a push removes them when present (a folder only when empty).
    #[serde(default)]
    pub absent: Vec<NodePath>,
    /// Managed symbolic links, sorted by path.
    #[serde(default)]
    pub links: Vec<PlannedLink>,
    /// Managed folders, sorted by path.
    #[serde(default)]
    pub dirs: Vec<PlannedDir>,
    /// Seconds each script may run before its whole process group is killed (`None`: no limit).
    #[serde(default)]
    pub script_timeout: Option<u64>,
    /// `on_failure: keep`: a failing post script or health check leaves the new files in place
    /// (the post scripts are due on the next push) instead of putting the node back.
    #[serde(default)]
    pub keep_on_failure: bool,
    /// `health: {ssh: true, timeout}`: seconds the node waits for pacha's confirmation, given
    /// once a new SSH connection reached it after the change; without it, it rolls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_ssh: Option<u64>,
    /// A saved plan's expectation: what the node held when the plan was made. A push of this
    /// plan is refused, under the node's lock, unless the node still holds exactly that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
}

/// What a saved plan saw on its node (`pacha plan -o`): the plan's id and, for every path it
/// places, links, manages or removes, what was there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// The saved plan's id (recorded with the push).
    pub id: String,
    /// Each path and what was there.
    pub seen: Vec<Seen>,
}

/// What one path held: its kind (`missing`, `file`, `link`, `dir`, `other`, `unreadable`)
/// and, as they apply, the content hash, owner, group, mode and link target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The path on the node.
    pub path: NodePath,
    /// What is there.
    pub kind: String,
    /// A file's content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A file's or folder's owner (name, else uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A file's or folder's group (name, else gid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A file's or folder's mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A link's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl fmt::Debug for PlannedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedFile")
            .field("destination", &self.destination)
            .field("app", &self.app)
            .field("source", &self.source)
            .field("owner", &self.owner)
            .field("group", &self.group)
            .field("mode", &self.mode)
            .field("dir_mode", &self.dir_mode)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("sha256", &self.sha256)
            .field("secret", &self.secret)
            .finish()
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("node", &self.node)
            .field("state", &self.state)
            .field("target", &self.target)
            .field("files", &self.files)
            .field("scripts", &self.scripts)
            .field("secrets", &format_args!("<{} redacted>", self.secrets.len()))
            .field("absent", &self.absent)
            .field("links", &self.links)
            .field("dirs", &self.dirs)
            .field("script_timeout", &self.script_timeout)
            .finish()
    }
}

impl Plan {
    /// Checks that every content matches its hash (a plan received over the wire).
    pub fn verify(&self) -> Result<(), Damaged> {
        for file in &self.files {
            Damaged::check(&file.content, file.sha256, || file.destination.to_string())?;
        }
        for script in &self.scripts {
            Damaged::check(&script.content, script.sha256, || format!("script {}", script.id()))?;
        }
        Ok(())
    }

    /// `text` with every secret value of this plan replaced by `<redacted>`.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// Whether the handler `script` runs when `changed` paths changed or were removed: one of
    /// them is a file, link or folder of an app it handles, or (not in the plan: removed) lies
    /// under such an app's `dest`. The node's own scripts always run.
    pub fn handler_runs(&self, script: &PlannedScript, changed: &[NodePath]) -> bool {
        if script.handles.is_empty() {
            return true;
        }
        changed.iter().any(|path| {
            let app = self
                .files
                .iter()
                .find(|file| &file.destination == path)
                .map(|file| &file.app)
                .or_else(|| self.links.iter().find(|link| &link.path == path).map(|link| &link.app))
                .or_else(|| self.dirs.iter().find(|dir| &dir.path == path).map(|dir| &dir.app));
            script.handles.iter().any(|handled| match app {
                Some(app) => *app == handled.app,
                None => path.starts_with(&handled.dest),
            })
        })
    }

    /// The scripts of `stage`, in run order.
    pub fn scripts(&self, stage: Stage) -> impl Iterator<Item = &PlannedScript> {
        self.scripts.iter().filter(move |script| script.stage == stage)
    }
}

/// `text` with every value of `secrets` replaced by `<redacted>` (longest first, so a secret
/// that contains another is replaced whole).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|secret| !secret.is_empty()).collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "<redacted>")
    })
}
