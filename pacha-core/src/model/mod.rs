//! The model: plain data with no I/O. Names, paths, modes and hashes; variables and settings;
//! nodes and meta nodes as their files define them; where a node is; the plan of a node; and
//! what the history records of it.

pub(crate) mod bytes;
pub(crate) mod hash;
pub(crate) mod mode;
pub(crate) mod name;
pub(crate) mod node;
pub(crate) mod path;
pub(crate) mod plan;
pub(crate) mod rollout;
pub(crate) mod settings;
pub(crate) mod snapshot;
pub(crate) mod target;
pub(crate) mod track;
pub mod vars;
