//! Reading inputs: files as UTF-8 text for the `load_*` helpers, byte-order marks dropped.

use crate::error::Error;

/// Reads a whole file as UTF-8 for the `load_*` helpers.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        name: path.display().to_string(),
        source,
    })
}

/// Drops a UTF-8 byte-order mark, which spreadsheet exports put before the header.
pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}
