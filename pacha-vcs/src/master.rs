//! The revision of the master a record was rendered from: when the master folder is in a git
//! repository, its `HEAD` commit and the master files that differ from it (changed, added,
//! removed, untracked; ignored ones do not count).

use std::path::{Path, PathBuf};

use git2::{Repository, StatusOptions};

/// The master's git revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterRevision {
    /// `HEAD`'s commit id; `None` before the first commit.
    pub commit: Option<String>,
    /// Whether the master had uncommitted changes.
    pub dirty: bool,
    /// The master files (relative to the master folder) that differ from `HEAD`, sorted
    /// (empty when not known: a revision read back from what [`MasterRevision::describe`] said).
    pub changed: Vec<String>,
}

impl MasterRevision {
    /// The revision of the master in `dir`, leaving out files under `exclude` (the history,
    /// when it lives inside the master); `None` when `dir` is in no git repository.
    pub fn of(dir: &Path, exclude: &[PathBuf]) -> Result<Option<MasterRevision>, git2::Error> {
        let repo = match Repository::discover(dir) {
            Ok(repo) => repo,
            Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
            return Ok(None);
        };
        let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let (workdir, dir) = (canonical(&workdir), canonical(dir));
        let exclude: Vec<PathBuf> = exclude.iter().map(|path| canonical(path)).collect();
        let commit = match repo.head() {
            Ok(head) => Some(head.peel_to_commit()?.id().to_string()),
            Err(err) if matches!(err.code(), git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound) => None,
            Err(err) => return Err(err),
        };
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = repo.statuses(Some(&mut options))?;
        let mut changed: Vec<String> = statuses
            .iter()
            .filter(|entry| entry.status() != git2::Status::CURRENT)
            .filter_map(|entry| entry.path().ok().map(|path| workdir.join(path)))
            .filter(|path| !exclude.iter().any(|excluded| path.starts_with(excluded)))
            .filter_map(|path| path.strip_prefix(&dir).ok().map(|path| path.display().to_string()))
            .collect();
        changed.sort();
        changed.dedup();
        let dirty = !changed.is_empty() || commit.is_none();
        Ok(Some(MasterRevision { commit, dirty, changed }))
    }

    /// A revision as [`MasterRevision::describe`] said it (a saved plan keeps it so).
    pub fn described(text: &str) -> MasterRevision {
        let (commit, dirty) = match text.strip_suffix("-dirty") {
            Some(commit) => (commit, true),
            None => (text, false),
        };
        MasterRevision {
            commit: (commit != "uncommitted").then(|| commit.to_owned()),
            dirty,
            changed: Vec::new(),
        }
    }

    /// As the `Pacha-Master` trailer says it: the commit, `-dirty` when there are changes.
    pub fn describe(&self) -> String {
        let commit = self.commit.as_deref().unwrap_or("uncommitted");
        if self.dirty {
            format!("{commit}-dirty")
        } else {
            commit.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@e", "-C"])
            .arg(dir)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_clean_master_is_its_commit_and_a_dirty_one_names_its_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(MasterRevision::of(dir.path(), &[]).unwrap(), None, "not a repository");
        let master = dir.path().join("master");
        std::fs::create_dir_all(master.join("nodes")).unwrap();
        std::fs::write(dir.path().join("README"), "outside the master\n").unwrap();
        std::fs::write(master.join("pacha.yaml"), "{}\n").unwrap();
        std::fs::write(master.join(".gitignore"), "secret.key\n").unwrap();
        git(dir.path(), &["init", "-q"]);
        let unborn = MasterRevision::of(&master, &[]).unwrap().unwrap();
        assert_eq!(unborn.describe(), "uncommitted-dirty");
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-q", "-m", "first"]);
        let clean = MasterRevision::of(&master, &[]).unwrap().unwrap();
        assert!(!clean.dirty, "{clean:?}");
        assert_eq!(clean.describe().len(), 40);

        std::fs::write(master.join("pacha.yaml"), "jobs: 2\n").unwrap();
        std::fs::write(master.join("nodes/web1.conf"), "host: web1\n").unwrap();
        std::fs::write(master.join("secret.key"), "ignored\n").unwrap();
        std::fs::create_dir_all(master.join("hosts")).unwrap();
        std::fs::write(master.join("hosts/HEAD"), "the history\n").unwrap();
        std::fs::write(dir.path().join("README"), "changed outside the master\n").unwrap();
        let dirty = MasterRevision::of(&master, &[master.join("hosts")]).unwrap().unwrap();
        assert_eq!(dirty.changed, ["nodes/web1.conf", "pacha.yaml"]);
        assert_eq!(dirty.describe(), format!("{}-dirty", clean.commit.clone().unwrap()));
        let read_back = MasterRevision::described(&dirty.describe());
        assert_eq!((read_back.commit, read_back.dirty), (clean.commit, true));
        assert_eq!(MasterRevision::described("uncommitted-dirty").commit, None);
    }
}
