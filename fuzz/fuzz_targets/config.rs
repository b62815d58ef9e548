//! `umbra.toml` text through the config crate's parser and validator, as `config::load` runs it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `load` reads with `read_to_string`: text that is not UTF-8 never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A fixed environment, so `env:NAME` tokens resolve the same way on every run.
    let env = |name: &str| {
        (name == "UMBRA_ADMIN_TOKEN").then(|| "fuzz-token-0123456789abcdef".to_string())
    };
    let _ = config::parse_with_env(Path::new("/etc/umbra/umbra.toml"), text, &env);
});
