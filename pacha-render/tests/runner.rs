//! Integration tests of pacha-render over the fixture masters (one test binary for the crate).

mod invalid;
mod plans;
