//! A connection to a node as a shell that runs pacha's snippets: the same code over SSH and
//! locally, so both transports behave alike.

use std::time::Duration;

use pacha_core::{
    Applied, Apply, Connection, FailedValidation, Inspect, Inspection, LiveFile, NodePath, Step, TransportError,
};

use crate::parse::{self, Inspected};
use crate::script::{
    self, EXIT_INVALID, EXIT_LOCKED, EXIT_POST_FAILED, EXIT_PRE_FAILED, EXIT_ROLLED_BACK, EXIT_SYMLINKED,
};
use crate::shell::quote;

/// How a command on the node ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finished {
    /// The exit status; `None` when the command was killed or the connection dropped.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A command started and kept running (it holds the node's lock).
#[derive(Debug)]
pub(crate) enum Held {
    /// It printed its marker and is still running: what it printed.
    Running(Vec<u8>),
    /// It ended before its marker.
    Exited(Finished),
}

/// One snippet for the held command (`script::HELD_RUNNER`): what pacha writes (the header,
/// the snippet, its input) and the nonce its answer ends with.
pub(crate) struct Frame<'a> {
    pub header: String,
    pub script: &'a str,
    pub input: &'a [u8],
    pub nonce: &'a str,
}

impl<'a> Frame<'a> {
    /// `here`: run it in the held command's own foreground (a plain placement), not as a
    /// process group of its own.
    pub(crate) fn new(script: &'a str, input: &'a [u8], nonce: &'a str, here: bool) -> Frame<'a> {
        let how = if here { 'F' } else { 'B' };
        Frame {
            header: format!("RUN-{nonce} {} {} {how}\n", script.len(), input.len()),
            script,
            input,
            nonce,
        }
    }
}

/// The held command's answer to one snippet, read as it arrives: the snippet's output, then
/// `\nEXIT-<nonce> <status> <stderr bytes>\n` and its stderr.
pub(crate) struct HeldReader {
    marker: Vec<u8>,
    output: Vec<u8>,
    /// Where the marker may start, at the earliest (the output before is searched already).
    searched: usize,
}

impl HeldReader {
    pub(crate) fn new(nonce: &str) -> HeldReader {
        HeldReader {
            marker: format!("\nEXIT-{nonce} ").into_bytes(),
            output: Vec::new(),
            searched: 0,
        }
    }

    /// Adds what was read; the snippet's end once its answer is whole.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<Finished> {
        self.output.extend_from_slice(bytes);
        let found = self.output[self.searched..]
            .windows(self.marker.len())
            .position(|window| window == self.marker.as_slice());
        let Some(found) = found else {
            self.searched = self
                .output
                .len()
                .saturating_sub(self.marker.len() - 1)
                .max(self.searched);
            return None;
        };
        let at = self.searched + found;
        let rest = &self.output[at + self.marker.len()..];
        let end = rest.iter().position(|byte| *byte == b'\n')?;
        let line = String::from_utf8_lossy(&rest[..end]);
        let (status, length) = line.split_once(' ')?;
        let (status, length) = (status.parse::<i32>().ok()?, length.parse::<usize>().ok()?);
        let start = at + self.marker.len() + end + 1;
        if self.output.len() < start + length {
            return None;
        }
        let stderr = self.output[start..start + length].to_vec();
        self.output.truncate(at);
        Some(Finished {
            status: Some(status),
            stdout: std::mem::take(&mut self.output),
            stderr,
        })
    }

    /// The answer of a held command that ended (or whose connection dropped) before the end
    /// of its answer: a command cut off, with what it said.
    pub(crate) fn cut_off(self) -> Finished {
        Finished {
            status: None,
            stdout: self.output,
            stderr: Vec::new(),
        }
    }
}

