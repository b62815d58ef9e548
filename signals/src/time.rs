//! Timestamps as people write them in CSV and JSON: RFC 3339, bare dates, naive date-times
//! (taken as UTC) and unix seconds.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::error::Problem;

/// The forms [`parse_written_time`] accepts, for error messages.
pub(crate) const TIME_FORMS: &str =
    "RFC 3339 (2024-11-29T09:00:00Z or +01:00), YYYY-MM-DD, or YYYY-MM-DD HH:MM[:SS] in UTC";

/// The forms [`unix_seconds`] accepts, for error messages.
pub(crate) const UNIX_FORMS: &str =
    "unix seconds between 0 and 253402300799 (year 9999); milliseconds are not accepted";

/// A parsed time, remembering whether it was written as a bare date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrittenTime {
    /// The instant (midnight UTC for a bare date).
    pub at: DateTime<Utc>,
    /// True when the text was `YYYY-MM-DD` alone.
    pub date_only: bool,
}

impl WrittenTime {
    /// The instant as an interval *end*: a bare date means "through that day", so its end is the
    /// next midnight. People write `2024-11-25,2024-11-29` for a campaign that runs on the 29th.
    pub fn as_end(self) -> DateTime<Utc> {
        if self.date_only {
            self.at + TimeDelta::days(1)
        } else {
            self.at
        }
    }
}

/// Parses one of [`TIME_FORMS`]. Times without an offset are UTC.
pub(crate) fn parse_written_time(text: &str) -> Result<WrittenTime, Problem> {
    let s = text.trim();
    let bad = || Problem::BadTime {
        value: s.to_string(),
        expected: TIME_FORMS,
    };
    if s.is_empty() {
        return Err(Problem::Missing);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(WrittenTime {
            at: t.with_timezone(&Utc),
            date_only: false,
        });
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let at = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
        return Ok(WrittenTime {
            at,
            date_only: true,
        });
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| WrittenTime {
            at: t.and_utc(),
            date_only: false,
        })
        .ok_or_else(bad)
}

/// Converts unix seconds (possibly fractional) to a time, rejecting values that are more likely
/// milliseconds or garbage than a real post time.
pub(crate) fn unix_seconds(secs: f64) -> Result<DateTime<Utc>, Problem> {
    const MAX: f64 = 253_402_300_799.0;
    let bad = || Problem::BadTime {
        value: secs.to_string(),
        expected: UNIX_FORMS,
    };
    if !secs.is_finite() || !(0.0..=MAX).contains(&secs) {
        return Err(bad());
    }
    let whole = secs.floor();
    // In range by the check above, so the casts are exact for the integer part.
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos).ok_or_else(bad)
}

/// A JSON time: a string in one of [`TIME_FORMS`] or a number of unix seconds.
pub(crate) fn json_time(v: &Value) -> Result<DateTime<Utc>, Problem> {
    match v {
        Value::String(s) => parse_written_time(s).map(|t| t.at),
        Value::Number(n) => match n.as_f64() {
            Some(secs) => unix_seconds(secs),
            None => Err(Problem::BadTime {
                value: n.to_string(),
                expected: UNIX_FORMS,
            }),
        },
        other => Err(Problem::BadValue {
            value: crate::json_lines::kind_of(other).into(),
            expected: "a time string or unix seconds".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("bad test time {s}: {e}"),
        }
    }

    #[test]
    fn accepts_every_documented_form() {
        let cases = [
            ("2024-11-29T09:00:00Z", "2024-11-29T09:00:00Z", false),
            ("2024-11-29T10:00:00+01:00", "2024-11-29T09:00:00Z", false),
            ("2024-11-29", "2024-11-29T00:00:00Z", true),
            ("2024-11-29 09:00", "2024-11-29T09:00:00Z", false),
            ("2024-11-29 09:00:30", "2024-11-29T09:00:30Z", false),
            ("2024-11-29T09:00", "2024-11-29T09:00:00Z", false),
            (" 2024-11-29 09:00:30.5 ", "2024-11-29T09:00:30.5Z", false),
        ];
        for (text, want, date_only) in cases {
            let got = parse_written_time(text);
            assert_eq!(
                got,
                Ok(WrittenTime {
                    at: at(want),
                    date_only
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn bare_date_end_covers_the_whole_day() {
        let end = parse_written_time("2024-11-29").map(WrittenTime::as_end);
        assert_eq!(end, Ok(at("2024-11-30T00:00:00Z")));
        let end = parse_written_time("2024-11-29 18:00").map(WrittenTime::as_end);
        assert_eq!(end, Ok(at("2024-11-29T18:00:00Z")));
    }

    #[test]
    fn rejects_nonsense_and_empty() {
        assert!(matches!(
            parse_written_time("29/11/2024"),
            Err(Problem::BadTime { .. })
        ));
        assert!(matches!(
            parse_written_time("2024-02-30"),
            Err(Problem::BadTime { .. })
        ));
        assert_eq!(parse_written_time("  "), Err(Problem::Missing));
    }

    #[test]
    fn unix_seconds_range() {
        assert_eq!(
            unix_seconds(1_700_000_000.0),
            Ok(at("2023-11-14T22:13:20Z"))
        );
        assert_eq!(
            unix_seconds(1_700_000_000.25),
            Ok(at("2023-11-14T22:13:20.25Z"))
        );
        for bad in [f64::NAN, f64::INFINITY, -1.0, 1_700_000_000_000.0] {
            assert!(unix_seconds(bad).is_err(), "{bad}");
        }
    }
}
