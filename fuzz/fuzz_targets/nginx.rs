//! An nginx config through `nginx_convert::convert_text`: parse, includes, translation, rendering.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Includes are read from disk. Relative ones resolve under a directory that does not exist
    // (an error, as for a missing file); absolute ones would read this machine's files, which
    // is slow and not the translator's code, so they are skipped.
    if absolute_include(text) {
        return;
    }
    let _ = nginx_convert::convert_text(Path::new("/nonexistent/umbra-fuzz/nginx.conf"), text);
});

/// Whether `include` is followed, after blanks and an optional quote, by `/`.
fn absolute_include(text: &str) -> bool {
    text.match_indices("include").any(|(i, word)| {
        text[i + word.len()..]
            .trim_start_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .starts_with('/')
    })
}
