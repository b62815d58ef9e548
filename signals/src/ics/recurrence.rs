//! `RRULE` values turned into the `rrule` crate's validated rules, with `UNTIL` read by us.
//!
//! `UNTIL` is parsed here rather than by the `rrule` crate because that crate reads a floating
//! `UNTIL` in the machine's local zone; a library must not depend on where it runs.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone};
use chrono_tz::Tz;
use rrule::{RRule, Unvalidated, Validated};

use crate::error::Problem;
use crate::ics::values::{IcsTime, local_to_instant, parse_time_value};

/// Parses one `RRULE` value against the event's `DTSTART`.
///
/// Returns `Ok(None)` when `UNTIL` lies before `DTSTART`: the rule then adds nothing and the
/// event keeps its single `DTSTART` occurrence (real calendars contain such rules).
pub(crate) fn parse_rrule(
    value: &str,
    dtstart: DateTime<Tz>,
) -> Result<Option<RRule<Validated>>, Problem> {
    let bad = |message: String| Problem::BadRecurrence { message };
    // RFC 5545's recur grammar is ASCII, and the `rrule` crate (0.14) slices a BYDAY value by
    // bytes, panicking inside a multi-byte character: refuse such text before it gets there.
    if let Some(c) = value.chars().find(|c| !c.is_ascii()) {
        return Err(bad(format!(
            "{c:?} in a recurrence rule (only ASCII is allowed)"
        )));
    }
    let mut kept = Vec::new();
    let mut until = None;
    for part in value.trim().split(';').filter(|p| !p.trim().is_empty()) {
        match part.split_once('=') {
            Some((key, raw)) if key.trim().eq_ignore_ascii_case("UNTIL") => {
                if until.is_some() {
                    return Err(bad("UNTIL appears twice".into()));
                }
                until = Some(parse_until(raw, dtstart)?);
            }
            _ => kept.push(part),
        }
    }
    if kept.is_empty() {
        return Err(bad("empty rule; expected at least FREQ=...".into()));
    }
    let mut rule: RRule<Unvalidated> = kept
        .join(";")
        .parse()
        .map_err(|e: rrule::RRuleError| bad(e.to_string()))?;
    if let Some(until) = until {
        if until < dtstart {
            return Ok(None);
        }
        rule = rule.until(until.with_timezone(&rrule::Tz::UTC));
    }
    let start = dtstart.with_timezone(&rrule::Tz::from(dtstart.timezone()));
    rule.validate(start)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// Reads `UNTIL` as an inclusive bound: a DATE means "through that day" in the event's zone,
/// a floating DATE-TIME is read in the event's zone, `...Z` is UTC.
fn parse_until(raw: &str, dtstart: DateTime<Tz>) -> Result<DateTime<Tz>, Problem> {
    let tz = dtstart.timezone();
    let value = raw.trim();
    let out_of_range = || Problem::BadRecurrence {
        message: format!("UNTIL {value:?} is out of range"),
    };
    match parse_time_value(value, false, Some(tz)) {
        Ok(IcsTime::Date(d)) => end_of_day(tz, d).ok_or_else(out_of_range),
        Ok(t) => t.resolve(tz).ok_or_else(out_of_range),
        Err(_) => Err(Problem::BadRecurrence {
            message: format!(
                "UNTIL {value:?} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS[Z])"
            ),
        }),
    }
}

/// The last second of `day` in `tz`.
fn end_of_day(tz: Tz, day: NaiveDate) -> Option<DateTime<Tz>> {
    let next = day.succ_opt()?.and_hms_opt(0, 0, 0)?;
    let midnight = local_to_instant(tz, next)?;
    Some(tz.from_utc_datetime(&(midnight.naive_utc() - TimeDelta::seconds(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Tz> {
        match Tz::Europe__Berlin
            .with_ymd_and_hms(2024, 1, 1, 9, 0, 0)
            .single()
        {
            Some(t) => t,
            None => panic!("start"),
        }
    }

    #[test]
    fn accepts_common_rules() {
        for rule in [
            "FREQ=WEEKLY;BYDAY=MO,WE",
            "FREQ=DAILY;INTERVAL=2;COUNT=10",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
            "FREQ=WEEKLY;UNTIL=20240301T000000Z",
            "FREQ=WEEKLY;UNTIL=20240301",
            "FREQ=WEEKLY;UNTIL=20240301T090000",
            "FREQ=WEEKLY;WKST=SU;BYDAY=TU,TH",
        ] {
            assert!(matches!(parse_rrule(rule, start()), Ok(Some(_))), "{rule}");
        }
    }

    #[test]
    fn until_before_start_adds_nothing() {
        assert!(matches!(
            parse_rrule("FREQ=DAILY;UNTIL=20230101T000000Z", start()),
            Ok(None)
        ));
    }

    #[test]
    fn rejects_broken_rules() {
        for rule in [
            "",
            "FREQ=FORTNIGHTLY",
            "FREQ=DAILY;COUNT=x",
            "FREQ=DAILY;BYDAY=XX",
            "FREQ=DAILY;UNTIL=soon",
            "FREQ=DAILY;UNTIL=20250101;UNTIL=20260101",
            "BYDAY=MO",
            // Found by fuzzing: the `rrule` crate panicked slicing inside the two-byte U+0327.
            "FREQ=YEARLY;BYDAY=\u{327}H",
            "FREQ=WEEKLY;BYDAY=MOé",
        ] {
            assert!(
                matches!(
                    parse_rrule(rule, start()),
                    Err(Problem::BadRecurrence { .. })
                ),
                "{rule:?}"
            );
        }
    }
}
