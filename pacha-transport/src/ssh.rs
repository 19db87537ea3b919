//! Nodes over the system's OpenSSH: one multiplexed master connection per node, kept alive
//! for a short idle time (`ssh.persist`) in a private control folder, so the next pacha run
//! reuses it instead of a new handshake.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use openssh::{Session, Stdio as RemoteStdio};
use pacha_core::{Connection, Connector, ContentHash, HostKeyPolicy, Step, Target, TransportError, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use crate::local::LocalConnector;
use crate::session::{self, Finished, Frame, Held, HeldReader, Shell, ShellConnection};

/// The longest control socket path: Unix socket paths are limited to 108 bytes, and ssh
/// appends a few characters while it sets one up.
const MAX_SOCKET_PATH: usize = 90;

/// The default connect timeout when a master sets none.
const DEFAULT_CONNECT_TIMEOUT: u64 = 10;

/// Connects to nodes over OpenSSH (and to `transport: local` nodes locally).
pub struct SshConnector {
    runtime: Arc<Runtime>,
    control_dir: PathBuf,
    program: OsString,
    lock_wait: Duration,
}

impl SshConnector {
    /// A connector keeping its control sockets in `control_dir`, which is created private
    /// (0700) when missing and refused when it is not private or not ours.
    pub fn new(control_dir: impl Into<PathBuf>) -> io::Result<SshConnector> {
        let control_dir = control_dir.into();
        private_dir(&control_dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(SshConnector {
            runtime: Arc::new(runtime),
            control_dir,
            program: OsString::from("ssh"),
            lock_wait: crate::script::DEFAULT_LOCK_WAIT,
        })
    }

    /// How long to wait for another pacha to release a node (default 10 s).
    pub fn with_lock_wait(mut self, lock_wait: Duration) -> SshConnector {
        self.lock_wait = lock_wait;
        self
    }

    /// Uses another `ssh` program (default: `ssh` from `PATH`).
    pub fn with_program(mut self, program: impl Into<OsString>) -> SshConnector {
        self.program = program.into();
        self
    }

    /// The folder of the kept connections.
    pub fn control_dir(&self) -> &Path {
        &self.control_dir
    }

    /// The control socket of a kept connection to `target`.
    pub fn socket_path(&self, target: &Target) -> PathBuf {
        self.control_dir.join(socket_name(target))
    }

    /// Closes the kept connection to `target`; whether there was one.
    pub fn disconnect(&self, target: &Target) -> bool {
        self.close_socket(&self.socket_path(target))
    }

    /// Closes every kept connection; how many there were.
    pub fn disconnect_all(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.control_dir) else {
            return 0;
        };
        let sockets: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_none())
            .collect();
        sockets.iter().filter(|socket| self.close_socket(socket)).count()
    }

    fn close_socket(&self, socket: &Path) -> bool {
        if !socket.exists() {
            return false;
        }
        let session = Session::resume_mux(socket.into(), None);
        let closed = self.runtime.block_on(session.close()).is_ok();
        let _ = fs::remove_file(socket);
        closed
    }

    fn open(&self, target: &Target) -> Result<(Arc<Session>, bool), TransportError> {
        let persist = target.ssh.persist_seconds();
        let name = if persist > 0 {
            socket_name(target)
        } else {
            // Never shared: closed when this push ends.
            format!("{}-{}", socket_name(target), &session::nonce()[..6])
        };
        let socket = self.control_dir.join(&name);
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(TransportError::Connect {
                host: target.host.clone(),
                detail: format!(
                    "the control folder {} is too deep for a socket path; use a shorter one",
                    self.control_dir.display()
                ),
            });
        }
        let log = self.control_dir.join(format!("{name}.log"));
        let io = |context: &str, source: io::Error| TransportError::Io {
            host: target.host.clone(),
            context: context.to_owned(),
            source: Arc::new(source),
        };
        // One pacha at a time sets up a given master.
        let guard = File::create(self.control_dir.join(format!("{name}.lock")))
            .map_err(|err| io("locking the control folder", err))?;
        guard.lock().map_err(|err| io("locking the control folder", err))?;

        if socket.exists() {
            let session = Session::resume_mux(socket.clone().into(), Some(log.clone().into()));
            let alive = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), session.check()).await });
            if matches!(alive, Ok(Ok(()))) {
                return Ok((Arc::new(session), persist == 0));
            }
            // A dead or stale master: replace it.
            let _ = fs::remove_file(&socket);
        }

        let mut tries = 0;
        loop {
            tries += 1;
            let log_file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&log)
                .map_err(|err| io("creating the ssh log", err))?;
            let status = Command::new(&self.program)
                .args(master_args(target, &socket, &log))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .status()
                .map_err(|err| io("running ssh", err))?;
            if status.success() && socket.exists() {
                break;
            }
            let detail = fs::read_to_string(&log).unwrap_or_default();
            // A server under load (sshd's MaxStartups) drops new connections: once more,
            // after a moment that differs per connection so they do not come back together.
            if tries == 1 && busy_server(&detail) {
                let jitter = u64::from(session::nonce().as_bytes()[0]) % 200;
                std::thread::sleep(Duration::from_millis(300 + jitter));
                continue;
            }
            return Err(classify(&target.host, &detail, status.code()));
        }
        Ok((
            Arc::new(Session::resume_mux(socket.into(), Some(log.into()))),
            persist == 0,
        ))
    }
}

