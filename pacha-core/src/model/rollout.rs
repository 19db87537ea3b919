//! Rollout control: which leaves of a push take part (a limit), and how they go (in serial
//! batches, stopping after so many failures).

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// `rollout:` in `pacha.yaml` or a meta node: how a push of many nodes goes by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSettings {
    /// Batches of this many nodes, in the expanded order; the next starts only when the
    /// previous one had no failure.
    pub serial: Option<usize>,
    /// Once this many nodes failed, no new node starts.
    pub max_fail: Option<usize>,
}

impl RolloutSettings {
    /// These settings with every key that `over` sets replaced by its value.
    pub fn overlaid(self, over: RolloutSettings) -> RolloutSettings {
        RolloutSettings {
            serial: over.serial.or(self.serial),
            max_fail: over.max_fail.or(self.max_fail),
        }
    }
}

/// A limit that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// An empty entry (`web1,,web2`, or nothing at all).
    #[error("an empty name in the limit {limit:?}: write names or globs separated by commas")]
    Empty {
        /// The limit as written.
        limit: String,
    },
    /// Not a glob globset can compile.
    #[error("invalid glob {glob:?} in the limit: {reason}")]
    Invalid {
        /// The glob as written.
        glob: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// Leaf nodes a push is limited to: comma-separated names or globs (`web*,db1`).
#[derive(Debug, Clone)]
pub struct Limit {
    text: String,
    set: GlobSet,
}

impl Limit {
    /// Parses `web*,db1`.
    pub fn parse(text: &str) -> Result<Limit, LimitError> {
        let mut builder = GlobSetBuilder::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(LimitError::Empty { limit: text.to_owned() });
            }
            let glob = Glob::new(part).map_err(|err| LimitError::Invalid {
                glob: part.to_owned(),
                reason: err.kind().to_string(),
            })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|err| LimitError::Invalid {
            glob: text.to_owned(),
            reason: err.kind().to_string(),
        })?;
        Ok(Limit {
            text: text.to_owned(),
            set,
        })
    }

    /// The limit as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether leaf node `name` takes part.
    pub fn allows(&self, name: &str) -> bool {
        self.set.is_match(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_globs_separated_by_commas() {
        let limit = Limit::parse("web*, db1").unwrap();
        assert!(limit.allows("web1") && limit.allows("web22") && limit.allows("db1"));
        assert!(!limit.allows("db2") && !limit.allows("lb1"));
        assert!(matches!(Limit::parse("web1,,db1"), Err(LimitError::Empty { .. })));
        assert!(matches!(Limit::parse(""), Err(LimitError::Empty { .. })));
        assert!(matches!(Limit::parse("web[1"), Err(LimitError::Invalid { .. })));
    }

    #[test]
    fn node_settings_override_master_settings() {
        let master = RolloutSettings {
            serial: Some(2),
            max_fail: Some(1),
        };
        let meta = RolloutSettings {
            serial: Some(5),
            max_fail: None,
        };
        assert_eq!(
            master.overlaid(meta),
            RolloutSettings {
                serial: Some(5),
                max_fail: Some(1)
            }
        );
    }
}
