//! Social posts from a JSON Lines feed, and pre-counted social volume from a CSV series.
//!
//! Posts, one JSON object per line:
//!
//! ```text
//! {"timestamp": "2024-11-29T09:00:00Z", "text": "Black Friday deals are live!"}
//! {"timestamp": 1732870800, "text": "checkout is so slow today", "id": "p2"}
//! ```
//!
//! `timestamp` is RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or unix seconds; `text` may be empty.
//! Other fields are ignored: social feeds carry ids, authors and metrics that are no concern of
//! ours, and both fields we need are required, so a misspelt one still fails.
//!
//! Volume series, the shape of the Numenta NAB Twitter traces (`timestamp,value`, one row per
//! interval, `value` a non-negative count):
//!
//! ```text
//! timestamp,value
//! 2015-02-26 21:42:53,104
//! ```

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::csv_table::read_table;
use crate::error::{Error, Problem};
use crate::json_lines::{Fields, json_values, kind_of};
use crate::time::{json_time, parse_written_time};

/// One social post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// When it was posted.
    pub timestamp: DateTime<Utc>,
    /// What it says.
    pub text: String,
}

/// A pre-counted number of posts in the interval starting at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumePoint {
    /// Start of the interval the count covers.
    pub at: DateTime<Utc>,
    /// Number of posts.
    pub count: u64,
}

/// Parses a JSON Lines feed of posts. All lines are checked before anything is returned.
pub fn parse_posts(name: &str, text: &str) -> Result<Vec<Post>, Error> {
    json_values(name, text)?
        .iter()
        .map(|(line, value)| {
            let f = Fields::of(name, Some(*line), "", "post", value)?;
            let timestamp = f
                .get("timestamp")
                .ok_or_else(|| f.error("timestamp", Problem::Missing))
                .and_then(|v| json_time(v).map_err(|p| f.error("timestamp", p)))?;
            let text = match f.get("text") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(f.error(
                        "text",
                        Problem::BadValue {
                            value: kind_of(other).into(),
                            expected: "a string".into(),
                        },
                    ));
                }
                None => return Err(f.error("text", Problem::Missing)),
            };
            Ok(Post { timestamp, text })
        })
        .collect()
}

/// Reads and parses a posts feed; the path is the input's name.
pub fn load_posts(path: impl AsRef<std::path::Path>) -> Result<Vec<Post>, Error> {
    let path = path.as_ref();
    parse_posts(&path.display().to_string(), &crate::input::read_text(path)?)
}

/// Parses a `timestamp,value` volume series (timestamps as in the module docs, UTC when naive).
pub fn parse_volume_series(name: &str, text: &str) -> Result<Vec<VolumePoint>, Error> {
    let table = read_table(name, text, &["timestamp", "value"], &[])?;
    table
        .rows
        .iter()
        .map(|(line, row)| {
            let at = |field: &str, problem| Error::invalid(name, Some(*line), field, problem);
            let when = parse_written_time(table.cell(row, "timestamp"))
                .map_err(|p| at("timestamp", p))?
                .at;
            let raw = table.cell(row, "value");
            if raw.is_empty() {
                return Err(at("value", Problem::Missing));
            }
            let count = raw.parse::<u64>().map_err(|_| {
                at(
                    "value",
                    Problem::BadNumber {
                        value: raw.to_string(),
                        expected: "a whole number of posts, 0 or more",
                    },
                )
            })?;
            Ok(VolumePoint { at: when, count })
        })
        .collect()
}

/// Reads and parses a volume series; the path is the input's name.
pub fn load_volume_series(path: impl AsRef<std::path::Path>) -> Result<Vec<VolumePoint>, Error> {
    let path = path.as_ref();
    parse_volume_series(&path.display().to_string(), &crate::input::read_text(path)?)
}
