//! Helpers shared by the integration tests: fixed times and paths to fixtures and examples.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// An RFC 3339 literal as a UTC time; panics on a typo in the test itself.
pub fn utc(s: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(e) => panic!("bad test time {s:?}: {e}"),
    }
}

/// Unix seconds of an RFC 3339 literal.
pub fn unix(s: &str) -> i64 {
    utc(s).timestamp()
}

/// Path of a file in `signals/tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Path of a file in the workspace's `examples/signals/`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/signals")
        .join(name)
}

/// Text of a fixture file.
pub fn read_fixture(name: &str) -> String {
    let path = fixture(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}
