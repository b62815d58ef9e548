//! Headless Chromium for the tests that check a page in a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Chromium, or a failure that says how to get it: these tests must not pass silently.
pub fn chromium() -> PathBuf {
    let candidates = [
        std::env::var_os("UMBRA_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium is needed to check the page; install it with \
                 `DEBIAN_FRONTEND=noninteractive apt-get install -y chromium` \
                 (or point UMBRA_CHROMIUM at a binary)"
            )
        })
}

/// The DOM of `url` once it has loaded and its scripts have run, and how long that took
/// (browser start-up included).
pub fn dump_dom(browser: &Path, url: &str, profile: &Path) -> (String, Duration) {
    let started = Instant::now();
    // The flags keep Chromium off the network: this machine has none, and it would retry.
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", browser.display()));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
    )
}
