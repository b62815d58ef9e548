//! RFC 5545 content lines: unfolding, `NAME;PARAM=VALUE:VALUE` splitting and TEXT unescaping.
//!
//! Hand-written rather than taken from the `ical` crate because every error must name the
//! physical line it came from, and the grammar is small.

/// One unfolded content line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentLine {
    /// 1-based physical line where the property starts.
    pub line: usize,
    /// Property name, upper-cased (`DTSTART`).
    pub name: String,
    /// Parameters in order of appearance.
    pub params: Vec<Param>,
    /// Raw value after the first unquoted colon, still escaped.
    pub value: String,
}

/// One property parameter (`TZID=Europe/Berlin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    /// Parameter name, upper-cased.
    pub name: String,
    /// Values, quotes removed.
    pub values: Vec<String>,
}

impl ContentLine {
    /// First value of parameter `name` (upper-case), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.values.first())
            .map(String::as_str)
    }
}

/// A malformed line: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// 1-based physical line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits `text` into unfolded content lines. Blank lines are skipped (some producers emit them).
pub(crate) fn content_lines(text: &str) -> Result<Vec<ContentLine>, LexError> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let physical = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = physical
            .strip_prefix(' ')
            .or_else(|| physical.strip_prefix('\t'))
        {
            match current.as_mut() {
                Some((_, logical)) => logical.push_str(rest),
                None => {
                    return Err(LexError {
                        line: number,
                        message: "continuation line (starts with a space) with no property \
                                  before it"
                            .into(),
                    });
                }
            }
            continue;
        }
        if let Some((line, logical)) = current.take() {
            out.push(split_line(line, &logical)?);
        }
        if !physical.trim().is_empty() {
            current = Some((number, physical.to_string()));
        }
    }
    if let Some((line, logical)) = current {
        out.push(split_line(line, &logical)?);
    }
    Ok(out)
}

/// Splits one logical line into name, parameters and value.
fn split_line(line: usize, text: &str) -> Result<ContentLine, LexError> {
    let err = |message: String| LexError { line, message };
    let name_end = text.find([';', ':']).ok_or_else(|| {
        err(format!(
            "expected NAME:VALUE, found {:?}",
            shorten(text, 60)
        ))
    })?;
    let name = &text[..name_end];
    if !is_name(name) {
        return Err(err(format!(
            "invalid property name {:?}",
            shorten(name, 60)
        )));
    }
    let mut params = Vec::new();
    // All delimiters are ASCII, so byte indexes below always sit on char boundaries.
    let mut rest = &text[name_end..];
    while let Some(after) = rest.strip_prefix(';') {
        let eq = after
            .find('=')
            .ok_or_else(|| err(format!("parameter without '=' in {name}")))?;
        let pname = &after[..eq];
        if !is_name(pname) {
            return Err(err(format!(
                "invalid parameter name {:?} in {name}",
                shorten(pname, 60)
            )));
        }
        let mut values = Vec::new();
        let mut tail = &after[eq + 1..];
        loop {
            let (value, next) = if let Some(quoted) = tail.strip_prefix('"') {
                let close = quoted
                    .find('"')
                    .ok_or_else(|| err(format!("unterminated quote in {name};{pname}")))?;
                (&quoted[..close], &quoted[close + 1..])
            } else {
                let stop = tail.find([',', ';', ':']).unwrap_or(tail.len());
                (&tail[..stop], &tail[stop..])
            };
            values.push(value.to_string());
            match next.strip_prefix(',') {
                Some(more) => tail = more,
                None => {
                    tail = next;
                    break;
                }
            }
        }
        params.push(Param {
            name: pname.to_ascii_uppercase(),
            values,
        });
        rest = tail;
    }
    let value = rest
        .strip_prefix(':')
        .ok_or_else(|| err(format!("expected ':' before the value of {name}")))?;
    Ok(ContentLine {
        line,
        name: name.to_ascii_uppercase(),
        params,
        value: value.to_string(),
    })
}

/// RFC 5545 `name`: IANA token or X-name, letters, digits and dashes.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The first `max` chars of `s`, for error messages that must stay one line.
fn shorten(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Undoes TEXT escaping (`\,` `\;` `\\` `\n`).
pub(crate) fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_splits_parameters() {
        let text = "BEGIN:VEVENT\r\nSUMMARY:Black\r\n  Friday\r\nDTSTART;TZID=\"America/New_York\";VALUE=DATE-TIME:20241129T090000\r\n\r\nEND:VEVENT";
        let lines = content_lines(text);
        let Ok(lines) = lines else {
            panic!("{lines:?}")
        };
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].name, "SUMMARY");
        assert_eq!(lines[1].value, "Black Friday");
        assert_eq!(lines[2].line, 4);
        assert_eq!(lines[2].param("TZID"), Some("America/New_York"));
        assert_eq!(lines[2].param("VALUE"), Some("DATE-TIME"));
        assert_eq!(lines[2].value, "20241129T090000");
        assert_eq!(lines[3].line, 6);
    }

    #[test]
    fn quoted_parameter_may_hold_colons_and_commas() {
        let lines = content_lines("ATTENDEE;CN=\"Doe, J: ops\";ROLE=A,B:mailto:j@example.com");
        let Ok(lines) = lines else {
            panic!("{lines:?}")
        };
        assert_eq!(lines[0].param("CN"), Some("Doe, J: ops"));
        assert_eq!(lines[0].params[1].values, vec!["A", "B"]);
        assert_eq!(lines[0].value, "mailto:j@example.com");
    }

    #[test]
    fn rejects_malformed_lines_with_their_number() {
        for (text, line) in [
            ("BEGIN:VCALENDAR\nno colon here", 2),
            (" leading continuation", 1),
            ("BEGIN:VCALENDAR\nDTSTART;TZID=\"open:1", 2),
            ("BAD NAME:x", 1),
        ] {
            let got = content_lines(text);
            assert!(
                matches!(&got, Err(e) if e.line == line),
                "{text:?}: {got:?}"
            );
        }
    }

    #[test]
    fn text_unescaping() {
        assert_eq!(unescape_text(r"a\, b\; c\\d\ne\"), "a, b; c\\d\ne\\");
    }
}