impl Connector for SshConnector {
    fn connect(&self, node: &str, target: &Target) -> Result<Box<dyn Connection>, TransportError> {
        if target.transport == TransportKind::Local {
            return LocalConnector::default()
                .with_lock_wait(self.lock_wait)
                .connect(node, target);
        }
        let (session, close_master) = self.open(target)?;
        let shell = SshShell {
            runtime: self.runtime.clone(),
            session,
            held: None,
            host: target.host.clone(),
            close_master,
            target: target.clone(),
        };
        let connection =
            ShellConnection::new(Box::new(shell), &target.host, &target.root).with_lock_wait(self.lock_wait);
        Ok(Box::new(connection))
    }
}

/// The arguments every ssh that pacha runs gets for `target`: batch mode, the host key
/// policy, timeouts, known_hosts, identity, config file, port and user. Built in this one place
/// (the connector's masters and a node's link to its master both start from it) and tested
/// without spawning.
pub(crate) fn session_args(target: &Target) -> Vec<OsString> {
    let ssh = &target.ssh;
    let mut args: Vec<OsString> = Vec::new();
    let mut option = |text: String| {
        args.push("-o".into());
        args.push(text.into());
    };
    option("BatchMode=yes".to_owned());
    option(format!(
        "StrictHostKeyChecking={}",
        match ssh.host_key_policy() {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
        }
    ));
    option(format!(
        "ConnectTimeout={}",
        ssh.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    ));
    option("ServerAliveInterval=15".to_owned());
    if let Some(known_hosts) = &ssh.known_hosts {
        option(format!("UserKnownHostsFile={}", config_value(known_hosts)));
    }
    if let Some(identity) = &ssh.identity {
        option(format!("IdentityFile={}", config_value(identity)));
        option("IdentitiesOnly=yes".to_owned());
    }
    if let Some(config) = &ssh.config_file {
        args.push("-F".into());
        args.push(config.into());
    }
    if let Some(port) = target.port {
        args.push("-p".into());
        args.push(port.to_string().into());
    }
    if let Some(user) = &target.user {
        args.push("-l".into());
        args.push(user.into());
    }
    args
}

/// The arguments that start a master connection to `target`, its control socket at `socket`
/// and its diagnostics in `log`.
pub(crate) fn master_args(target: &Target, socket: &Path, log: &Path) -> Vec<OsString> {
    let mut args = session_args(target);
    args.push("-o".into());
    args.push(
        // Never `yes` (forever): a master that pacha could not close itself (pacha killed)
        // ends once idle, a second after its last session with `persist: 0`.
        format!("ControlPersist={}s", target.ssh.persist_seconds().max(1)).into(),
    );
    args.push("-E".into());
    args.push(log.into());
    args.push("-S".into());
    args.push(socket.as_os_str().to_string_lossy().replace('%', "%%").into());
    for flag in ["-M", "-N", "-f", "-T"] {
        args.push(flag.into());
    }
    args.push("--".into());
    args.push(target.host.clone().into());
    args
}

/// A path as an ssh_config value: quoted when it has spaces, `%` kept literal.
fn config_value(path: &Path) -> String {
    let text = path.display().to_string().replace('%', "%%");
    if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    }
}

/// The control socket name of `target`: the same for the same destination and settings, so a
/// later pacha run finds the master this one kept.
pub(crate) fn socket_name(target: &Target) -> String {
    let key = format!(
        "{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}",
        target.host,
        target.port,
        target.user,
        target.ssh.config_file,
        target.ssh.identity,
        target.ssh.known_hosts,
        target.ssh.host_key_policy(),
    );
    ContentHash::of(key.as_bytes()).short(16)
}

