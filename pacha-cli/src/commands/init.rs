//! `pacha init [DIR]`: a working master to start from (the bundled example, `examples/demo`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::{Context, Status};
use crate::output::Output;

macro_rules! scaffold {
    ($($path:literal $mode:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../../examples/demo/", $path)) as &[u8], $mode)),*]
    };
}

/// Every file of the example master: path, contents, mode.
pub(super) const SCAFFOLD: &[(&str, &[u8], u32)] = scaffold![
    ".gitignore" 0o644,
    "pacha.yaml" 0o644,
    "nodes/web1/web1.conf" 0o644,
    "nodes/web2/web2.conf" 0o644,
    "nodes/webservers/webservers.conf" 0o644,
    "scripts/pre/check/10-announce.sh" 0o755,
    "scripts/post/reload/10-reload-nginx.sh" 0o755,
    "templates/motd/app.yaml" 0o644,
    "templates/motd/default/motd.hbs" 0o644,
    "templates/nginx/app.yaml" 0o644,
    "templates/nginx/default/nginx.conf.hbs" 0o644,
    "templates/nginx/default/sites/site.conf.hbs" 0o644,
    "templates/nginx/production/ssl/site.crt" 0o644,
    "templates/nginx/production/ssl/site.key" 0o600,
];

pub(super) fn run(context: &Context<'_>, out: &mut Output, dir: Option<&Path>) -> anyhow::Result<Status> {
    let dir = context.cwd.join(dir.unwrap_or(Path::new(".")));
    if dir.join(pacha_core::SETTINGS_FILE).exists() {
        bail!("{} is already a pacha master (it has a pacha.yaml)", dir.display());
    }
    for (path, contents, mode) in SCAFFOLD {
        let target = dir.join(path);
        if target.exists() {
            bail!(
                "{} already exists; pacha init does not overwrite files",
                target.display()
            );
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&target, contents).with_context(|| format!("writing {}", target.display()))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
            .with_context(|| format!("setting the mode of {}", target.display()))?;
    }
    let git = versioned(&dir);
    if out.json {
        out.json_document(&serde_json::json!({
            "master": dir,
            "files": SCAFFOLD.iter().map(|(path, _, _)| *path).collect::<Vec<_>>(),
            "git": match &git {
                Versioned::Inside => serde_json::json!({"repository": "existing", "commit": null}),
                Versioned::Made(commit) => serde_json::json!({"repository": "new", "commit": commit}),
                Versioned::Failed(_) => serde_json::json!({"repository": null, "commit": null}),
            },
        }))?;
    } else {
        out.line(format!("Created a pacha master in {}", dir.display()))?;
        match &git {
            Versioned::Inside => out.line("  git:       inside an existing repository; commit the new files there")?,
            Versioned::Made(Some(commit)) => out.line(format!(
                "  git:       a new repository, first commit {} (every record will name the master's commit)",
                &commit[..12]
            ))?,
            Versioned::Made(None) => out.line(
                "  git:       a new repository, files staged but not committed (set git's user.name and user.email, then git commit)",
            )?,
            Versioned::Failed(why) => out.line(format!("  git:       not made a repository ({why})"))?,
        }
        out.line("  nodes:     web1, web2 (local nodes under nodes-root/), meta node webservers")?;
        out.line("  templates: motd, nginx (states default and production)")?;
        out.line("Try:")?;
        out.line(format!("  cd {}", dir.display()))?;
        out.line("  pacha render webservers production")?;
        out.line("  pacha push webservers production")?;
    }
    Ok(Status::Success)
}

/// What `init` did about git.
enum Versioned {
    /// The master is inside a repository already: left to it.
    Inside,
    /// A new repository, with its first commit when git knows who commits.
    Made(Option<String>),
    /// No repository could be made (why).
    Failed(String),
}

/// Makes `dir` a git repository with the new files committed, unless it is inside one.
fn versioned(dir: &Path) -> Versioned {
    if git2::Repository::discover(dir).is_ok() {
        return Versioned::Inside;
    }
    let made = (|| -> Result<Option<String>, git2::Error> {
        let repo = git2::Repository::init(dir)?;
        let mut index = repo.index()?;
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
        index.write()?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let Ok(signature) = repo.signature() else {
            return Ok(None);
        };
        let commit = repo.commit(Some("HEAD"), &signature, &signature, "A new pacha master", &tree, &[])?;
        Ok(Some(commit.to_string()))
    })();
    match made {
        Ok(commit) => Versioned::Made(commit),
        Err(err) => Versioned::Failed(err.message().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The scaffold must list every file of the bundled example, so the two never drift.
    #[test]
    fn scaffold_is_the_whole_example() {
        let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
        let mut on_disk = Vec::new();
        let mut stack = vec![example.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(&example).unwrap().to_str().unwrap().to_owned();
                if relative == "hosts" || relative == "nodes-root" {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else {
                    on_disk.push(relative);
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = SCAFFOLD.iter().map(|(path, _, _)| (*path).to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }
}