/// A way to run `sh` snippets on a node.
pub(crate) trait Shell: Send {
    /// Runs `script` with `input` on its standard input, to its end.
    fn run(&mut self, script: &str, input: &[u8]) -> Result<Finished, TransportError>;
    /// Starts `script` and reads its output until it ends with `marker`; the command keeps
    /// running until [`Shell::release`].
    fn start_held(&mut self, script: &str, marker: &[u8]) -> Result<Held, TransportError>;
    /// Closes the held command's input, so that it ends.
    fn release(&mut self);
    /// Runs a snippet inside the held command (`script::HELD_RUNNER`), which holds the lock
    /// already: no session of its own. `None` when no command is held.
    fn run_held(&mut self, frame: &Frame<'_>) -> Option<Result<Finished, TransportError>>;
    /// Runs `script` with `input` on its standard input, which stays open: once the output
    /// ends with `marker`, `answer` says what to write to it before it is closed (when the
    /// output ends without the marker, nothing is asked). Then runs it to its end.
    fn run_asking(
        &mut self,
        script: &str,
        input: &[u8],
        marker: &[u8],
        answer: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<Finished, TransportError>;
    /// What opens a new connection to the node (no shared master) and runs `true` there,
    /// waiting at most the seconds it is given: whether the node still takes logins. The
    /// error says why not.
    fn prober(&self) -> Box<dyn FnMut(u64) -> Result<(), String> + Send>;
    /// Ends the connection (or keeps it for the next run, as configured).
    fn close(self: Box<Self>) -> Result<(), TransportError>;
}

/// Wraps a script so that a POSIX `sh` runs it whatever the login shell is.
pub(crate) fn sh_command(script: &str) -> String {
    format!("exec /bin/sh -c {}", quote(script))
}

/// A random token naming this connection's lock and temp files.
pub(crate) fn nonce() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
    if random.is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        bytes = (seed as u64 ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A [`Connection`] made of a [`Shell`].
pub(crate) struct ShellConnection {
    shell: Box<dyn Shell>,
    host: String,
    root: String,
    nonce: String,
    lock_wait: Duration,
}

impl ShellConnection {
    pub(crate) fn new(shell: Box<dyn Shell>, host: &str, root: &str) -> ShellConnection {
        ShellConnection {
            shell,
            host: host.to_owned(),
            root: root.to_owned(),
            nonce: nonce(),
            lock_wait: script::DEFAULT_LOCK_WAIT,
        }
    }

    /// How long to wait for another pacha to release the node (default 10 s).
    pub(crate) fn with_lock_wait(mut self, lock_wait: Duration) -> ShellConnection {
        self.lock_wait = lock_wait;
        self
    }

    fn remote_error(&self, step: Step, finished: &Finished) -> TransportError {
        let stderr = String::from_utf8_lossy(&finished.stderr).into_owned();
        match finished.status {
            Some(status) => TransportError::Remote {
                host: self.host.clone(),
                step,
                status,
                stderr,
            },
            None => TransportError::Disconnected {
                host: self.host.clone(),
                step,
                detail: stderr,
            },
        }
    }

    fn protocol(&self, step: Step, detail: String) -> TransportError {
        TransportError::Protocol {
            host: self.host.clone(),
            step,
            detail,
        }
    }

    fn symlinked(&self, finished: &Finished) -> Option<TransportError> {
        (finished.status == Some(EXIT_SYMLINKED))
            .then(|| parse::symlinked_answer(&finished.stdout, &self.nonce))
            .flatten()
            .map(|folder| TransportError::Symlinked {
                host: self.host.clone(),
                folder,
            })
    }

    fn inspect_chunk(
        &mut self,
        paths: &[String],
        guarded: &[String],
        contents: bool,
        lock: Option<&str>,
    ) -> Result<Inspection, TransportError> {
        let snippet = script::inspect(&self.root, &self.nonce, paths, guarded, contents, lock, self.lock_wait);
        let output = if lock.is_some() {
            let marker = format!("END-{}\n", self.nonce);
            match self.shell.start_held(&snippet, marker.as_bytes())? {
                Held::Running(output) => output,
                Held::Exited(finished) if finished.status == Some(EXIT_LOCKED) => finished.stdout,
                Held::Exited(finished) if finished.status == Some(EXIT_SYMLINKED) => finished.stdout,
                Held::Exited(finished) => {
                    return Err(self.remote_error(Step::Inspect, &finished));
                }
            }
        } else {
            let finished = self.shell.run(&snippet, &[])?;
            if let Some(err) = self.symlinked(&finished) {
                return Err(err);
            }
            if finished.status != Some(0) {
                return Err(self.remote_error(Step::Inspect, &finished));
            }
            finished.stdout
        };
        match parse::parse_inspection(&output, paths.len(), contents, &self.nonce) {
            Ok(Inspected::Done(inspection)) => Ok(inspection),
            Ok(Inspected::Locked(holder)) => Err(TransportError::Locked {
                host: self.host.clone(),
                holder,
            }),
            Ok(Inspected::Symlinked(folder)) => Err(TransportError::Symlinked {
                host: self.host.clone(),
                folder,
            }),
            Err(detail) => Err(self.protocol(Step::Inspect, detail)),
        }
    }
}

impl Connection for ShellConnection {
    fn inspect(&mut self, request: &Inspect<'_>) -> Result<Inspection, TransportError> {
        let paths: Vec<String> = request.paths.iter().map(|path| path.under_root(&self.root)).collect();
        // Keep each snippet under the size of one command line.
        let mut chunks: Vec<&[String]> = Vec::new();
        let (mut start, mut size) = (0, 0);
        for (index, path) in paths.iter().enumerate() {
            if size + path.len() + 3 > script::MAX_SCRIPT - 4096 && index > start {
                chunks.push(&paths[start..index]);
                start = index;
                size = 0;
            }
            size += path.len() + 3;
        }
        chunks.push(&paths[start..]);
        // The first chunk (which takes the lock) checks the folders of every chunk's paths.
        let guarded = script::guarded_folders(request.paths, &self.root);
        let mut whole = Inspection::default();
        for (index, chunk) in chunks.into_iter().enumerate() {
            let lock = if index == 0 { request.lock } else { None };
            let guarded: &[String] = if index == 0 { &guarded } else { &[] };
            let part = self.inspect_chunk(chunk, guarded, request.contents, lock)?;
            if index == 0 {
                whole.pending_post = part.pending_post;
                whole.journal = part.journal;
            }
            whole.files.extend(part.files);
            whole.contents.extend(part.contents);
        }
        Ok(whole)
    }

    fn apply(&mut self, request: &Apply<'_>) -> Result<Applied, TransportError> {
        let mut applied = Applied::default();
        for step in script::apply_steps(request) {
            let finished = match request.confirm.filter(|_| step.transaction) {
                Some(seconds) => {
                    let (snippet, input) = script::apply(request, &step, &self.root, &self.nonce, false);
                    let marker = format!("AWAIT-{}\n", self.nonce);
                    let nonce = self.nonce.clone();
                    let mut probe = self.shell.prober();
                    let mut probe_failed = None;
                    let finished =
                        self.shell
                            // The answer must reach the node before it stops waiting.
                            .run_asking(&snippet, &input, marker.as_bytes(), &mut || match probe(
                                (seconds * 3 / 4).max(1),
                            ) {
                                Ok(()) => format!("CONFIRM-{nonce}\n").into_bytes(),
                                Err(why) => {
                                    probe_failed = Some(why);
                                    format!("REVERT-{nonce}\n").into_bytes()
                                }
                            })?;
                    applied.probe_failed = probe_failed;
                    finished
                }
                None => {
                    let (snippet, input) = script::apply(request, &step, &self.root, &self.nonce, true);
                    let here = script::plain_placement(request, &step);
                    match self.shell.run_held(&Frame::new(&snippet, &input, &self.nonce, here)) {
                        Some(finished) => finished?,
                        None => {
                            // On a command line of its own: nothing but paths and modes in it.
                            let (snippet, input) = script::apply(request, &step, &self.root, &self.nonce, false);
                            self.shell.run(&snippet, &input)?
                        }
                    }
                }
            };
            if let Some(err) = self.symlinked(&finished) {
                return Err(err);
            }
            let ids: Vec<String> = step
                .pre
                .iter()
                .chain(step.post)
                .chain(step.health)
                .map(|planned| planned.id())
                .collect();
            let parsed = parse::parse_applied(&finished.stdout, &ids, step.files.len(), &self.nonce)
                .map_err(|detail| self.protocol(Step::Apply, detail))?;
            applied.scripts.extend(parsed.scripts);
            if let Some(incomplete) = parsed.reverted {
                applied.rolled_back = true;
                applied.restore_incomplete = incomplete;
                applied.after_rollback = parsed.after_revert;
            }
            if let Some((index, status, output)) = parsed.refused
                && let Some(file) = step.files.get(index)
            {
                applied.validation = Some(FailedValidation {
                    path: file.destination.clone(),
                    command: file.validate.clone().unwrap_or_default(),
                    status,
                    output,
                });
            }
            if parsed.placed {
                applied.placed = true;
                for (placement, stat) in step.files.iter().zip(parsed.placed_stats) {
                    applied
                        .placed_stats
                        .push(LiveFile::File(stat.with_hash(placement.sha256)));
                }
            }
            match finished.status {
                Some(0) if parsed.done => {}
                Some(EXIT_PRE_FAILED | EXIT_POST_FAILED) if applied.failed_script().is_some() => {
                    return Ok(applied);
                }
                Some(EXIT_INVALID) if applied.validation.is_some() => return Ok(applied),
                Some(EXIT_ROLLED_BACK) if applied.rolled_back => return Ok(applied),
                _ => return Err(self.remote_error(Step::Apply, &finished)),
            }
        }
        Ok(applied)
    }

    fn find(&mut self, folders: &[NodePath]) -> Result<Vec<NodePath>, TransportError> {
        // A searched folder is checked like the folders above it: find must not leave the root.
        let below: Vec<NodePath> = folders.iter().filter_map(|folder| folder.join("x").ok()).collect();
        let guarded = script::guarded_folders(&below, &self.root);
        let folders: Vec<String> = folders.iter().map(|folder| folder.under_root(&self.root)).collect();
        let finished = self
            .shell
            .run(&script::find(&self.root, &folders, &guarded, &self.nonce), &[])?;
        if let Some(err) = self.symlinked(&finished) {
            return Err(err);
        }
        if finished.status != Some(0) {
            return Err(self.remote_error(Step::Find, &finished));
        }
        parse::parse_found(&finished.stdout, &self.root, &self.nonce)
            .map_err(|detail| self.protocol(Step::Find, detail))
    }

    fn missing_programs(&mut self, programs: &[&str]) -> Result<Vec<String>, TransportError> {
        let words: String = programs.iter().map(|program| format!(" {}", quote(program))).collect();
        let script =
            format!("set --{words}\nfor c do command -v \"$c\" >/dev/null 2>&1 || printf '%s\\n' \"$c\"; done\n");
        let finished = self.shell.run(&script, &[])?;
        if finished.status != Some(0) {
            return Err(self.remote_error(Step::Run, &finished));
        }
        Ok(String::from_utf8_lossy(&finished.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|line| !line.is_empty())
            .collect())
    }

    fn close(mut self: Box<Self>) -> Result<(), TransportError> {
        self.shell.release();
        self.shell.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_answer_is_read_to_its_end() {
        // Whole, or a byte at a time: the same answer.
        let done = b"BEGIN-n\nDONE\n\nEXIT-n 71 5\noops\n";
        let mut whole = HeldReader::new("n");
        let finished = whole.feed(done).unwrap();
        assert_eq!(
            (finished.status, &finished.stdout[..], &finished.stderr[..]),
            (Some(71), &b"BEGIN-n\nDONE\n"[..], &b"oops\n"[..])
        );
        let mut bytewise = HeldReader::new("n");
        let mut answer = None;
        for byte in done {
            assert!(answer.is_none(), "the answer ends with its stderr");
            answer = bytewise.feed(&[*byte]);
        }
        assert_eq!(answer.unwrap().stdout, b"BEGIN-n\nDONE\n");
        assert_eq!(HeldReader::new("n").feed(b"x\nEXIT-n 0 0\n").unwrap().status, Some(0));
        for partial in [
            &b"BEGIN-n\n"[..],
            b"x\nEXIT-n 0",
            b"x\nEXIT-n 0 5\nabc",
            b"x\nEXIT-m 0 0\n",
        ] {
            let mut reader = HeldReader::new("n");
            assert!(reader.feed(partial).is_none());
            assert_eq!(reader.cut_off().stdout, partial, "cut off, it keeps what it said");
        }
    }
}