/// Turns ssh's diagnostics into an error that says what went wrong.
pub(crate) fn classify(host: &str, log: &str, status: Option<i32>) -> TransportError {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("debug"))
        .collect();
    let detail = if lines.is_empty() {
        format!(
            "ssh failed with exit status {}",
            status.map_or_else(|| "unknown".to_owned(), |code| code.to_string())
        )
    } else {
        lines[lines.len().saturating_sub(4)..].join(" | ")
    };
    let host_key = log.contains("Host key verification failed")
        || log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || log.contains("host key is known for")
        || log.contains("No matching host key");
    if host_key {
        TransportError::HostKey {
            host: host.to_owned(),
            detail,
        }
    } else {
        TransportError::Connect {
            host: host.to_owned(),
            detail,
        }
    }
}

/// Creates `dir` private to this user, or checks that it is.
fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(io::Error::new(err.kind(), format!("creating {}: {err}", dir.display())));
        }
    }
    let meta = fs::symlink_metadata(dir)?;
    let me = fs::metadata("/proc/self").map(|proc| proc.uid()).ok();
    let private = meta.is_dir() && meta.permissions().mode() & 0o077 == 0 && me.is_none_or(|uid| uid == meta.uid());
    if !private {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to keep SSH connections in {}: it must be a folder of yours with mode 0700",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Runs snippets through the multiplexed master.
struct SshShell {
    runtime: Arc<Runtime>,
    session: Arc<Session>,
    held: Option<(openssh::Child<Arc<Session>>, openssh::ChildStdout)>,
    host: String,
    close_master: bool,
    target: Target,
}

impl SshShell {
    fn error(&self, step: Step, err: &openssh::Error) -> TransportError {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        TransportError::Disconnected {
            host: self.host.clone(),
            step,
            detail,
        }
    }

    /// How a remote command ended, from its exit and its output.
    fn finished(
        &self,
        status: Result<std::process::ExitStatus, openssh::Error>,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        step: Step,
    ) -> Result<Finished, TransportError> {
        match status {
            Ok(status) => Ok(Finished {
                status: status.code(),
                stdout,
                stderr,
            }),
            Err(openssh::Error::RemoteProcessTerminated) => Ok(Finished {
                status: None,
                stdout,
                stderr,
            }),
            Err(err) => Err(self.error(step, &err)),
        }
    }

    fn spawn(&self, script: &str) -> Result<openssh::Child<Arc<Session>>, TransportError> {
        self.runtime
            .block_on(
                Session::to_raw_command(self.session.clone(), session::sh_command(script))
                    .stdin(RemoteStdio::piped())
                    .stdout(RemoteStdio::piped())
                    .stderr(RemoteStdio::piped())
                    .spawn(),
            )
            .map_err(|err| self.error(Step::Start, &err))
    }
}

impl Shell for SshShell {
    fn run(&mut self, script: &str, input: &[u8]) -> Result<Finished, TransportError> {
        let mut child = self.spawn(script)?;
        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let result = self.runtime.block_on(async move {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    let _ = stdin.write_all(input).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let read_out = async move {
                let mut buffer = Vec::new();
                if let Some(mut stdout) = stdout {
                    let _ = stdout.read_to_end(&mut buffer).await;
                }
                buffer
            };
            let read_err = async move {
                let mut buffer = Vec::new();
                if let Some(mut stderr) = stderr {
                    let _ = stderr.read_to_end(&mut buffer).await;
                }
                buffer
            };
            let ((), stdout, stderr) = tokio::join!(write, read_out, read_err);
            (child.wait().await, stdout, stderr)
        });
        let (status, stdout, stderr) = result;
        self.finished(status, stdout, stderr, Step::Run)
    }

    fn start_held(&mut self, script: &str, marker: &[u8]) -> Result<Held, TransportError> {
        let mut child = self.spawn(script)?;
        let mut stdout = child.stdout().take();
        let read = self.runtime.block_on(async {
            let mut output = Vec::new();
            let mut buffer = vec![0u8; 65536];
            let Some(stdout) = stdout.as_mut() else {
                return Ok((output, false));
            };
            loop {
                let read = stdout.read(&mut buffer).await?;
                if read == 0 {
                    return Ok::<_, io::Error>((output, false));
                }
                output.extend_from_slice(&buffer[..read]);
                if output.ends_with(marker) {
                    return Ok((output, true));
                }
            }
        });
        let (output, running) = read.map_err(|err| TransportError::Io {
            host: self.host.clone(),
            context: "reading the node's answer".to_owned(),
            source: Arc::new(err),
        })?;
        if running && let Some(stdout) = stdout {
            self.held = Some((child, stdout));
            return Ok(Held::Running(output));
        }
        let stderr = child.stderr().take();
        let (status, stderr) = self.runtime.block_on(async move {
            let mut buffer = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_end(&mut buffer).await;
            }
            (child.wait().await, buffer)
        });
        let status = match status {
            Ok(status) => status.code(),
            Err(openssh::Error::RemoteProcessTerminated) => None,
            Err(err) => return Err(self.error(Step::Inspect, &err)),
        };
        Ok(Held::Exited(Finished {
            status,
            stdout: output,
            stderr,
        }))
    }

    fn run_asking(
        &mut self,
        script: &str,
        input: &[u8],
        marker: &[u8],
        answer: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<Finished, TransportError> {
        let mut child = self.spawn(script)?;
        let mut stdin = child.stdin().take();
        let mut stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let errors = self.runtime.spawn(async move {
            let mut buffer = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_end(&mut buffer).await;
            }
            buffer
        });
        let (mut output, asked) = self.runtime.block_on(async {
            let write = async {
                if let Some(stdin) = stdin.as_mut() {
                    let _ = stdin.write_all(input).await;
                    let _ = stdin.flush().await;
                }
            };
            let read = async {
                let mut output = Vec::new();
                let mut buffer = vec![0u8; 65536];
                let Some(stdout) = stdout.as_mut() else {
                    return (output, false);
                };
                loop {
                    match stdout.read(&mut buffer).await {
                        Ok(0) | Err(_) => return (output, false),
                        Ok(read) => output.extend_from_slice(&buffer[..read]),
                    }
                    if output.ends_with(marker) {
                        return (output, true);
                    }
                }
            };
            let ((), read) = tokio::join!(write, read);
            read
        });
        let reply = if asked { answer() } else { Vec::new() };
        let result = self.runtime.block_on(async move {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&reply).await;
                let _ = stdin.shutdown().await;
            }
            if let Some(mut stdout) = stdout {
                let _ = stdout.read_to_end(&mut output).await;
            }
            let status = child.wait().await;
            let stderr = errors.await.unwrap_or_default();
            (status, output, stderr)
        });
        let (status, stdout, stderr) = result;
        self.finished(status, stdout, stderr, Step::Apply)
    }

    fn prober(&self) -> Box<dyn FnMut(u64) -> Result<(), String> + Send> {
        let mut args = session_args(&self.target);
        for option in ["ControlMaster=no", "ControlPath=none"] {
            args.push("-o".into());
            args.push(option.into());
        }
        args.push("--".into());
        args.push(self.target.host.clone().into());
        args.push("true".into());
        Box::new(move |seconds| {
            let child = Command::new("ssh")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|err| format!("cannot run ssh: {err}"))?;
            wait_with_deadline(child, Duration::from_secs(seconds.max(1)))
        })
    }

    fn run_held(&mut self, frame: &Frame<'_>) -> Option<Result<Finished, TransportError>> {
        let (child, stdout) = self.held.as_mut()?;
        let stdin = child.stdin().as_mut()?;
        let mut reader = HeldReader::new(frame.nonce);
        let answer = self.runtime.block_on(async {
            stdin.write_all(frame.header.as_bytes()).await?;
            stdin.write_all(frame.script.as_bytes()).await?;
            stdin.write_all(frame.input).await?;
            stdin.flush().await?;
            let mut buffer = vec![0u8; 65536];
            loop {
                let read = stdout.read(&mut buffer).await?;
                if read == 0 {
                    return Ok::<_, io::Error>(None);
                }
                if let Some(finished) = reader.feed(&buffer[..read]) {
                    return Ok(Some(finished));
                }
            }
        });
        Some(Ok(match answer {
            Ok(Some(finished)) => finished,
            // The held command ended (the connection dropped): a command that was cut off.
            Ok(None) | Err(_) => {
                self.release();
                reader.cut_off()
            }
        }))
    }

    fn release(&mut self) {
        if let Some((mut child, _)) = self.held.take() {
            // Closing its input ends the held command, which releases the node's lock. No need
            // to wait for that here: a next pacha waits for the lock briefly.
            drop(child.stdin().take());
            let _ = self.runtime.block_on(child.disconnect());
        }
    }

    fn close(mut self: Box<Self>) -> Result<(), TransportError> {
        self.release();
        if self.close_master
            && let Ok(session) = Arc::try_unwrap(self.session)
        {
            let _ = self.runtime.block_on(session.close());
        }
        Ok(())
    }
}

