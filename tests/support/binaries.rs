//! Finds the workspace's real binaries, (re)building them once per test process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Path of binary `name` (`umbra-proxy`, `umbra`) in the same target profile as this test
/// (or as the binary using this library).
///
/// The first call runs `cargo build --bins` with this test's profile: a test of one package
/// alone would otherwise run against a stale or missing binary of another package. Cargo makes
/// it a no-op when everything is fresh.
pub fn binary(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>; a binary built on this library
        // (bench/chaos) lives in target/<profile> itself.
        let parent = exe.parent().expect("executable has a directory");
        let dir = if parent.ends_with("deps") {
            parent.parent().unwrap_or(parent)
        } else {
            parent
        }
        .to_path_buf();
        if let Ok(cargo) = std::env::var("CARGO") {
            let profile = dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
            let profile = if profile == "debug" { "dev" } else { profile };
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "--workspace",
                    "--bins",
                    "--profile",
                    profile,
                ])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build --bins failed");
        }
        dir
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} not found", path.display());
    path
}
