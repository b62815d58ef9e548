//! iCalendar value types: DATE, DATE-TIME (UTC, floating, `TZID=`), DURATION, and the mapping of
//! `TZID` names to IANA zones.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;

use crate::error::Problem;

/// Accepted DATE / DATE-TIME forms, for error messages.
pub(crate) const ICS_TIME_FORMS: &str =
    "YYYYMMDD (VALUE=DATE), YYYYMMDDTHHMMSS (floating or TZID=) or YYYYMMDDTHHMMSSZ (UTC)";

/// Accepted DURATION forms, for error messages.
pub(crate) const ICS_DURATION_FORMS: &str = "an RFC 5545 duration such as PT1H30M, P1D or P2W";

/// A DATE or DATE-TIME as written, before a zone is applied to floating values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcsTime {
    /// An all-day value (`VALUE=DATE`).
    Date(NaiveDate),
    /// `...Z`.
    Utc(NaiveDateTime),
    /// No zone: local wall time wherever the reader is (RFC 5545 "floating").
    Floating(NaiveDateTime),
    /// Local wall time in the `TZID=` zone.
    Zoned(NaiveDateTime, Tz),
}

impl IcsTime {
    /// The instant, with floating values and dates read in `floating`. `None` only outside
    /// chrono's range.
    pub fn resolve(self, floating: Tz) -> Option<DateTime<Tz>> {
        match self {
            IcsTime::Date(d) => local_to_instant(floating, d.and_hms_opt(0, 0, 0)?),
            IcsTime::Utc(t) => Some(Tz::UTC.from_utc_datetime(&t)),
            IcsTime::Floating(t) => local_to_instant(floating, t),
            IcsTime::Zoned(t, tz) => local_to_instant(tz, t),
        }
    }

    /// True for `VALUE=DATE` values.
    pub fn is_date(self) -> bool {
        matches!(self, IcsTime::Date(_))
    }

    /// The local calendar date as written.
    pub fn date(self) -> NaiveDate {
        match self {
            IcsTime::Date(d) => d,
            IcsTime::Utc(t) | IcsTime::Floating(t) | IcsTime::Zoned(t, _) => t.date(),
        }
    }
}

/// Local wall time to an instant, as RFC 5545 §3.3.5 says: an ambiguous time (DST fall-back) is
/// the first of the two; a time skipped by DST spring-forward uses the offset in force before
/// the gap (02:30 on a spring-forward night becomes 03:30 summer time).
pub(crate) fn local_to_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(first, _) => Some(first),
        LocalResult::None => {
            // No zone has two transitions within a day, so a day earlier is before the gap.
            let before = local.checked_sub_signed(TimeDelta::days(1))?;
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc =
                local.checked_sub_signed(TimeDelta::seconds(offset.local_minus_utc().into()))?;
            Some(tz.from_utc_datetime(&utc))
        }
    }
}

/// Parses a DATE or DATE-TIME value. `as_date` is true when `VALUE=DATE` was given; an 8-digit
/// value is also read as a date, since some producers omit the parameter.
pub(crate) fn parse_time_value(
    value: &str,
    as_date: bool,
    zone: Option<Tz>,
) -> Result<IcsTime, Problem> {
    let v = value.trim();
    let bad = || Problem::BadTime {
        value: v.to_string(),
        expected: ICS_TIME_FORMS,
    };
    if as_date || v.len() == 8 {
        return NaiveDate::parse_from_str(v, "%Y%m%d")
            .map(IcsTime::Date)
            .map_err(|_| bad());
    }
    if let Some(utc) = v.strip_suffix('Z') {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map(IcsTime::Utc)
            .map_err(|_| bad());
    }
    let local = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
    Ok(match zone {
        Some(tz) => IcsTime::Zoned(local, tz),
        None => IcsTime::Floating(local),
    })
}

/// A DURATION split the way RFC 5545 §3.3.6 applies it: whole days and weeks are nominal (a day
/// across a DST change is 23 or 25 hours of wall clock), hours, minutes and seconds are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IcsDuration {
    /// Nominal days (weeks × 7 + days); negative for a negative duration.
    pub days: i64,
    /// Exact seconds; negative for a negative duration.
    pub seconds: i64,
}

