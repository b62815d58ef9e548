//! Reading a headed CSV whole: known columns by name, unknown ones refused, each row with the
//! line it came from.

use std::collections::HashMap;

use csv::{ReaderBuilder, StringRecord, Trim};

use crate::error::{Error, Problem};

/// A CSV read in full: column positions and rows with their 1-based line numbers.
pub(crate) struct Table {
    columns: HashMap<String, usize>,
    /// `(line, record)` per data row.
    pub rows: Vec<(usize, StringRecord)>,
}

impl Table {
    /// The trimmed cell of `column` in `row`; empty when the column is absent or the cell blank.
    pub fn cell<'r>(&self, row: &'r StringRecord, column: &str) -> &'r str {
        self.columns
            .get(column)
            .and_then(|&i| row.get(i))
            .unwrap_or("")
    }
}

/// Reads `text` as CSV with a header row. Every `required` column must be present; columns in
/// neither list are refused so that a typo in a header cannot drop a column silently. Lines
/// starting with `#` are comments; cells are trimmed.
pub(crate) fn read_table(
    name: &str,
    text: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<Table, Error> {
    let text = crate::input::strip_bom(text);
    let mut reader = ReaderBuilder::new()
        .trim(Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let expected = || {
        required
            .iter()
            .chain(optional)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lines = LineIndex::new(text);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(name, &lines, e))?
        .clone();
    let line = lines.line_of(headers.position());
    let mut columns = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let key = h.to_ascii_lowercase();
        if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            let field = if h.is_empty() { "(empty header)" } else { h };
            return Err(Error::invalid(
                name,
                Some(line),
                field,
                Problem::UnknownField {
                    expected: expected(),
                },
            ));
        }
        if columns.insert(key, i).is_some() {
            return Err(Error::invalid(
                name,
                Some(line),
                h,
                Problem::BadValue {
                    value: h.to_string(),
                    expected: "each column once".into(),
                },
            ));
        }
    }
    for column in required {
        if !columns.contains_key(*column) {
            return Err(Error::invalid(name, Some(line), *column, Problem::Missing));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(name, &lines, e))?;
        rows.push((lines.line_of(record.position()), record));
    }
    Ok(Table { columns, rows })
}

/// Line numbers from byte offsets. The csv crate's own line counter is off after CRLF endings,
/// blank lines and comments, and its byte offsets point at the terminator before a record, so
/// offsets are moved past blank and comment lines before they are counted.
struct LineIndex<'t> {
    text: &'t [u8],
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text: text.as_bytes(),
            starts,
        }
    }

    /// 1-based line of the first content at or after the position's byte offset.
    fn line_of(&self, position: Option<&csv::Position>) -> usize {
        let Some(mut byte) = position.and_then(|p| usize::try_from(p.byte()).ok()) else {
            return 1;
        };
        let t = self.text;
        loop {
            while byte < t.len() && (t[byte] == b'\r' || t[byte] == b'\n') {
                byte += 1;
            }
            let at_line_start = byte == 0 || t.get(byte - 1) == Some(&b'\n');
            if byte < t.len() && t[byte] == b'#' && at_line_start {
                byte = t[byte..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(t.len(), |n| byte + n + 1);
                continue;
            }
            break;
        }
        // Index of the last line starting at or before `byte`, made 1-based.
        self.starts.partition_point(|&s| s <= byte).max(1)
    }
}

/// A CSV-level error (ragged row, bad quoting) as an [`Error`] naming its line.
fn csv_error(name: &str, lines: &LineIndex<'_>, e: csv::Error) -> Error {
    let line = Some(lines.line_of(e.position()));
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("row has {len} cells, the header has {expected_len}"),
        _ => e.to_string(),
    };
    Error::invalid(name, line, "row", Problem::Syntax { message })
}

/// Splits a workloads cell: names separated by `;` or `|` (or `,` inside a quoted cell),
/// trimmed, duplicates dropped. Empty means "all workloads".
pub(crate) fn split_workloads(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in cell
        .split([';', '|', ','])
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        if !out.iter().any(|o| o == w) {
            out.push(w.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_line_numbers_past_comments() {
        let text = "# plan\nstart,end\n\n2024-01-01,2024-01-02\n# note\n2024-02-01,2024-02-02\n";
        let t = read_table("p.csv", text, &["start", "end"], &[]);
        let Ok(t) = t else { panic!("error") };
        let lines: Vec<usize> = t.rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![4, 6]);
        assert_eq!(t.cell(&t.rows[1].1, "end"), "2024-02-02");
    }

    #[test]
    fn header_problems_name_the_column() {
        let e = read_table("p.csv", "start,ned\n", &["start", "end"], &[]).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("p.csv:1: field `ned`: unknown field; expected one of start, end".into())
        );
        let e = read_table("p.csv", "start\n", &["start", "end"], &[]).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("p.csv:1: field `end`: missing".into())
        );
    }

    #[test]
    fn line_numbers_survive_crlf_blank_lines_and_quoted_newlines() {
        for (text, want) in [
            ("a,b\r\n1,2\r\n3,4\r\n", vec![2, 3]),
            ("a,b\n\n1,2\n\n\n3,4", vec![3, 6]),
            ("a,b\n\"x\ny\",2\n3,4\n", vec![2, 4]),
            ("#x\r\n#y\r\na,b\r\n#z\r\n1,2\r\n", vec![5]),
        ] {
            let t = read_table("p.csv", text, &["a", "b"], &[]);
            let Ok(t) = t else { panic!("{text:?}") };
            let lines: Vec<usize> = t.rows.iter().map(|(l, _)| *l).collect();
            assert_eq!(lines, want, "{text:?}");
        }
    }

    #[test]
    fn ragged_rows_are_refused_with_their_line() {
        let e = read_table("p.csv", "start,end\na,b\nc\n", &["start", "end"], &[]).err();
        assert!(
            matches!(&e, Some(Error::Invalid { line: Some(3), .. })),
            "{e:?}"
        );
    }

    #[test]
    fn workloads_split_and_dedup() {
        assert_eq!(split_workloads(" a; b|a ,c "), vec!["a", "b", "c"]);
        assert!(split_workloads("  ").is_empty());
    }
}
