//! The operations, over the edges: push and its record, rollback and rebuild, capture, status,
//! rendering many nodes, and both ends of pull and watch with the wire protocol between them.

pub(crate) mod capture;
pub(crate) mod journal;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod record;
pub(crate) mod render;
pub(crate) mod restore;
pub(crate) mod saved;
pub(crate) mod serve;
pub(crate) mod status;
#[cfg(test)]
mod tests;
pub(crate) mod watch;
pub(crate) mod wire;
