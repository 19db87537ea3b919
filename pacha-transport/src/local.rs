//! Nodes on this machine (`transport: local`): the same snippets, run by the local `/bin/sh`.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use pacha_core::{Connection, Connector, Target, TransportError};

use crate::session::{Finished, Frame, Held, HeldReader, Shell, ShellConnection};

/// Connects to `transport: local` nodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalConnector {
    lock_wait: Option<Duration>,
}

impl LocalConnector {
    /// How long to wait for another pacha to release a node (default 10 s).
    pub fn with_lock_wait(mut self, lock_wait: Duration) -> LocalConnector {
        self.lock_wait = Some(lock_wait);
        self
    }
}

impl Connector for LocalConnector {
    fn connect(&self, _node: &str, target: &Target) -> Result<Box<dyn Connection>, TransportError> {
        let shell = LocalShell {
            host: target.host.clone(),
            held: None,
        };
        let connection = ShellConnection::new(Box::new(shell), &target.host, &target.root)
            .with_lock_wait(self.lock_wait.unwrap_or(crate::script::DEFAULT_LOCK_WAIT));
        Ok(Box::new(connection))
    }
}

/// `/bin/sh` on this machine.
pub(crate) struct LocalShell {
    host: String,
    held: Option<Child>,
}

impl LocalShell {
    fn io(&self, context: &str, source: std::io::Error) -> TransportError {
        TransportError::Io {
            host: self.host.clone(),
            context: context.to_owned(),
            source: std::sync::Arc::new(source),
        }
    }

    fn spawn(&self, script: &str) -> Result<Child, TransportError> {
        // A process group of its own, as sshd gives a session: stopping an apply stops its
        // scripts too.
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| self.io("starting /bin/sh", err))
    }
}

impl Shell for LocalShell {
    fn run(&mut self, script: &str, input: &[u8]) -> Result<Finished, TransportError> {
        let mut child = self.spawn(script)?;
        let mut stdin = child.stdin.take();
        let output = thread::scope(|scope| {
            let writer = scope.spawn(move || {
                if let Some(stdin) = stdin.as_mut() {
                    // The snippet may stop reading early (a failing step); that is reported
                    // through its exit status.
                    let _ = stdin.write_all(input);
                }
                drop(stdin);
            });
            let output = child.wait_with_output();
            let _ = writer.join();
            output
        })
        .map_err(|err| self.io("running /bin/sh", err))?;
        Ok(Finished {
            status: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn run_asking(
        &mut self,
        script: &str,
        input: &[u8],
        marker: &[u8],
        answer: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<Finished, TransportError> {
        let mut child = self.spawn(script)?;
        let mut stdin = child.stdin.take();
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| self.io("reading /bin/sh", std::io::Error::other("no stdout")))?;
        let stderr = child.stderr.take();
        let (output, stderr) = thread::scope(|scope| {
            let errors = scope.spawn(move || {
                let mut buffer = Vec::new();
                if let Some(mut pipe) = stderr {
                    let _ = pipe.read_to_end(&mut buffer);
                }
                buffer
            });
            let writer = scope.spawn(move || {
                if let Some(pipe) = stdin.as_mut() {
                    let _ = pipe.write_all(input);
                    let _ = pipe.flush();
                }
                stdin
            });
            let mut output = Vec::new();
            let mut buffer = [0u8; 65536];
            let mut asked = false;
            loop {
                match stdout.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => output.extend_from_slice(&buffer[..read]),
                }
                if output.ends_with(marker) {
                    asked = true;
                    break;
                }
            }
            let mut stdin = writer.join().unwrap_or(None);
            if asked {
                let reply = answer();
                if let Some(pipe) = stdin.as_mut() {
                    let _ = pipe.write_all(&reply);
                }
            }
            drop(stdin);
            let _ = stdout.read_to_end(&mut output);
            (output, errors.join().unwrap_or_default())
        });
        let status = child.wait().map_err(|err| self.io("running /bin/sh", err))?;
        Ok(Finished {
            status: status.code(),
            stdout: output,
            stderr,
        })
    }

    fn prober(&self) -> Box<dyn FnMut(u64) -> Result<(), String> + Send> {
        // This machine is reached without a login: there is none to lose.
        Box::new(|_| Ok(()))
    }

    fn start_held(&mut self, script: &str, marker: &[u8]) -> Result<Held, TransportError> {
        let mut child = self.spawn(script)?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| self.io("reading /bin/sh", std::io::Error::other("no stdout")))?;
        let mut output = Vec::new();
        let mut buffer = [0u8; 65536];
        loop {
            let read = stdout
                .read(&mut buffer)
                .map_err(|err| self.io("reading /bin/sh", err))?;
            if read == 0 {
                drop(child.stdin.take());
                let mut stderr = Vec::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_end(&mut stderr);
                }
                let status = child.wait().map_err(|err| self.io("waiting for /bin/sh", err))?;
                return Ok(Held::Exited(Finished {
                    status: status.code(),
                    stdout: output,
                    stderr,
                }));
            }
            output.extend_from_slice(&buffer[..read]);
            if output.ends_with(marker) {
                child.stdout = Some(stdout);
                self.held = Some(child);
                return Ok(Held::Running(output));
            }
        }
    }

    fn run_held(&mut self, frame: &Frame<'_>) -> Option<Result<Finished, TransportError>> {
        let child = self.held.as_mut()?;
        let (stdin, stdout) = (child.stdin.as_mut()?, child.stdout.as_mut()?);
        let mut reader = HeldReader::new(frame.nonce);
        let answer = (|| {
            stdin.write_all(frame.header.as_bytes())?;
            stdin.write_all(frame.script.as_bytes())?;
            stdin.write_all(frame.input)?;
            stdin.flush()?;
            let mut buffer = [0u8; 65536];
            loop {
                let read = stdout.read(&mut buffer)?;
                if read == 0 {
                    return Ok::<_, std::io::Error>(None);
                }
                if let Some(finished) = reader.feed(&buffer[..read]) {
                    return Ok(Some(finished));
                }
            }
        })();
        Some(Ok(match answer {
            Ok(Some(finished)) => finished,
            Ok(None) | Err(_) => {
                self.release();
                reader.cut_off()
            }
        }))
    }

    fn release(&mut self) {
        if let Some(mut child) = self.held.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    fn close(mut self: Box<Self>) -> Result<(), TransportError> {
        self.release();
        Ok(())
    }
}
