//! Integration tests of pacha-transport.
