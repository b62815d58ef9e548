//! A policy file (`policies/<name>.toml`) through `config::parse_policy`, as the controller loads it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::parse_policy(Path::new("/etc/umbra/policies/default.toml"), text);
});
