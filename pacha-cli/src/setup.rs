//! Wiring the real implementations in: the master, the renderer, the OpenSSH connector, the git
//! history, and the engine over them. Everything here reads the process's world (the
//! environment, the user's git config, the machine's name); the libraries never do.

use std::path::PathBuf;

use anyhow::Context as _;
use pacha_core::{Engine, Master};
use pacha_render::Renderer;
use pacha_transport::SshConnector;
use pacha_vcs::{Author, GitHistory, MasterRevision, Remote};

/// A master with its connector and history, from which an [`Engine`] is made per command.
pub(crate) struct Parts {
    pub master: Master,
    pub connector: SshConnector,
    pub history: GitHistory,
    /// The master's git revision, for commands that render and record.
    pub revision: Option<MasterRevision>,
}

impl Parts {
    /// Opens `master`'s history (created on the first record) and a connector.
    pub(crate) fn new(master: Master) -> anyhow::Result<Parts> {
        let mut history = GitHistory::open(&master.history_dir(), author())?.with_age(master.age().clone());
        if let Some((url, branch)) = master.history_remote() {
            history = history.with_remote(Remote::new(url, branch));
        }
        Ok(Parts {
            master,
            connector: connector()?,
            history,
            revision: None,
        })
    }

    /// [`Parts::new`] for a command that records: each record carries the master's git
    /// revision as it is now, before anything is rendered; with `require_clean_master`, a
    /// master with uncommitted changes (or in no git repository) is refused, naming them.
    pub(crate) fn recording(master: Master, refuse_dirty: bool) -> anyhow::Result<Parts> {
        let revision = MasterRevision::of(master.dir(), &[master.history_dir()])
            .with_context(|| format!("reading the git status of the master {}", master.dir().display()))?;
        if refuse_dirty && master.settings().require_clean_master {
            match &revision {
                None => return Err(DirtyMaster(format!("{} is in no git repository", master.dir().display())).into()),
                Some(revision) if revision.dirty => {
                    let files = if revision.changed.is_empty() {
                        "it has no commit yet".to_owned()
                    } else {
                        let shown: Vec<&str> = revision.changed.iter().take(20).map(String::as_str).collect();
                        let more = revision.changed.len() - shown.len();
                        let more = if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        };
                        format!("uncommitted: {}{more}", shown.join(", "))
                    };
                    return Err(DirtyMaster(format!("the master has uncommitted changes ({files})")).into());
                }
                Some(_) => {}
            }
        }
        check_shared_secrets(&master)?;
        let mut parts = Parts::new(master)?;
        parts.history.set_master(revision.clone());
        parts.revision = revision;
        // Start from what the other masters recorded (the removals a push makes depend on it).
        parts.history.fetch_remote()?;
        Ok(parts)
    }

    /// [`Parts::recording`] for `pacha serve`: a pull that changes nothing records nothing,
    /// so the master's git status is read only when a record is made.
    pub(crate) fn serving(master: Master) -> anyhow::Result<Parts> {
        check_shared_secrets(&master)?;
        let (dir, history) = (master.dir().to_path_buf(), master.history_dir());
        let mut parts = Parts::new(master)?;
        parts.history.set_master_at_first_record(&dir, vec![history]);
        parts.history.fetch_remote()?;
        Ok(parts)
    }

    /// Says on stderr when records stayed local because the shared history's remote could
    /// not be reached (the command itself succeeded: the nodes were changed and recorded).
    fn note_unsynced(&self) {
        if let Some(problem) = self.history.sync_problem() {
            let count = self.history.unsynced().map_or(0, |entries| entries.len());
            #[expect(clippy::print_stderr, reason = "a note beside the command's own output")]
            {
                eprintln!(
                    "note: {count} record{} not yet in the shared history ({problem}); `pacha history sync` sends {}",
                    if count == 1 { "" } else { "s" },
                    if count == 1 { "it" } else { "them" }
                );
            }
        }
    }

    /// Runs `work` with an engine over these parts and a renderer of the master.
    pub(crate) fn with_engine<R>(&self, work: impl FnOnce(&Engine<'_>) -> R) -> R {
        let renderer = Renderer::new(&self.master);
        let engine = Engine::new(&self.master, &renderer, &self.connector, &self.history);
        work(&engine)
    }
}

/// A shared history would carry plaintext secrets without age recipients: refused before
/// any node is touched.
fn check_shared_secrets(master: &Master) -> anyhow::Result<()> {
    if master.history_remote().is_some() && !master.age().can_encrypt() && master.declares_secrets() {
        return Err(pacha_core::ConfigError::Invalid {
            at: pacha_core::Location::file(pacha_core::SETTINGS_FILE),
            message: "history: a shared history (remote) with secrets needs age recipients, so that secret-bearing files are encrypted before they leave this machine".to_owned(),
        }
        .into());
    }
    Ok(())
}

impl Drop for Parts {
    /// Every command that recorded says so when its records stayed local.
    fn drop(&mut self) {
        self.note_unsynced();
    }
}

/// `require_clean_master: true` and a master with uncommitted changes: what they are.
#[derive(Debug, thiserror::Error)]
#[error("require_clean_master: {0}; commit them (or set require_clean_master: false) first")]
pub(crate) struct DirtyMaster(pub String);

/// Opens the master in `dir`, decrypting with `PACHA_AGE_IDENTITY` when it is set (instead of
/// the identity `pacha.yaml` names).
pub(crate) fn open_master(dir: &std::path::Path) -> anyhow::Result<Master> {
    let mut master = Master::open(dir)?;
    if let Some(identity) = std::env::var_os("PACHA_AGE_IDENTITY").filter(|value| !value.is_empty()) {
        master.set_age_identity(std::path::Path::new(&identity));
    }
    Ok(master)
}

/// The private folder where SSH master connections are kept between runs: short, because
/// socket paths are limited to 108 bytes.
pub(crate) fn control_dir() -> PathBuf {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(runtime);
        if dir.is_dir() {
            return dir.join("pacha");
        }
    }
    let uid = std::fs::metadata("/proc/self").map_or(0, |meta| std::os::unix::fs::MetadataExt::uid(&meta));
    PathBuf::from(format!("/tmp/pacha-{uid}"))
}

/// The OpenSSH connector, its masters kept in [`control_dir`].
pub(crate) fn connector() -> anyhow::Result<SshConnector> {
    let dir = control_dir();
    SshConnector::new(&dir).with_context(|| format!("preparing the SSH control folder {}", dir.display()))
}

/// Who is pushing, as a busy node tells a second pacha.
pub(crate) fn holder(command: &str) -> String {
    let (user, host) = user_and_host();
    format!("pacha {command} by {user}@{host} (pid {})", std::process::id())
}

/// This machine's name, as a node tells its master who it is.
pub(crate) fn host_name() -> String {
    user_and_host().1
}

/// The user running pacha and this machine's name.
fn user_and_host() -> (String, String) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "pacha".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_owned(), |name| name.trim().to_owned());
    (user, host)
}

/// The person running pacha, for the history's commits: `user.name` and `user.email` from
/// their git configuration, else `user@host`.
pub(crate) fn author() -> Author {
    from_git_config().unwrap_or_else(|| {
        let (user, host) = user_and_host();
        Author::new(user.clone(), format!("{user}@{host}"))
    })
}

fn from_git_config() -> Option<Author> {
    let config = git2::Config::open_default().ok()?;
    let name = config.get_string("user.name").ok()?;
    let email = config.get_string("user.email").ok()?;
    (!name.is_empty() && !email.is_empty()).then(|| Author::new(name, email))
}
