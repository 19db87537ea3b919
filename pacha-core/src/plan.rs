//! The plan of one node in one state: every file with its destination, owner, group, mode and
//! content, and the scripts to run. Rendering makes plans; push, diff and history use them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::master::Target;
use crate::mode::Mode;
use crate::path::NodePath;

/// A SHA-256 digest of file contents, printed as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits.
    pub fn parse(hex: &str) -> Option<ContentHash> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (index, pair) in hex.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            bytes[index] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(ContentHash(bytes))
    }

    /// The first `len` hex digits.
    pub fn short(&self, len: usize) -> String {
        let mut text = self.to_string();
        text.truncate(len);
        text
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.short(12))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ContentHash, D::Error> {
        let text = String::deserialize(deserializer)?;
        ContentHash::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid sha256 {text:?}")))
    }
}

/// One file a node should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Where the file goes, as the node sees it (the node's `root` comes in front).
    pub destination: NodePath,
    /// The app the file belongs to.
    pub app: String,
    /// The master file it comes from, relative to the master.
    pub source: String,
    /// The owner to set; `None` leaves the owner the connecting user gets.
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Mode,
    /// The mode of folders pacha has to create for it.
    pub dir_mode: Mode,
    #[serde(with = "crate::bytes")]
    pub content: Arc<[u8]>,
    pub sha256: ContentHash,
}

/// When a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before files are placed; a failure stops the node before anything is placed.
    Pre,
    /// After files are placed, with the changed paths in the environment.
    Post,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pre => "pre",
            Stage::Post => "post",
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
    pub stage: Stage,
    pub phase: String,
    /// The file name inside the phase folder.
    pub name: String,
    /// The master file, relative to the master.
    pub source: String,
    #[serde(with = "crate::bytes")]
    pub content: Arc<[u8]>,
    pub sha256: ContentHash,
}

impl PlannedScript {
    /// `pre/<phase>/<name>`: unique within a plan.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.stage, self.phase, self.name)
    }
}

/// Everything one node needs in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub node: String,
    pub state: String,
    pub target: Target,
    /// Sorted by destination, each destination once.
    pub files: Vec<PlannedFile>,
    /// Pre scripts then post scripts, each in phase order then name order.
    pub scripts: Vec<PlannedScript>,
    /// Values that must never be printed (secrets rendered into files).
    pub secrets: Vec<String>,
}

impl Plan {
    /// Checks that every content matches its hash (a plan received over the wire).
    pub fn verify(&self) -> Result<(), String> {
        for file in &self.files {
            if ContentHash::of(&file.content) != file.sha256 {
                return Err(format!("{} does not match its sha256", file.destination));
            }
        }
        for script in &self.scripts {
            if ContentHash::of(&script.content) != script.sha256 {
                return Err(format!("script {} does not match its sha256", script.id()));
            }
        }
        Ok(())
    }

    pub fn scripts(&self, stage: Stage) -> impl Iterator<Item = &PlannedScript> {
        self.scripts.iter().filter(move |script| script.stage == stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_through_hex() {
        let hash = ContentHash::of(b"hello\n");
        assert_eq!(
            hash.to_string(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(ContentHash::parse(&hash.to_string()), Some(hash));
        assert_eq!(ContentHash::parse("xyz"), None);
        assert_eq!(hash.short(8), "5891b5b5");
    }
}
