//! A node's links to its master (core's [`MasterLink`]): [`SshLink`] runs `pacha serve` on the
//! master over one ssh session, with the same ssh arguments as the connector's; [`LocalLink`]
//! hands each message to a [`Server`] in this process (a master folder on this machine: image
//! and chroot builds).

use std::ffi::OsString;
use std::io::{BufReader, Read};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use pacha_core::{LinkError, MasterLink, Server, SshSettings, Target, TransportKind, read_message, write_message};

use crate::shell::quote;
use crate::ssh::session_args;

/// How much of the master's standard error is kept for messages.
const STDERR_KEPT: usize = 16 * 1024;

/// Where a master is: `[USER@]HOST:/MASTER/DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterAddress {
    /// The SSH destination (`host`, `user@host` or an ssh_config alias).
    pub destination: String,
    /// The master folder on that host.
    pub dir: String,
}

impl MasterAddress {
    /// Parses `[USER@]HOST:/DIR`; `None` when it is not of that form (or the host starts with
    /// `-`, which ssh would read as an option).
    pub fn parse(text: &str) -> Option<MasterAddress> {
        let (destination, dir) = text.split_once(':')?;
        if destination.is_empty() || destination.starts_with('-') || dir.is_empty() {
            return None;
        }
        Some(MasterAddress {
            destination: destination.to_owned(),
            dir: dir.to_owned(),
        })
    }
}

impl std::fmt::Display for MasterAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.destination, self.dir)
    }
}

/// The arguments of the ssh that runs `pacha serve` at `address`: the connector's session
/// arguments for `ssh`, then the remote command.
pub(crate) fn link_args(address: &MasterAddress, ssh: &SshSettings, remote_pacha: &str) -> Vec<OsString> {
    let target = Target {
        transport: TransportKind::Ssh,
        host: address.destination.clone(),
        port: None,
        user: None,
        root: "/".to_owned(),
        ssh: ssh.clone(),
    };
    let mut args = session_args(&target);
    args.push("-T".into());
    args.push("--".into());
    args.push(address.destination.clone().into());
    args.push(
        format!(
            "{} --color never --master {} serve",
            quote(remote_pacha),
            quote(&address.dir)
        )
        .into(),
    );
    args
}

/// A session with `pacha serve` on a master over ssh.
pub struct SshLink {
    address: MasterAddress,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
    drain: Option<thread::JoinHandle<()>>,
    /// Whether the master has answered once: an end before that means it was never reached.
    answered: bool,
    host: Option<String>,
}

impl SshLink {
    /// Starts `ssh` to `address` running `remote_pacha serve` there, with `ssh`'s settings.
    pub fn open(address: &MasterAddress, ssh: &SshSettings, remote_pacha: &str) -> Result<SshLink, LinkError> {
        SshLink::open_with(address, ssh, remote_pacha, "ssh")
    }

    /// As [`SshLink::open`], with another `ssh` program.
    pub fn open_with(
        address: &MasterAddress,
        ssh: &SshSettings,
        remote_pacha: &str,
        program: &str,
    ) -> Result<SshLink, LinkError> {
        let mut child = Command::new(program)
            .args(link_args(address, ssh, remote_pacha))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| LinkError::Connect {
                master: address.to_string(),
                detail: format!("running {program}: {err}"),
            })?;
        let missing = || LinkError::Connect {
            master: address.to_string(),
            detail: "ssh started without its pipes".to_owned(),
        };
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let mut stderr_pipe = child.stderr.take().ok_or_else(missing)?;
        // Drained while the session runs, so a chatty master can never block on a full pipe.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = stderr.clone();
        let drain = thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stderr_pipe.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                kept.extend_from_slice(&buffer[..read]);
                if kept.len() > STDERR_KEPT {
                    let cut = kept.len() - STDERR_KEPT;
                    kept.drain(..cut);
                }
            }
        });
        Ok(SshLink {
            address: address.clone(),
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr,
            drain: Some(drain),
            answered: false,
            host: None,
        })
    }

    /// What ssh or the master said on standard error, after the session ended.
    fn said(&mut self) -> String {
        self.stdin.take();
        let _ = self.child.wait();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        let kept = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&kept);
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
        if lines.is_empty() {
            "no message".to_owned()
        } else {
            lines[lines.len().saturating_sub(3)..]
                .iter()
                .map(|line| line.trim_start_matches("error: "))
                .collect::<Vec<_>>()
                .join(" | ")
        }
    }

    fn ended(&mut self) -> LinkError {
        let detail = self.said();
        if self.answered {
            LinkError::Disconnected {
                master: self.address.to_string(),
                detail,
            }
        } else {
            LinkError::Connect {
                master: self.address.to_string(),
                detail,
            }
        }
    }
}

