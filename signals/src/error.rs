//! Errors of the signal parsers: which input, which line, which field, and what is wrong.

use std::fmt;

/// Why one input (file, feed, webhook body) could not be turned into signals.
///
/// Parsers read the whole input before returning, so an `Err` means nothing from that input was
/// ingested.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{name}: cannot read: {source}")]
    Read {
        /// The path as given.
        name: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The input was read but a value in it is wrong.
    #[error("{name}{at}: field `{field}`: {problem}", at = LineSuffix(*.line))]
    Invalid {
        /// The name the caller gave the input (usually its path).
        name: String,
        /// 1-based line the problem is on; `None` when the whole document is at fault.
        line: Option<usize>,
        /// The field, column, property or JSON path at fault (`DTSTART`, `expected_uplift`,
        /// `deployment.created_at`).
        field: String,
        /// What is wrong with it.
        #[source]
        problem: Problem,
    },
}

impl Error {
    /// An [`Error::Invalid`] from its parts.
    pub(crate) fn invalid(
        name: &str,
        line: Option<usize>,
        field: impl Into<String>,
        problem: Problem,
    ) -> Self {
        Error::Invalid {
            name: name.to_string(),
            line,
            field: field.into(),
            problem,
        }
    }

    /// The problem, if this is an [`Error::Invalid`]; handy in tests and in callers that map
    /// problems to metrics.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Invalid { problem, .. } => Some(problem),
            Error::Read { .. } => None,
        }
    }
}

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A required field, column or property is absent or empty.
    #[error("missing")]
    Missing,
    /// A time that does not parse, or lies outside the supported range.
    #[error("cannot read {value:?} as a time; expected {expected}")]
    BadTime {
        /// The text as found.
        value: String,
        /// The accepted forms.
        expected: &'static str,
    },
    /// A number that does not parse or is out of range.
    #[error("cannot read {value:?} as a number; expected {expected}")]
    BadNumber {
        /// The text as found.
        value: String,
        /// The accepted form and range.
        expected: &'static str,
    },
    /// A value that is not one of the accepted ones.
    #[error("unexpected value {value:?}; expected {expected}")]
    BadValue {
        /// The text as found.
        value: String,
        /// The accepted values.
        expected: String,
    },
    /// A `TZID` that is neither an IANA name nor a known alias of one.
    #[error(
        "unknown time zone {tzid:?}; use an IANA name such as Europe/Berlin \
         (VTIMEZONE definitions are not interpreted)"
    )]
    UnknownTimeZone {
        /// The time-zone identifier as found.
        tzid: String,
    },
    /// An interval whose end is not after its start.
    #[error("end {end} is not after start {start}")]
    EndNotAfterStart {
        /// The start, RFC 3339.
        start: String,
        /// The end, RFC 3339.
        end: String,
    },
    /// An `RRULE` the recurrence engine rejects.
    #[error("invalid recurrence rule: {message}")]
    BadRecurrence {
        /// The engine's explanation.
        message: String,
    },
    /// Malformed structure: a line that is not `NAME:VALUE`, broken CSV or JSON, unbalanced
    /// `BEGIN`/`END`.
    #[error("malformed input: {message}")]
    Syntax {
        /// What the parser expected.
        message: String,
    },
    /// A field or column this format does not have (typos must not pass silently).
    #[error("unknown field; expected one of {expected}")]
    UnknownField {
        /// The accepted fields.
        expected: String,
    },
}

/// Renders `:N` after the input name when a line is known.
struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, ":{line}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_input_line_and_field() {
        let e = Error::invalid("plan.csv", Some(3), "end", Problem::Missing);
        assert_eq!(e.to_string(), "plan.csv:3: field `end`: missing");
        let e = Error::invalid("hook.json", None, "deployment.id", Problem::Missing);
        assert_eq!(e.to_string(), "hook.json: field `deployment.id`: missing");
    }
}
