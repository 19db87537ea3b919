//! The link edge: how a node reaches its master (`pacha pull`, `pacha watch`). A link carries
//! messages; what they say (the node↔master protocol) is in `ops::wire`. `pacha-transport`
//! implements it over SSH (`pacha serve` on the master) and locally (a master folder on the
//! same machine).

/// Why the master could not be reached, did not answer as the protocol says, or refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The master could not be reached (or refused the session).
    #[error("cannot reach the master {master}: {detail}")]
    Connect {
        /// The master as given (`[USER@]HOST:/DIR`, or a folder).
        master: String,
        /// What went wrong, with ssh's own message where there is one.
        detail: String,
    },
    /// The session ended before the master answered.
    #[error("the master {master} ended the session: {detail}")]
    Disconnected {
        /// The master as given.
        master: String,
        /// What the master or ssh said last.
        detail: String,
    },
    /// A local I/O error on the link.
    #[error("talking to the master {master}: {source}")]
    Io {
        /// The master as given.
        master: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The two sides speak different protocol versions.
    #[error(
        "the master {master} speaks pacha protocol {theirs} (pacha {their_pacha}), this node speaks {ours} (pacha {our_pacha}): install the same pacha version on both"
    )]
    Version {
        /// The master as given.
        master: String,
        /// Our protocol version.
        ours: u32,
        /// Our pacha version.
        our_pacha: String,
        /// The master's protocol version.
        theirs: u32,
        /// The master's pacha version.
        their_pacha: String,
    },
    /// The master answered with an error.
    #[error("the master {master} answered: {message}")]
    Refused {
        /// The master as given.
        master: String,
        /// The kind of error it reported (`refused`, `render`, `history`, …).
        kind: String,
        /// Its message.
        message: String,
    },
    /// The answer is not a message of the protocol.
    #[error("the master {master} sent something pacha cannot read: {detail}")]
    Malformed {
        /// The master as given.
        master: String,
        /// What was wrong.
        detail: String,
    },
}

/// A session with a master: one message out, one answer back, in order.
pub trait MasterLink: Send {
    /// The master as a person would name it (`admin@master:/opt/pacha`, or a folder).
    fn describe(&self) -> String;
    /// Sends one message and waits for its answer.
    fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, LinkError>;
    /// This host's name, told to the master when the session opens: the records it makes for
    /// this host say who did it (`pacha@<host>`).
    fn host(&self) -> Option<String> {
        None
    }
}