/// Whether ssh's error reads as a server that refused or dropped a new connection because it
/// was busy (rather than as a wrong key, host key or name): worth one more try.
fn busy_server(detail: &str) -> bool {
    [
        "Connection refused",
        "Connection reset by peer",
        "kex_exchange_identification",
        "Connection closed by remote host",
    ]
    .iter()
    .any(|sign| detail.contains(sign))
        && !detail.contains("Host key verification failed")
        && !detail.contains("Permission denied")
}

/// Waits for `child` (an `ssh … true`) at most `deadline`; its stderr is the error.
fn wait_with_deadline(mut child: std::process::Child, deadline: Duration) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                let stderr = stderr.trim();
                return Err(if stderr.is_empty() {
                    format!("a new SSH connection failed ({status})")
                } else {
                    format!("a new SSH connection failed: {stderr}")
                });
            }
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "a new SSH connection did not finish within {} s",
                    deadline.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(format!("waiting for ssh: {err}")),
        }
    }
}

#[cfg(test)]
mod busy_tests {
    use super::busy_server;

    #[test]
    fn only_a_busy_or_refusing_server_is_tried_again() {
        assert!(busy_server(
            "kex_exchange_identification: read: Connection reset by peer\r\n"
        ));
        assert!(busy_server(
            "ssh: connect to host 10.0.0.1 port 22: Connection refused\n"
        ));
        assert!(!busy_server("Permission denied (publickey).\n"));
        assert!(!busy_server("Host key verification failed.\n"));
        assert!(!busy_server(
            "ssh: Could not resolve hostname nowhere: Name or service not known\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use pacha_core::SshSettings;

    use super::*;

    fn target() -> Target {
        Target {
            transport: TransportKind::Ssh,
            host: "web1".into(),
            port: Some(2222),
            user: Some("deploy".into()),
            root: "/".into(),
            ssh: SshSettings {
                config_file: Some("/m/ssh config".into()),
                identity: Some("/m/keys/id_ed25519".into()),
                known_hosts: Some("/m/known hosts".into()),
                host_keys: None,
                connect_timeout: Some(3),
                persist: Some(60),
            },
        }
    }

    #[test]
    fn master_arguments() {
        let args: Vec<String> = master_args(&target(), Path::new("/run/p/abc"), Path::new("/run/p/abc.log"))
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "-o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o ServerAliveInterval=15 \
             -o UserKnownHostsFile=\"/m/known hosts\" -o IdentityFile=/m/keys/id_ed25519 \
             -o IdentitiesOnly=yes -F /m/ssh config -p 2222 -l deploy -o ControlPersist=60s -E /run/p/abc.log -S /run/p/abc -M -N -f -T -- web1"
        );
        let mut accept = target();
        accept.ssh.host_keys = Some(HostKeyPolicy::AcceptNew);
        accept.ssh.persist = Some(0);
        let args: Vec<String> = master_args(&accept, Path::new("/s"), Path::new("/l"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(args.contains(&"StrictHostKeyChecking=accept-new".to_owned()));
        assert!(args.contains(&"ControlPersist=1s".to_owned()), "{args:?}");
        // The destination always comes after `--`, so it can never be read as an option.
        assert_eq!(&args[args.len() - 2..], ["--", "web1"]);
    }

    #[test]
    fn socket_names_follow_the_destination() {
        let a = target();
        let mut b = target();
        assert_eq!(socket_name(&a), socket_name(&b));
        b.port = Some(22);
        assert_ne!(socket_name(&a), socket_name(&b));
        assert_eq!(socket_name(&a).len(), 16);
    }

    #[test]
    fn classifies_host_key_failures() {
        let log = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n";
        assert!(classify("web1", log, Some(255)).is_host_key());
        let refused = classify(
            "web1",
            "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
            Some(255),
        );
        assert_eq!(
            refused.to_string(),
            "web1: cannot connect: ssh: connect to host 127.0.0.1 port 1: Connection refused"
        );
        assert!(classify("web1", "", Some(255)).to_string().contains("exit status 255"));
    }

    #[test]
    fn control_dir_must_be_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ctl");
        private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        private_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&dir).unwrap_err().to_string().contains("mode 0700"));
    }
}
