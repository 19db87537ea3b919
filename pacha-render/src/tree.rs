//! The file set of an app in a state: `templates/<app>/default` overlaid by
//! `templates/<app>/<state>`, file by file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::RenderError;

/// The suffix of files rendered with Handlebars.
pub const TEMPLATE_SUFFIX: &str = ".hbs";

/// One file of a template tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeFile {
    /// Where to read it (through any symlink, which was checked to stay in its tree).
    pub path: PathBuf,
    /// The master file as the user sees it: `templates/<app>/<state>/<relative>`.
    pub source: String,
    /// Whether it is a Handlebars template.
    pub is_template: bool,
}

/// The path of a tree file relative to its app's `dest`: `.hbs` dropped.
pub(crate) fn destination_name(relative: &str) -> (&str, bool) {
    match relative.strip_suffix(TEMPLATE_SUFFIX) {
        Some(stripped) if !stripped.is_empty() && !stripped.ends_with('/') => (stripped, true),
        _ => (relative, false),
    }
}

/// The files of one tree keyed by their destination name (relative to `dest`).
pub(crate) fn walk_tree(dir: &Path, shown: &str) -> Result<BTreeMap<String, TreeFile>, RenderError> {
    let root = dir.canonicalize().map_err(|err| RenderError::io(shown, err))?;
    let mut files: BTreeMap<String, TreeFile> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name() {
        let entry = entry.map_err(|err| {
            let path = err
                .path()
                .map_or_else(|| shown.to_owned(), |p| display_in(dir, shown, p));
            let message = match err.loop_ancestor() {
                Some(_) => "symlink loop".to_owned(),
                None => err.io_error().map_or_else(|| err.to_string(), ToString::to_string),
            };
            RenderError::io(path, std::io::Error::other(message))
        })?;
        let relative_path = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        if entry.depth() == 0 {
            continue;
        }
        let Some(relative) = relative_path.to_str() else {
            return Err(RenderError::NotUtf8Name {
                source_file: format!("{shown}/{}", relative_path.to_string_lossy()),
            });
        };
        let source = format!("{shown}/{relative}");
        if entry.path_is_symlink() || entry.file_type().is_file() {
            let real = entry
                .path()
                .canonicalize()
                .map_err(|err| RenderError::io(&source, err))?;
            if !real.starts_with(&root) {
                return Err(RenderError::SymlinkEscapes {
                    source_file: source,
                    tree: shown.to_owned(),
                    target: real.display().to_string(),
                });
            }
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let (name, is_template) = destination_name(relative);
        let file = TreeFile {
            path: entry.path().to_path_buf(),
            source,
            is_template,
        };
        if let Some(other) = files.insert(name.to_owned(), file) {
            return Err(RenderError::Conflict {
                at: pacha_core::Location::file(&files[name].source),
                message: format!(
                    "{name} would come from both {} and {}",
                    other.source, files[name].source
                ),
            });
        }
    }
    Ok(files)
}

fn display_in(dir: &Path, shown: &str, path: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(relative) => format!("{shown}/{}", relative.display()),
        Err(_) => path.display().to_string(),
    }
}

/// The state's files over the default's: same destination name, the state's file wins.
pub(crate) fn overlay<T>(default: BTreeMap<String, T>, state: BTreeMap<String, T>) -> BTreeMap<String, T> {
    let mut merged = default;
    merged.extend(state);
    merged
}

/// The file set of `app` in `state` under `templates`, or `None` when the app has neither
/// folder.
pub(crate) fn app_files(
    templates: &Path,
    app: &str,
    state: &str,
) -> Result<Option<BTreeMap<String, TreeFile>>, RenderError> {
    let default_dir = templates.join(app).join("default");
    let state_dir = templates.join(app).join(state);
    let default = if default_dir.is_dir() {
        Some(walk_tree(&default_dir, &format!("templates/{app}/default"))?)
    } else {
        None
    };
    let overlaid = if state != "default" && state_dir.is_dir() {
        Some(walk_tree(&state_dir, &format!("templates/{app}/{state}"))?)
    } else {
        None
    };
    Ok(match (default, overlaid) {
        (None, None) => None,
        (Some(default), None) => Some(default),
        (None, Some(overlaid)) => Some(overlaid),
        (Some(default), Some(overlaid)) => Some(overlay(default, overlaid)),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use proptest::prelude::*;

    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn state_overlays_default_and_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        write(&t.join("apache/default/httpd.conf"), "d");
        write(&t.join("apache/default/ports.conf.hbs"), "d");
        write(&t.join("apache/production/ports.conf"), "p");
        write(&t.join("apache/production/extra/x.conf"), "p");
        let files = app_files(t, "apache", "production").unwrap().unwrap();
        let sources: Vec<(&str, &str)> = files.iter().map(|(k, v)| (k.as_str(), v.source.as_str())).collect();
        assert_eq!(
            sources,
            [
                ("extra/x.conf", "templates/apache/production/extra/x.conf"),
                ("httpd.conf", "templates/apache/default/httpd.conf"),
                ("ports.conf", "templates/apache/production/ports.conf"),
            ]
        );
        let fallback = app_files(t, "apache", "staging").unwrap().unwrap();
        assert!(fallback["ports.conf"].is_template);
        assert_eq!(app_files(t, "nginx", "production").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_must_stay_in_their_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        write(&t.join("app/default/real.conf"), "x");
        write(&t.join("outside/secret"), "s");
        std::os::unix::fs::symlink("real.conf", t.join("app/default/alias.conf")).unwrap();
        let files = app_files(t, "app", "default").unwrap().unwrap();
        assert_eq!(files.len(), 2);
        std::os::unix::fs::symlink("../../outside/secret", t.join("app/default/leak")).unwrap();
        let err = app_files(t, "app", "default").unwrap_err();
        assert!(matches!(err, RenderError::SymlinkEscapes { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("templates/app/default/leak: symlink points outside templates/app/default")
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_state_folder_itself_may_be_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        write(&t.join("shared/x.conf"), "x");
        fs::create_dir_all(t.join("app")).unwrap();
        std::os::unix::fs::symlink("../shared", t.join("app/default")).unwrap();
        let files = app_files(t, "app", "default").unwrap().unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["x.conf"]);
    }

    #[test]
    fn template_and_plain_file_with_one_destination_conflict() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join("app/default/x.conf"), "a");
        write(&tmp.path().join("app/default/x.conf.hbs"), "b");
        assert!(app_files(tmp.path(), "app", "default").is_err());
    }

    proptest! {
        #[test]
        fn overlay_takes_state_first_then_default(
            default in prop::collection::btree_map("[a-c]{1,2}", 0u8..10, 0..6),
            state in prop::collection::btree_map("[a-c]{1,2}", 10u8..20, 0..6),
        ) {
            let merged = overlay(default.clone(), state.clone());
            for (key, value) in &merged {
                match state.get(key) {
                    Some(expected) => prop_assert_eq!(value, expected),
                    None => prop_assert_eq!(Some(value), default.get(key)),
                }
            }
            prop_assert!(default.keys().chain(state.keys()).all(|key| merged.contains_key(key)));
        }
    }
}