impl SshLink {
    /// Tells the master this host's name when the session opens (who did what it records).
    pub fn with_host(mut self, host: impl Into<String>) -> SshLink {
        self.host = Some(host.into());
        self
    }
}

impl MasterLink for SshLink {
    fn describe(&self) -> String {
        self.address.to_string()
    }

    fn host(&self) -> Option<String> {
        self.host.clone()
    }

    fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, LinkError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.ended());
        };
        if write_message(stdin, message).is_err() {
            return Err(self.ended());
        }
        match read_message(&mut self.stdout) {
            Ok(Some(answer)) => {
                self.answered = true;
                Ok(answer)
            }
            Ok(None) => Err(self.ended()),
            Err(source) if source.kind() == std::io::ErrorKind::InvalidData => Err(LinkError::Malformed {
                master: self.address.to_string(),
                detail: source.to_string(),
            }),
            Err(source) => Err(LinkError::Io {
                master: self.address.to_string(),
                source,
            }),
        }
    }
}

impl Drop for SshLink {
    fn drop(&mut self) {
        // Closing the master's input ends `pacha serve`, and with it ssh.
        self.stdin.take();
        let _ = self.child.wait();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

/// A master folder on this machine, served in this process.
pub struct LocalLink<'a> {
    server: Server<'a>,
    master: String,
    host: Option<String>,
}

impl<'a> LocalLink<'a> {
    /// A link to `server`, described as `master` (its folder) in messages.
    pub fn new(server: Server<'a>, master: impl Into<String>) -> LocalLink<'a> {
        LocalLink {
            server,
            master: master.into(),
            host: None,
        }
    }

    /// Tells the master this host's name when the session opens.
    pub fn with_host(mut self, host: impl Into<String>) -> LocalLink<'a> {
        self.host = Some(host.into());
        self
    }
}

impl MasterLink for LocalLink<'_> {
    fn describe(&self) -> String {
        self.master.clone()
    }

    fn host(&self) -> Option<String> {
        self.host.clone()
    }

    fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, LinkError> {
        Ok(self.server.answer(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_refuse_options() {
        assert_eq!(
            MasterAddress::parse("admin@master:/opt/pacha"),
            Some(MasterAddress {
                destination: "admin@master".into(),
                dir: "/opt/pacha".into()
            })
        );
        assert_eq!(MasterAddress::parse("master:relative").unwrap().dir, "relative");
        assert_eq!(MasterAddress::parse("master"), None);
        assert_eq!(MasterAddress::parse("-oProxyCommand=x:/opt"), None);
        assert_eq!(MasterAddress::parse(":/opt"), None);
    }

    #[test]
    fn link_arguments_are_the_connectors_plus_the_remote_command() {
        let ssh = SshSettings {
            config_file: Some("/etc/pacha/ssh_config".into()),
            identity: Some("/etc/pacha/id".into()),
            known_hosts: Some("/etc/pacha/known_hosts".into()),
            host_keys: Some(pacha_core::HostKeyPolicy::AcceptNew),
            connect_timeout: Some(4),
            persist: None,
        };
        let address = MasterAddress::parse("deploy@master:/opt/my pacha").unwrap();
        let args: Vec<String> = link_args(&address, &ssh, "/usr/bin/pacha")
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "-o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=4 -o ServerAliveInterval=15 \
             -o UserKnownHostsFile=/etc/pacha/known_hosts -o IdentityFile=/etc/pacha/id -o IdentitiesOnly=yes \
             -F /etc/pacha/ssh_config -T -- deploy@master '/usr/bin/pacha' --color never --master '/opt/my pacha' serve"
        );
    }
}
