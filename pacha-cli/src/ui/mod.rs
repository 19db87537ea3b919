//! Drawing results: node reports as text, live progress on a terminal, and the JSON views of
//! docs/json.md.

pub mod progress;
pub mod report;
pub mod views;