impl IcsDuration {
    /// Adds the duration to a local start: days on the wall clock, then exact seconds.
    pub fn add_to(self, start: DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = start.timezone();
        let local = start
            .naive_local()
            .checked_add_signed(TimeDelta::try_days(self.days)?)?;
        let moved = local_to_instant(tz, local)?;
        moved.checked_add_signed(TimeDelta::try_seconds(self.seconds)?)
    }
}

/// Parses `[+-]P[nW][nD][T[nH][nM][nS]]`. Weeks and days together are accepted although
/// RFC 5545 forbids mixing them, because producers emit it.
pub(crate) fn parse_duration(value: &str) -> Result<IcsDuration, Problem> {
    // About 27,000 years; keeps the arithmetic below far from overflow.
    const MAX_UNIT: i64 = 10_000_000;
    let v = value.trim();
    let bad = || Problem::BadNumber {
        value: v.to_string(),
        expected: ICS_DURATION_FORMS,
    };
    let (sign, rest) = match v.as_bytes().first() {
        Some(b'-') => (-1, &v[1..]),
        Some(b'+') => (1, &v[1..]),
        _ => (1, v),
    };
    let body = rest.strip_prefix('P').ok_or_else(bad)?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (body, None),
    };
    let mut days = 0i64;
    let mut seconds = 0i64;
    let mut any = false;
    for (n, unit) in units(date_part).ok_or_else(bad)? {
        if n > MAX_UNIT {
            return Err(bad());
        }
        days += match unit {
            'W' => n * 7,
            'D' => n,
            _ => return Err(bad()),
        };
        any = true;
    }
    if let Some(t) = time_part {
        for (n, unit) in units(t).ok_or_else(bad)? {
            if n > MAX_UNIT {
                return Err(bad());
            }
            seconds += match unit {
                'H' => n * 3600,
                'M' => n * 60,
                'S' => n,
                _ => return Err(bad()),
            };
            any = true;
        }
    }
    if !any {
        return Err(bad());
    }
    Ok(IcsDuration {
        days: sign * days,
        seconds: sign * seconds,
    })
}

/// Splits `12H30M` into `[(12, 'H'), (30, 'M')]`; `None` on anything else.
fn units(s: &str) -> Option<Vec<(i64, char)>> {
    let mut out = Vec::new();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if digits.is_empty() {
                return None;
            }
            out.push((digits.parse().ok()?, c));
            digits.clear();
        }
    }
    digits.is_empty().then_some(out)
}

/// Windows zone names Outlook and Exchange write as `TZID`, mapped to the IANA zone CLDR gives
/// for each. Only the common ones: anything else must be an IANA name.
const WINDOWS_ZONES: [(&str, Tz); 18] = [
    ("UTC", Tz::UTC),
    ("GMT Standard Time", Tz::Europe__London),
    ("W. Europe Standard Time", Tz::Europe__Berlin),
    ("Romance Standard Time", Tz::Europe__Paris),
    ("Central Europe Standard Time", Tz::Europe__Budapest),
    ("Central European Standard Time", Tz::Europe__Warsaw),
    ("E. Europe Standard Time", Tz::Europe__Chisinau),
    ("Eastern Standard Time", Tz::America__New_York),
    ("Central Standard Time", Tz::America__Chicago),
    ("Mountain Standard Time", Tz::America__Denver),
    ("Pacific Standard Time", Tz::America__Los_Angeles),
    ("E. South America Standard Time", Tz::America__Sao_Paulo),
    ("India Standard Time", Tz::Asia__Kolkata),
    ("China Standard Time", Tz::Asia__Shanghai),
    ("Singapore Standard Time", Tz::Asia__Singapore),
    ("Tokyo Standard Time", Tz::Asia__Tokyo),
    ("AUS Eastern Standard Time", Tz::Australia__Sydney),
    ("New Zealand Standard Time", Tz::Pacific__Auckland),
];

