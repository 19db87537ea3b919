//! A node's `track` globs: extra files on the node whose changes capture, status and watch
//! record, although no template places them.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::model::path::NodePath;

/// A `track` glob that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// Globs are absolute paths on the node.
    #[error("track: {glob:?} must be an absolute path on the node")]
    Relative {
        /// The glob as written.
        glob: String,
    },
    /// Not a glob globset can compile.
    #[error("track: invalid glob {glob:?}: {reason}")]
    Invalid {
        /// The glob as written.
        glob: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// A node's `track` globs: extra files whose changes capture records.
#[derive(Debug, Clone, Default)]
pub struct Track {
    globs: Vec<String>,
    set: GlobSet,
}

impl Track {
    /// Compiles `globs` (absolute paths on the node; `*` stays in a folder, `**` crosses).
    pub fn new(globs: &[String]) -> Result<Track, TrackError> {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            if !glob.starts_with('/') {
                return Err(TrackError::Relative { glob: glob.clone() });
            }
            let compiled =
                GlobBuilder::new(glob)
                    .literal_separator(true)
                    .build()
                    .map_err(|err| TrackError::Invalid {
                        glob: glob.clone(),
                        reason: err.kind().to_string(),
                    })?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|err| TrackError::Invalid {
            glob: globs.join(", "),
            reason: err.kind().to_string(),
        })?;
        Ok(Track {
            globs: globs.to_vec(),
            set,
        })
    }

    /// Whether there are no globs at all.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Whether `path` matches one of the globs.
    pub fn matches(&self, path: &NodePath) -> bool {
        self.set.is_match(path.as_str())
    }

    /// Literal paths (globs without wildcards) and the folders to search for the others.
    pub fn search(&self) -> (Vec<NodePath>, Vec<NodePath>) {
        let mut literal = Vec::new();
        let mut folders = Vec::new();
        for glob in &self.globs {
            let wild = glob.find(['*', '?', '[', '{']);
            match wild {
                None => literal.extend(NodePath::parse(glob).ok()),
                Some(at) => {
                    let base = glob[..at]
                        .rsplit_once('/')
                        .map_or("/", |(base, _)| if base.is_empty() { "/" } else { base });
                    if let Ok(folder) = NodePath::parse(base)
                        && !folders.contains(&folder)
                    {
                        folders.push(folder);
                    }
                }
            }
        }
        (literal, folders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_globs_split_into_literals_and_folders() {
        let track = Track::new(&[
            "/etc/ssh/sshd_config".into(),
            "/etc/nginx/**/*.conf".into(),
            "/var/*.log".into(),
        ])
        .unwrap();
        let (literal, folders) = track.search();
        assert_eq!(literal, [NodePath::parse("/etc/ssh/sshd_config").unwrap()]);
        assert_eq!(
            folders,
            [NodePath::parse("/etc/nginx").unwrap(), NodePath::parse("/var").unwrap()]
        );
        assert!(track.matches(&NodePath::parse("/etc/nginx/sites/a.conf").unwrap()));
        assert!(!track.matches(&NodePath::parse("/var/log/x.log").unwrap()));
        assert!(Track::new(&["relative/*".into()]).is_err());
    }
}
