//! Drawing results: node reports as text, live progress on a terminal, and the JSON views of
//! docs/json.md.

pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod views;