/// Maps a `TZID` to an IANA zone: the name itself, an IANA name at the end of a
/// vendor-prefixed id (`/mozilla.org/20050126_1/America/New_York`), or a common Windows name.
/// VTIMEZONE blocks are not interpreted, so other ids are refused.
pub(crate) fn resolve_tzid(tzid: &str) -> Option<Tz> {
    let id = tzid.trim().trim_matches('"');
    if let Ok(tz) = Tz::from_str(id) {
        return Some(tz);
    }
    let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty()).collect();
    for take in [3, 2] {
        if parts.len() > take {
            let suffix = parts[parts.len() - take..].join("/");
            if let Ok(tz) = Tz::from_str(&suffix) {
                return Some(tz);
            }
        }
    }
    WINDOWS_ZONES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(id))
        .map(|(_, tz)| *tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        match NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn time_value_kinds() {
        let ny = Tz::America__New_York;
        assert_eq!(
            parse_time_value("20240310", true, None),
            Ok(IcsTime::Date(naive("2024-03-10 00:00:00").date()))
        );
        assert_eq!(
            parse_time_value("20240310T090000Z", false, Some(ny)),
            Ok(IcsTime::Utc(naive("2024-03-10 09:00:00")))
        );
        assert_eq!(
            parse_time_value("20240310T090000", false, Some(ny)),
            Ok(IcsTime::Zoned(naive("2024-03-10 09:00:00"), ny))
        );
        assert_eq!(
            parse_time_value("20240310T090000", false, None),
            Ok(IcsTime::Floating(naive("2024-03-10 09:00:00")))
        );
        for bad in ["2024-03-10", "20241310", "20240310T256000", "20240310T0900"] {
            assert!(parse_time_value(bad, false, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn dst_gap_and_overlap_follow_rfc5545() {
        let ny = Tz::America__New_York;
        // 2024-03-10 02:30 does not exist in New York: it means 03:30 EDT = 07:30Z.
        let gap = local_to_instant(ny, naive("2024-03-10 02:30:00")).map(|t| t.to_rfc3339());
        assert_eq!(gap.as_deref(), Some("2024-03-10T03:30:00-04:00"));
        // 2024-11-03 01:30 happens twice: the first (EDT) is meant.
        let twice = local_to_instant(ny, naive("2024-11-03 01:30:00")).map(|t| t.to_rfc3339());
        assert_eq!(twice.as_deref(), Some("2024-11-03T01:30:00-04:00"));
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s);
        assert_eq!(
            d("PT1H30M"),
            Ok(IcsDuration {
                days: 0,
                seconds: 5400
            })
        );
        assert_eq!(
            d("P1D"),
            Ok(IcsDuration {
                days: 1,
                seconds: 0
            })
        );
        assert_eq!(
            d("P2W"),
            Ok(IcsDuration {
                days: 14,
                seconds: 0
            })
        );
        assert_eq!(
            d("P1DT2H"),
            Ok(IcsDuration {
                days: 1,
                seconds: 7200
            })
        );
        assert_eq!(
            d("-PT15M"),
            Ok(IcsDuration {
                days: 0,
                seconds: -900
            })
        );
        for bad in ["", "P", "PT", "1H", "PT1X", "P1H", "PTH", "P99999999999D"] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nominal_day_across_dst_is_23_hours() {
        let ny = Tz::America__New_York;
        let start = local_to_instant(ny, naive("2024-03-09 12:00:00"));
        let Some(start) = start else { panic!("start") };
        let end = IcsDuration {
            days: 1,
            seconds: 0,
        }
        .add_to(start);
        assert_eq!(end.map(|e| (e - start).num_hours()), Some(23));
    }

    #[test]
    fn tzid_aliases() {
        assert_eq!(resolve_tzid("Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(resolve_tzid("\"Europe/Berlin\""), Some(Tz::Europe__Berlin));
        assert_eq!(
            resolve_tzid("/mozilla.org/20050126_1/America/New_York"),
            Some(Tz::America__New_York)
        );
        assert_eq!(
            resolve_tzid("/citadel.org/20190914_1/America/Argentina/Buenos_Aires"),
            Some(Tz::America__Argentina__Buenos_Aires)
        );
        assert_eq!(
            resolve_tzid("Pacific Standard Time"),
            Some(Tz::America__Los_Angeles)
        );
        assert_eq!(resolve_tzid("Custom Zone 1"), None);
    }
}
