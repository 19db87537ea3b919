//! `pacha authorize NODE PUBKEY`: the `authorized_keys` line that lets one host's key reach
//! the master for its own node only (`pacha serve --node`, as a forced command, `restrict`).

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use pacha_transport::quote;

use super::{Context, Status};
use crate::error::Usage;
use crate::output::Output;

/// Key types OpenSSH accepts in `authorized_keys`.
const KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

pub(super) fn authorize(
    context: &Context<'_>,
    out: &mut Output,
    node: &str,
    key: &Path,
    program: &str,
) -> anyhow::Result<Status> {
    let master = context.master()?;
    master.node(node)?;
    let text = if key == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the key from standard input")?;
        text
    } else {
        std::fs::read_to_string(key).with_context(|| format!("reading the key {}", key.display()))?
    };
    let (kind, body) = public_key(&text).map_err(Usage)?;
    let dir = master
        .dir()
        .canonicalize()
        .unwrap_or_else(|_| master.dir().to_path_buf());
    let command = format!(
        "{} serve --master {} --node {}",
        quote(program),
        quote(&dir.display().to_string()),
        quote(node)
    );
    // Inside the option's double quotes, `"` and `\` are escaped.
    let escaped = command.replace('\\', "\\\\").replace('"', "\\\"");
    let comment: String = format!("pacha:{node}")
        .chars()
        .map(|character| {
            if character.is_whitespace() || character.is_control() {
                '_'
            } else {
                character
            }
        })
        .collect();
    let line = format!("command=\"{escaped}\",restrict {kind} {body} {comment}");
    if out.json {
        out.json_document(&serde_json::json!({"node": node, "line": line}))?;
    } else {
        out.line(line)?;
    }
    Ok(Status::Success)
}

/// The type and base64 body of the one public key in `text` (as `ssh-keygen` writes a
/// `.pub` file); a private key, options or anything else is refused.
fn public_key(text: &str) -> Result<(String, String), String> {
    if text.contains("PRIVATE KEY") {
        return Err("that is a private key: give the host's public key (the .pub file)".to_owned());
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let [line] = lines.as_slice() else {
        return Err(format!("expected one public key line, found {}", lines.len()));
    };
    let mut fields = line.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();
    if !KEY_TYPES.contains(&kind) {
        return Err(format!(
            "{kind:?} is not an SSH public key type (expected one of {}); give the .pub file without options",
            KEY_TYPES.join(", ")
        ));
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"+/=".contains(&byte))
    {
        return Err("the key's base64 body is missing or damaged".to_owned());
    }
    Ok((kind.to_owned(), body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_public_key_passes() {
        let (kind, body) = public_key("# host key\nssh-ed25519 AAAAC3Nza+/= root@web1\n").unwrap();
        assert_eq!((kind.as_str(), body.as_str()), ("ssh-ed25519", "AAAAC3Nza+/="));
        assert!(
            public_key("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
                .unwrap_err()
                .contains("private key")
        );
        assert!(public_key("command=\"x\" ssh-ed25519 AAAA\n").is_err());
        assert!(public_key("ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n").is_err());
        assert!(public_key("ssh-ed25519 AA\"AA\n").is_err());
    }
}
