//! Secrets at rest with [age](https://age-encryption.org): the master's recipients (who can
//! read what pacha encrypts) and its identity (the private key that decrypts), as
//! `pacha.yaml` `age: {recipients: [age1…], identity: PATH}` names them.
//!
//! The identity file is read the first time something is decrypted, so commands that decrypt
//! nothing (a log, a render of a master without encrypted secrets) never need it.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::x25519;

/// What went wrong encrypting or decrypting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgeError {
    /// Something must be decrypted and no identity is configured.
    #[error(
        "{what} is encrypted and no age identity is set: set `age: {{identity: PATH}}` in pacha.yaml or PACHA_AGE_IDENTITY"
    )]
    NoIdentity {
        /// What had to be decrypted.
        what: String,
    },
    /// The identity file cannot be read or holds no usable identity.
    #[error("age identity {}: {message}", path.display())]
    Identity {
        /// The identity file.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// The ciphertext was not encrypted to the identity.
    #[error("{what} cannot be decrypted with the age identity {}: it was not encrypted to it", path.display())]
    NotForIdentity {
        /// What had to be decrypted.
        what: String,
        /// The identity file.
        path: PathBuf,
    },
    /// The ciphertext is damaged or not age at all.
    #[error("{what} is not a readable age file: {message}")]
    Damaged {
        /// What had to be decrypted.
        what: String,
        /// The decoder's message.
        message: String,
    },
    /// Something must be encrypted and no recipient is configured.
    #[error("no age recipients are set: add `age: {{recipients: [age1…]}}` to pacha.yaml")]
    NoRecipients,
    /// A recipient as written is not an age X25519 recipient.
    #[error("{recipient:?} is not an age recipient (age1…): {message}")]
    BadRecipient {
        /// The recipient as written.
        recipient: String,
        /// The parser's message.
        message: String,
    },
    /// Encryption failed (it does not, short of running out of memory).
    #[error("encrypting {what}: {message}")]
    Encrypt {
        /// What was being encrypted.
        what: String,
        /// Why.
        message: String,
    },
}

type Identities = Vec<x25519::Identity>;

/// The master's age recipients and identity. Cheap to clone: the identity, once read, is shared.
#[derive(Clone, Default)]
pub struct AgeKeys {
    recipients: Vec<(String, x25519::Recipient)>,
    identity: Option<PathBuf>,
    loaded: Arc<OnceLock<Result<Identities, AgeError>>>,
}

