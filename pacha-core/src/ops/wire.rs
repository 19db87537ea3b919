//! The node↔master protocol of `pacha pull` and `pacha watch`: JSON messages, each framed as
//! its length in decimal on a line of its own followed by that many bytes, over one session
//! (the standard input and output of `pacha serve` on the master). The first exchange is a
//! handshake: both sides say their protocol version, and a mismatch ends the session with an
//! error that names both.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::edges::link::{LinkError, MasterLink};
use crate::model::hash::ContentHash;
use crate::model::mode::Mode;
use crate::model::path::NodePath;
use crate::model::plan::Plan;
use crate::model::snapshot::{Entry, Event, RecordedFile, Snapshot};

/// The version of the protocol this pacha speaks. Raised whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest message either side accepts (a plan with its contents).
const MAX_MESSAGE: usize = 1 << 30;

/// What a node asks its master.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum Request {
    /// The first message of a session.
    Hello {
        version: u32,
        pacha: String,
        /// The node's host name, for the records it makes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// The plan of `node` in `state` (its last recorded state when `None`), contents included.
    Plan { node: String, state: Option<String> },
    /// Record what the node did by itself (a pull).
    Record { event: Event, snapshot: Snapshot },
    /// The node's recorded files and track globs, for a watcher.
    WatchList { node: String },
    /// Record files the node saw change by hand.
    RecordChanges {
        node: String,
        changed: Vec<RecordedFile>,
        removed: Vec<NodePath>,
        /// When the node saw the change (seconds since the epoch): the record's author date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<i64>,
    },
}

/// What the master answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum Answer {
    Hello { version: u32, pacha: String },
    Plan { plan: Box<Plan> },
    Recorded { entry: Option<Entry> },
    WatchList { list: WatchList },
    Error { kind: String, message: String },
}

/// What a watcher watches: the node's root, its recorded files and its track globs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WatchList {
    pub(crate) root: String,
    pub(crate) files: Vec<Watched>,
    pub(crate) track: Vec<String>,
}

/// A file as the history has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Watched {
    pub(crate) path: NodePath,
    pub(crate) sha256: ContentHash,
    pub(crate) mode: Mode,
    pub(crate) owner: String,
    pub(crate) group: String,
}

/// This pacha's version, as the handshake says it.
pub(crate) fn pacha_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Writes one message.
pub fn write_message(output: &mut dyn Write, message: &[u8]) -> io::Result<()> {
    writeln!(output, "{}", message.len())?;
    output.write_all(message)?;
    output.flush()
}

/// Reads one message; `None` when the other side closed the session between messages.
pub fn read_message(input: &mut dyn BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let length: usize = line
        .trim_end_matches('\n')
        .parse()
        .ok()
        .filter(|length| *length <= MAX_MESSAGE)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a message length: {:?}", line.chars().take(60).collect::<String>()),
            )
        })?;
    let mut message = vec![0; length];
    input.read_exact(&mut message)?;
    Ok(Some(message))
}

/// The node's end of a session: a handshake first, then one request and its answer at a time.
pub(crate) struct Client<'a> {
    link: &'a mut dyn MasterLink,
    master: String,
}

impl<'a> Client<'a> {
    /// Opens the session: says our version and checks the master's.
    pub(crate) fn open(link: &'a mut dyn MasterLink) -> Result<Client<'a>, LinkError> {
        let master = link.describe();
        let mut client = Client { link, master };
        let host = client.link.host();
        let answer = client.call(&Request::Hello {
            version: PROTOCOL_VERSION,
            pacha: pacha_version(),
            host,
        })?;
        match answer {
            Answer::Hello { version, .. } if version == PROTOCOL_VERSION => Ok(client),
            Answer::Hello { version, pacha } => Err(LinkError::Version {
                master: client.master.clone(),
                ours: PROTOCOL_VERSION,
                our_pacha: pacha_version(),
                theirs: version,
                their_pacha: pacha,
            }),
            other => Err(client.unexpected(&other)),
        }
    }

    /// The master as given.
    pub(crate) fn master(&self) -> &str {
        &self.master
    }

    /// Sends `request`; an error answer becomes [`LinkError::Refused`].
    pub(crate) fn call(&mut self, request: &Request) -> Result<Answer, LinkError> {
        let message = serde_json::to_vec(request).map_err(|err| self.malformed(err.to_string()))?;
        let answer = self.link.exchange(&message)?;
        match serde_json::from_slice::<Answer>(&answer) {
            Ok(Answer::Error { kind, message }) => Err(LinkError::Refused {
                master: self.master.clone(),
                kind,
                message,
            }),
            Ok(answer) => Ok(answer),
            // A master older than the handshake answers with something else entirely.
            Err(err) => Err(self.malformed(err.to_string())),
        }
    }

    /// The error for an answer of the wrong type.
    pub(crate) fn unexpected(&self, answer: &Answer) -> LinkError {
        let kind = serde_json::to_value(answer)
            .ok()
            .and_then(|value| value["type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        self.malformed(format!("an answer of type {kind:?} where another was due"))
    }

    fn malformed(&self, detail: String) -> LinkError {
        LinkError::Malformed {
            master: self.master.clone(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let mut buffer = Vec::new();
        write_message(&mut buffer, b"{\"a\":1}").unwrap();
        write_message(&mut buffer, b"").unwrap();
        assert_eq!(buffer, b"7\n{\"a\":1}0\n");
        let mut input = io::Cursor::new(buffer);
        assert_eq!(read_message(&mut input).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(read_message(&mut input).unwrap().unwrap(), b"");
        assert_eq!(read_message(&mut input).unwrap(), None);
        let err = read_message(&mut io::Cursor::new(b"Welcome to the bastion\n".to_vec())).unwrap_err();
        assert!(err.to_string().contains("not a message length"), "{err}");
        assert!(read_message(&mut io::Cursor::new(b"10\nshort".to_vec())).is_err());
    }

    #[test]
    fn requests_are_tagged_json() {
        let request = Request::Plan {
            node: "web1".into(),
            state: None,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"type":"plan","node":"web1","state":null}"#);
        assert!(matches!(
            serde_json::from_str::<Request>(&json).unwrap(),
            Request::Plan { .. }
        ));
    }
}
