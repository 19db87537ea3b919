//! The edges: traits other crates implement and the engine calls. A connection to a node
//! (`pacha-transport`), a history store (`pacha-vcs`), the planner (`pacha-render`), a node's
//! link to its master (`pacha-transport`), and the reporter the caller hears progress through.

pub(crate) mod connection;
pub(crate) mod history;
pub(crate) mod link;
pub(crate) mod planner;
pub(crate) mod report;
