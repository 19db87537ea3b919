//! File permission modes, written the way administrators write them (`"0644"`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The twelve permission bits of a file: setuid, setgid, sticky and `rwx` for owner, group and
/// others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode(u32);

/// A mode that is not an octal number from `0000` to `7777`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mode {text:?}: write it as octal digits, like \"0644\" or \"0755\" (at most 7777)")]
pub struct ModeError {
    /// The mode as written.
    pub text: String,
}

impl Mode {
    /// The default mode of a file pacha places.
    pub const FILE: Mode = Mode(0o644);
    /// The default mode of an executable file and of a folder pacha creates.
    pub const EXECUTABLE: Mode = Mode(0o755);

    /// A mode from its bits; anything above `0o7777` is refused.
    pub fn from_bits(bits: u32) -> Result<Mode, ModeError> {
        if bits > 0o7777 {
            return Err(ModeError {
                text: format!("{bits:o}"),
            });
        }
        Ok(Mode(bits))
    }

    /// Parses `"0644"`, `"644"`, `"0o644"` or `"04755"`.
    pub fn parse(text: &str) -> Result<Mode, ModeError> {
        let error = || ModeError { text: text.to_owned() };
        let digits = text.trim();
        let digits = digits.strip_prefix("0o").unwrap_or(digits);
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(error());
        }
        let bits = u32::from_str_radix(digits, 8).map_err(|_| error())?;
        Mode::from_bits(bits).map_err(|_| error())
    }

    /// The permission bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
        struct ModeVisitor;

        impl Visitor<'_> for ModeVisitor {
            type Value = Mode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal mode such as \"0644\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Mode, E> {
                Mode::parse(text).map_err(E::custom)
            }

            // YAML reads an unquoted `0644` as the integer 644: its digits are what the
            // administrator meant, so read them as octal.
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Mode, E> {
                Mode::parse(&value.to_string()).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Mode, E> {
                Mode::parse(&value.to_string()).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(ModeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_octal_forms() {
        assert_eq!(Mode::parse("0644").unwrap().bits(), 0o644);
        assert_eq!(Mode::parse("644").unwrap().bits(), 0o644);
        assert_eq!(Mode::parse("0o600").unwrap().bits(), 0o600);
        assert_eq!(Mode::parse("4755").unwrap().bits(), 0o4755);
        assert_eq!(Mode::parse("07777").unwrap().bits(), 0o7777);
        assert_eq!(Mode::parse("0").unwrap().bits(), 0);
    }

    #[test]
    fn refuses_what_is_not_a_mode() {
        for text in ["", "0999", "rw-r--r--", "17777", "0x644", "-644", "u+x"] {
            assert!(Mode::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn displays_four_digits() {
        assert_eq!(Mode::parse("600").unwrap().to_string(), "0600");
        assert_eq!(Mode::parse("04755").unwrap().to_string(), "4755");
    }

    #[test]
    fn reads_yaml_strings_and_unquoted_numbers() {
        #[derive(Deserialize)]
        struct File {
            a: Mode,
            b: Mode,
        }
        let file: File = yaml_serde::from_str("a: \"0600\"\nb: 0755\n").unwrap();
        assert_eq!(file.a.bits(), 0o600);
        assert_eq!(file.b.bits(), 0o755);
        let err = yaml_serde::from_str::<File>("a: \"0600\"\nb: 0999\n").err().unwrap();
        assert!(err.to_string().contains("invalid mode"), "{err}");
    }
}
