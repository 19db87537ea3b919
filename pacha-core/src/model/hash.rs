//! Content hashes: SHA-256 digests of file contents, printed as hex.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest of file contents, printed as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash of `bytes`.
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

/// Contents that do not match the hash sent with them (a plan or snapshot damaged on the way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} does not match its sha256")]
pub struct Damaged {
    /// The file or script whose contents are damaged.
    pub what: String,
}

impl Damaged {
    /// `Ok` when `content` hashes to `sha256`, else the error naming `what()`.
    pub fn check(content: &[u8], sha256: ContentHash, what: impl FnOnce() -> String) -> Result<(), Damaged> {
        if ContentHash::of(content) == sha256 {
            Ok(())
        } else {
            Err(Damaged { what: what() })
        }
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