impl fmt::Debug for AgeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeKeys")
            .field("recipients", &self.recipient_names().collect::<Vec<_>>())
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl AgeKeys {
    /// Keys from recipients as written (`age1…`) and an identity file.
    pub fn new(recipients: &[String], identity: Option<PathBuf>) -> Result<AgeKeys, AgeError> {
        let recipients = recipients
            .iter()
            .map(|text| {
                x25519::Recipient::from_str(text.trim())
                    .map(|recipient| (text.trim().to_owned(), recipient))
                    .map_err(|message| AgeError::BadRecipient {
                        recipient: text.clone(),
                        message: message.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(AgeKeys {
            recipients,
            identity,
            loaded: Arc::default(),
        })
    }

    /// These keys with another identity file (the identity is read again when needed).
    pub fn with_identity(mut self, identity: PathBuf) -> AgeKeys {
        self.identity = Some(identity);
        self.loaded = Arc::default();
        self
    }

    /// The recipients, as written.
    pub fn recipient_names(&self) -> impl Iterator<Item = &str> {
        self.recipients.iter().map(|(name, _)| name.as_str())
    }

    /// Whether anything can be encrypted (at least one recipient).
    pub fn can_encrypt(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The identity file, if one is set.
    pub fn identity_path(&self) -> Option<&Path> {
        self.identity.as_deref()
    }

    /// `plaintext` encrypted to every recipient, as ASCII armour. `what` names it in errors.
    pub fn encrypt(&self, what: &str, plaintext: &[u8]) -> Result<Vec<u8>, AgeError> {
        if self.recipients.is_empty() {
            return Err(AgeError::NoRecipients);
        }
        let failed = |err: &dyn fmt::Display| AgeError::Encrypt {
            what: what.to_owned(),
            message: err.to_string(),
        };
        let encryptor = age::Encryptor::with_recipients(
            self.recipients
                .iter()
                .map(|(_, recipient)| recipient as &dyn age::Recipient),
        )
        .map_err(|err| failed(&err))?;
        let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 400);
        let armour = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|err| failed(&err))?;
        let mut writer = encryptor.wrap_output(armour).map_err(|err| failed(&err))?;
        writer.write_all(plaintext).map_err(|err| failed(&err))?;
        writer
            .finish()
            .and_then(ArmoredWriter::finish)
            .map_err(|err| failed(&err))?;
        Ok(out)
    }

    /// `ciphertext` (armoured or binary age) decrypted with the identity. `what` names it in
    /// errors.
    pub fn decrypt(&self, what: &str, ciphertext: &[u8]) -> Result<Vec<u8>, AgeError> {
        let identities = self.identities(what)?;
        let damaged = |err: &dyn fmt::Display| AgeError::Damaged {
            what: what.to_owned(),
            message: err.to_string(),
        };
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(ciphertext)).map_err(|err| damaged(&err))?;
        let mut reader = decryptor
            .decrypt(identities.iter().map(|identity| identity as &dyn age::Identity))
            .map_err(|err| match err {
                age::DecryptError::NoMatchingKeys => AgeError::NotForIdentity {
                    what: what.to_owned(),
                    path: self.identity.clone().unwrap_or_default(),
                },
                other => damaged(&other),
            })?;
        let mut plaintext = Vec::new();
        reader.read_to_end(&mut plaintext).map_err(|err| damaged(&err))?;
        Ok(plaintext)
    }

    /// Checks that the identity can be read (before anything is decrypted with it).
    pub fn check_identity(&self, what: &str) -> Result<(), AgeError> {
        self.identities(what).map(|_| ())
    }

    fn identities(&self, what: &str) -> Result<&Identities, AgeError> {
        let Some(path) = &self.identity else {
            return Err(AgeError::NoIdentity { what: what.to_owned() });
        };
        self.loaded
            .get_or_init(|| read_identities(path))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The X25519 identities of an identity file as `age-keygen` writes it: `#` comments and
/// `AGE-SECRET-KEY-1…` lines.
fn read_identities(path: &Path) -> Result<Identities, AgeError> {
    let invalid = |message: String| AgeError::Identity {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|err| invalid(err.to_string()))?;
    let mut identities = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The parser's message would quote the line: a private key.
        let identity = x25519::Identity::from_str(line).map_err(|_| {
            invalid(format!(
                "line {} is not an age secret key (AGE-SECRET-KEY-1…)",
                number + 1
            ))
        })?;
        identities.push(identity);
    }
    if identities.is_empty() {
        return Err(invalid("it holds no age secret key (AGE-SECRET-KEY-1…)".to_owned()));
    }
    Ok(identities)
}

#[cfg(test)]
mod tests {
    use age::secrecy::ExposeSecret;

    use super::*;

    fn keys(dir: &Path) -> (AgeKeys, PathBuf) {
        let identity = x25519::Identity::generate();
        let path = dir.join("key.txt");
        std::fs::write(
            &path,
            format!("# created: now\n{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        let keys = AgeKeys::new(&[identity.to_public().to_string()], Some(path.clone())).unwrap();
        (keys, path)
    }

    #[test]
    fn round_trips_through_armour() {
        let tmp = tempfile::tempdir().unwrap();
        let (keys, _) = keys(tmp.path());
        let sealed = keys.encrypt("token", b"hunter2").unwrap();
        assert!(sealed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!sealed.windows(7).any(|window| window == b"hunter2"));
        assert_eq!(keys.decrypt("token", &sealed).unwrap(), b"hunter2");
    }

    #[test]
    fn a_wrong_or_missing_identity_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (keys, _) = keys(tmp.path());
        let sealed = keys.encrypt("token", b"hunter2").unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let (other, other_path) = self::keys(other_dir.path());
        let err = other.decrypt("secrets/token.age", &sealed).unwrap_err();
        assert_eq!(
            err,
            AgeError::NotForIdentity {
                what: "secrets/token.age".to_owned(),
                path: other_path
            }
        );
        let none = AgeKeys::new(&[], None).unwrap();
        assert!(matches!(none.decrypt("x", &sealed), Err(AgeError::NoIdentity { .. })));
        assert_eq!(none.encrypt("x", b"y"), Err(AgeError::NoRecipients));
        let bad = tmp.path().join("bad.txt");
        std::fs::write(&bad, "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
        let err = keys
            .clone()
            .with_identity(bad)
            .decrypt("x", &sealed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1 is not an age secret key") && !err.contains("NOTAKEY"),
            "{err}"
        );
        assert!(matches!(
            AgeKeys::new(&["age1nope".to_owned()], None),
            Err(AgeError::BadRecipient { .. })
        ));
        assert!(matches!(
            keys.decrypt("x", b"plain text"),
            Err(AgeError::Damaged { .. })
        ));
    }
}
