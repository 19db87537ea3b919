//! Serve: the master's end of pull and watch. A [`Server`] answers the messages of one session
//! through the engine; restricted to one node, it answers only for that node.

use std::io::{self, BufRead, Write};

use crate::edges::history::History;
use crate::error::EngineError;
use crate::master::Master;
use crate::model::snapshot::Event;
use crate::ops::record::{last_state, latest_snapshot, record_changes, record_reported};
use crate::ops::render::Rendering;
use crate::ops::wire::{self, Answer, PROTOCOL_VERSION, Request, WatchList, Watched};

/// Answers the requests of nodes.
pub struct Server<'a> {
    master: &'a Master,
    rendering: &'a Rendering<'a>,
    history: &'a dyn History,
    only: Option<String>,
    /// The host name the node gave when the session opened.
    host: std::sync::Mutex<Option<String>>,
    /// Every request refused as another node's, for the master's log.
    refused: std::sync::Mutex<Vec<String>>,
}

impl<'a> Server<'a> {
    /// A server of `master` (plans from `rendering`, records in `history`); with `only`, a
    /// session may ask for that node alone. `Engine::serve` makes one.
    pub(crate) fn new(
        master: &'a Master,
        rendering: &'a Rendering<'a>,
        history: &'a dyn History,
        only: Option<&str>,
    ) -> Server<'a> {
        Server {
            master,
            rendering,
            history,
            only: only.map(str::to_owned),
            host: std::sync::Mutex::default(),
            refused: std::sync::Mutex::default(),
        }
    }

    /// Answers one message.
    pub fn answer(&self, message: &[u8]) -> Vec<u8> {
        let answer = match serde_json::from_slice::<Request>(message) {
            Ok(request) => self.handle(request).unwrap_or_else(|err| Answer::Error {
                kind: error_kind(&err).to_owned(),
                message: err.to_string(),
            }),
            Err(err) => Answer::Error {
                kind: "protocol".to_owned(),
                message: format!("not a request of pacha protocol {PROTOCOL_VERSION}: {err}"),
            },
        };
        serde_json::to_vec(&answer).unwrap_or_else(|err| {
            format!(
                "{{\"type\":\"error\",\"kind\":\"protocol\",\"message\":{:?}}}",
                err.to_string()
            )
            .into_bytes()
        })
    }

    /// Answers every message of a session read from `input`, until the node closes it.
    pub fn serve(&self, input: &mut dyn BufRead, output: &mut dyn Write) -> io::Result<()> {
        while let Some(message) = wire::read_message(input)? {
            wire::write_message(output, &self.answer(&message))?;
        }
        Ok(())
    }

    /// The host name the node gave, if it gave one.
    fn host(&self) -> Option<String> {
        self.host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Refuses a request for another node than the one this session is for.
    fn allowed(&self, node: &str) -> Result<(), Refusal> {
        match &self.only {
            Some(only) if only != node => {
                let message = format!("this key may only act for node {only:?}, not {node:?}");
                let host = self.host().unwrap_or_else(|| "a host that gave no name".to_owned());
                self.refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(format!(
                        "refused {host} (key of node {only:?}) asking for node {node:?}"
                    ));
                Err(Refusal(message))
            }
            _ => Ok(()),
        }
    }

    /// The requests refused so far as another node's (one line each), for the master's log.
    pub fn refusals(&self) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn handle(&self, request: Request) -> Result<Answer, ServeError> {
        match request {
            Request::Hello { host, .. } => {
                *self.host.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = host.as_deref().map(host_name);
                Ok(Answer::Hello {
                    version: PROTOCOL_VERSION,
                    pacha: wire::pacha_version(),
                })
            }
            Request::Plan { node, state } => {
                self.allowed(&node)?;
                let state = match state {
                    Some(state) => state,
                    None => last_state(self.history, &node).map_err(EngineError::from)?,
                };
                let plan = self.rendering.plan(&node, &state)?;
                Ok(Answer::Plan { plan: Box::new(plan) })
            }
            Request::Record { mut event, snapshot } => {
                self.allowed(&event.node)?;
                // Who did it is what the session said, not what the event claims.
                event.host = self.host();
                let Event { node, .. } = &event;
                let track = self.master.track(node).map_err(EngineError::from)?;
                snapshot.verify().map_err(EngineError::from)?;
                let entry = record_reported(self.history, &event, snapshot, &track).map_err(EngineError::from)?;
                Ok(Answer::Recorded { entry: Some(entry) })
            }
            Request::WatchList { node } => {
                self.allowed(&node)?;
                let target = self.master.target(&node).map_err(EngineError::from)?;
                let track = self.master.node(&node).map_err(EngineError::from)?.track.clone();
                let files = match latest_snapshot(self.history, &node).map_err(EngineError::from)? {
                    Some((_, snapshot)) => snapshot
                        .files
                        .into_iter()
                        .map(|file| Watched {
                            path: file.path,
                            sha256: file.sha256,
                            mode: file.mode,
                            owner: file.owner,
                            group: file.group,
                        })
                        .collect(),
                    None => Vec::new(),
                };
                Ok(Answer::WatchList {
                    list: WatchList {
                        root: target.root,
                        files,
                        track,
                    },
                })
            }
            Request::RecordChanges {
                node,
                changed,
                removed,
                at,
            } => {
                self.allowed(&node)?;
                self.master.node(&node).map_err(EngineError::from)?;
                for file in &changed {
                    crate::model::hash::Damaged::check(&file.content, file.sha256, || file.path.to_string())
                        .map_err(EngineError::from)?;
                }
                let host = self.host();
                // A host's clock may run ahead: a change never happened after it was recorded.
                let now = crate::model::snapshot::unix_seconds(std::time::SystemTime::now());
                let at = at.map(|at| at.min(now));
                let entry = record_changes(self.history, &node, changed, &removed, host.as_deref(), at)
                    .map_err(EngineError::from)?;
                Ok(Answer::Recorded { entry })
            }
        }
    }
}

/// A request this session may not make.
#[derive(Debug)]
struct Refusal(String);

/// Why a request got an error answer.
#[derive(Debug)]
enum ServeError {
    Refused(Refusal),
    Engine(EngineError),
}

impl From<Refusal> for ServeError {
    fn from(refusal: Refusal) -> ServeError {
        ServeError::Refused(refusal)
    }
}

impl From<EngineError> for ServeError {
    fn from(err: EngineError) -> ServeError {
        ServeError::Engine(err)
    }
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Refused(Refusal(message)) => f.write_str(message),
            ServeError::Engine(err) => write!(f, "{err}"),
        }
    }
}

fn error_kind(err: &ServeError) -> &'static str {
    match err {
        ServeError::Refused(_) => "refused",
        ServeError::Engine(EngineError::Render { .. }) => "render",
        ServeError::Engine(EngineError::History(_)) => "history",
        ServeError::Engine(EngineError::Config(_) | EngineError::Graph(_)) => "config",
        ServeError::Engine(_) => "error",
    }
}

/// A host name as a node gave it, kept to what a host name holds (letters, digits, `.`, `-`,
/// `_`; at most 64): it goes into commit authors and trailers.
fn host_name(given: &str) -> String {
    let name: String = given
        .chars()
        .filter(|character| character.is_ascii_alphanumeric() || ".-_".contains(*character))
        .take(64)
        .collect();
    if name.is_empty() { "unnamed".to_owned() } else { name }
}
