//! iCalendar parsing and expansion: the example calendar, time zones across DST, recurrence
//! rules, overrides, limits, and one test per rejection.

mod support;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use signals::{Error, ExpandLimits, IcsOptions, Problem, load_ics, parse_ics, parse_ics_with};
use support::utc;

/// Wraps VEVENT lines in a minimal calendar.
fn calendar(body: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}END:VCALENDAR\r\n")
}

fn starts(cal: &signals::Calendar, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    cal.occurrences(utc(from), utc(to), &ExpandLimits::default())
        .events
        .iter()
        .map(|e| e.start)
        .collect()
}

#[test]
fn example_calendar_expands_across_dst() {
    let cal = load_ics(support::example("events.ics"));
    let cal = match cal {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(cal.len(), 3);
    let got = cal.occurrences(
        utc("2024-03-20T00:00:00Z"),
        utc("2024-04-13T00:00:00Z"),
        &ExpandLimits::default(),
    );
    assert!(got.truncated.is_empty());
    let times: Vec<(String, String)> = got
        .events
        .iter()
        .map(|e| (e.start.to_rfc3339(), e.end.to_rfc3339()))
        .collect();
    // 18:00 Berlin is 17:00Z in winter time and 16:00Z after the 31 March switch; Good Friday
    // (29 March) is excluded by EXDATE.
    assert_eq!(
        times,
        vec![
            (
                "2024-03-22T17:00:00+00:00".into(),
                "2024-03-22T19:00:00+00:00".into()
            ),
            (
                "2024-04-05T16:00:00+00:00".into(),
                "2024-04-05T18:00:00+00:00".into()
            ),
            (
                "2024-04-12T16:00:00+00:00".into(),
                "2024-04-12T18:00:00+00:00".into()
            ),
        ]
    );
    let first = &got.events[0];
    assert_eq!(first.name, "Friday flash sale");
    assert_eq!(first.uid, "friday-flash-sale@example.com");
    assert!(first.source.ends_with("events.ics"));
    assert!(!first.all_day);
}

#[test]
fn all_day_events_follow_the_calendar_zone() {
    let cal = load_ics(support::example("events.ics"));
    let Ok(cal) = cal else { panic!("{cal:?}") };
    let got = cal.occurrences(
        utc("2024-11-01T00:00:00Z"),
        utc("2024-12-01T00:00:00Z"),
        &ExpandLimits::default(),
    );
    let bf: Vec<_> = got.events.iter().filter(|e| e.all_day).collect();
    assert_eq!(bf.len(), 1);
    // X-WR-TIMEZONE is Europe/Berlin: the four days start at local midnight.
    assert_eq!(bf[0].start, utc("2024-11-28T23:00:00Z"));
    assert_eq!(bf[0].end, utc("2024-12-02T23:00:00Z"));
    assert_eq!(bf[0].name, "Black Friday");
}

#[test]
fn duration_and_utc_event() {
    let cal = load_ics(support::example("events.ics"));
    let Ok(cal) = cal else { panic!("{cal:?}") };
    let got = cal.occurrences(
        utc("2024-06-01T20:00:00Z"),
        utc("2024-06-02T00:00:00Z"),
        &ExpandLimits::default(),
    );
    // Started before `from` but still running: it overlaps, so it is returned.
    assert_eq!(got.events.len(), 1);
    assert_eq!(got.events[0].start, utc("2024-06-01T19:00:00Z"));
    assert_eq!(got.events[0].end, utc("2024-06-01T21:30:00Z"));
}

#[test]
fn weekly_event_in_skipped_hour_moves_forward() {
    let cal = parse_ics(
        "dst.ics",
        &calendar(
            "BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Night batch\r\n\
             DTSTART;TZID=America/New_York:20240303T023000\r\nDURATION:PT1H\r\n\
             RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n",
        ),
    );
    let Ok(cal) = cal else { panic!("{cal:?}") };
    // 3 Mar 02:30 EST = 07:30Z; 10 Mar 02:30 does not exist and becomes 03:30 EDT = 07:30Z;
    // 17 Mar 02:30 EDT = 06:30Z.
    assert_eq!(
        starts(&cal, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        vec![
            utc("2024-03-03T07:30:00Z"),
            utc("2024-03-10T07:30:00Z"),
            utc("2024-03-17T06:30:00Z"),
        ]
    );
}

#[test]
fn recurrence_rule_parts() {
    let cases = [
        // Monthly on the last Friday, three times.
        (
            "DTSTART:20240126T120000Z\r\nRRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3\r\n",
            vec![
                "2024-01-26T12:00:00Z",
                "2024-02-23T12:00:00Z",
                "2024-03-29T12:00:00Z",
            ],
        ),
        // Every other day until (inclusive) the 5th.
        (
            "DTSTART:20240101T080000Z\r\nRRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20240105T080000Z\r\n",
            vec![
                "2024-01-01T08:00:00Z",
                "2024-01-03T08:00:00Z",
                "2024-01-05T08:00:00Z",
            ],
        ),
        // UNTIL as a date includes that whole day.
        (
            "DTSTART:20240101T230000Z\r\nRRULE:FREQ=DAILY;UNTIL=20240102\r\n",
            vec!["2024-01-01T23:00:00Z", "2024-01-02T23:00:00Z"],
        ),
        // Weekly on two days, with an RDATE added and an EXDATE removed.
        (
            "DTSTART:20240101T090000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=4\r\n\
             RDATE:20240120T090000Z\r\nEXDATE:20240104T090000Z\r\n",
            vec![
                "2024-01-01T09:00:00Z",
                "2024-01-08T09:00:00Z",
                "2024-01-11T09:00:00Z",
                "2024-01-20T09:00:00Z",
            ],
        ),
        // Yearly on the fourth Thursday of November (US Thanksgiving).
        (
            "DTSTART;VALUE=DATE:20221124\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\n",
            vec![
                "2022-11-24T00:00:00Z",
                "2023-11-23T00:00:00Z",
                "2024-11-28T00:00:00Z",
            ],
        ),
    ];
    for (props, want) in cases {
        let text = calendar(&format!("BEGIN:VEVENT\r\nUID:x\r\n{props}END:VEVENT\r\n"));
        let cal = parse_ics("rules.ics", &text);
        let Ok(cal) = cal else {
            panic!("{props}: {cal:?}")
        };
        let want: Vec<_> = want.into_iter().map(utc).collect();
        assert_eq!(
            starts(&cal, "2020-01-01T00:00:00Z", "2024-12-31T00:00:00Z"),
            want,
            "{props}"
        );
    }
}

#[test]
fn dtstart_counts_even_when_the_rule_skips_it() {
    // DTSTART is a Tuesday, the rule says Mondays: RFC 5545 keeps DTSTART as first instance.
    let text = calendar(
        "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20240102T090000Z\r\n\
         RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2\r\nEND:VEVENT\r\n",
    );
    let cal = parse_ics("t.ics", &text);
    let Ok(cal) = cal else { panic!("{cal:?}") };
    let got = starts(&cal, "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z");
    assert_eq!(got[0], utc("2024-01-02T09:00:00Z"));
    assert!(got.contains(&utc("2024-01-08T09:00:00Z")));
}

#[test]
fn overrides_and_cancellations() {
    let text = calendar(
        "BEGIN:VEVENT\r\nUID:standup\r\nSUMMARY:Launch sync\r\nDTSTART:20240101T090000Z\r\n\
         DURATION:PT30M\r\nRRULE:FREQ=DAILY;COUNT=4\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID:20240102T090000Z\r\n\
         SUMMARY:Launch sync (moved)\r\nDTSTART:20240102T150000Z\r\nDURATION:PT30M\r\n\
         END:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID:20240103T090000Z\r\nSTATUS:CANCELLED\r\n\
         DTSTART:20240103T090000Z\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:gone\r\nSTATUS:CANCELLED\r\nDTSTART:20240101T100000Z\r\n\
         END:VEVENT\r\n",
    );
    let cal = parse_ics("o.ics", &text);
    let Ok(cal) = cal else { panic!("{cal:?}") };
    let got = cal.occurrences(
        utc("2024-01-01T00:00:00Z"),
        utc("2024-02-01T00:00:00Z"),
        &ExpandLimits::default(),
    );
    let seen: Vec<(String, DateTime<Utc>)> = got
        .events
        .iter()
        .map(|e| (e.name.clone(), e.start))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("Launch sync".into(), utc("2024-01-01T09:00:00Z")),
            ("Launch sync (moved)".into(), utc("2024-01-02T15:00:00Z")),
            ("Launch sync".into(), utc("2024-01-04T09:00:00Z")),
        ]
    );
}

#[test]
fn endless_rules_stop_at_the_limits() {
    let text = calendar(
        "BEGIN:VEVENT\r\nUID:tick\r\nDTSTART:20000101T000000Z\r\nRRULE:FREQ=MINUTELY\r\n\
         END:VEVENT\r\nBEGIN:VEVENT\r\nUID:once\r\nDTSTART:20240101T000000Z\r\nEND:VEVENT\r\n",
    );
    let cal = parse_ics("endless.ics", &text);
    let Ok(cal) = cal else { panic!("{cal:?}") };
    // Range far after DTSTART: the scan cap stops the minutely rule long before 2024.
    let limits = ExpandLimits {
        max_occurrences: 100,
        max_scan_per_event: 50_000,
    };
    let got = cal.occurrences(
        utc("2024-01-01T00:00:00Z"),
        utc("2025-01-01T00:00:00Z"),
        &limits,
    );
    assert_eq!(got.truncated, vec!["tick".to_string()]);
    assert_eq!(got.events.len(), 1);
    // Range near DTSTART: the occurrence cap applies.
    let got = cal.occurrences(
        utc("2000-01-01T00:00:00Z"),
        utc("2000-02-01T00:00:00Z"),
        &limits,
    );
    assert_eq!(got.events.len(), 100);
    assert_eq!(got.truncated, vec!["tick".to_string()]);
    // A rule that never matches (30 February) ends instead of spinning.
    let never = calendar(
        "BEGIN:VEVENT\r\nUID:never\r\nDTSTART:20240101T000000Z\r\n\
         RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\nEND:VEVENT\r\n",
    );
    let cal = parse_ics("never.ics", &never);
    let Ok(cal) = cal else { panic!("{cal:?}") };
    let got = cal.occurrences(
        utc("2024-01-01T00:00:00Z"),
        utc("2030-01-01T00:00:00Z"),
        &limits,
    );
    assert_eq!(got.events.len(), 1, "only DTSTART itself");
}

#[test]
fn floating_times_use_the_option_zone() {
    let text = calendar(
        "BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20240701T120000\r\nDTEND:20240701T130000\r\nEND:VEVENT\r\n",
    );
    let utc_read = parse_ics("f.ics", &text);
    let Ok(utc_read) = utc_read else {
        panic!("{utc_read:?}")
    };
    assert_eq!(
        starts(&utc_read, "2024-07-01T00:00:00Z", "2024-07-02T00:00:00Z"),
        vec![utc("2024-07-01T12:00:00Z")]
    );
    let tokyo = parse_ics_with(
        "f.ics",
        &text,
        &IcsOptions {
            floating_tz: Some(Tz::Asia__Tokyo),
        },
    );
    let Ok(tokyo) = tokyo else {
        panic!("{tokyo:?}")
    };
    assert_eq!(
        starts(&tokyo, "2024-07-01T00:00:00Z", "2024-07-02T00:00:00Z"),
        vec![utc("2024-07-01T03:00:00Z")]
    );
}

#[test]
fn vendor_and_windows_zone_ids() {
    let text = calendar(
        "BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=/mozilla.org/20050126_1/Europe/London:20240701T120000\r\n\
         END:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\nDTSTART;TZID=\"Pacific Standard Time\":20240701T120000\r\n\
         END:VEVENT\r\n",
    );
    let cal = parse_ics("z.ics", &text);
    let Ok(cal) = cal else { panic!("{cal:?}") };
    assert_eq!(
        starts(&cal, "2024-07-01T00:00:00Z", "2024-07-02T00:00:00Z"),
        vec![utc("2024-07-01T11:00:00Z"), utc("2024-07-01T19:00:00Z")]
    );
}

/// Asserts `text` is rejected at `line` in `field` with a problem matching `check`.
fn rejected(text: &str, line: usize, field: &str, check: fn(&Problem) -> bool) {
    match parse_ics("bad.ics", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            let Error::Invalid {
                name,
                line: l,
                field: f,
                problem,
            } = &e
            else {
                panic!("{e}")
            };
            assert_eq!(name, "bad.ics");
            assert_eq!((*l, f.as_str()), (Some(line), field), "{e}");
            assert!(check(problem), "{e}");
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("bad.ics:{line}: field `{field}`")),
                "{message}"
            );
        }
    }
}

#[test]
fn rejects_missing_dtstart() {
    rejected(
        &calendar("BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:x\r\nEND:VEVENT\r\n"),
        3,
        "DTSTART",
        |p| *p == Problem::Missing,
    );
}

#[test]
fn rejects_unknown_time_zone() {
    rejected(
        &calendar("BEGIN:VEVENT\r\nDTSTART;TZID=Mars/Olympus:20240101T000000\r\nEND:VEVENT\r\n"),
        4,
        "DTSTART",
        |p| matches!(p, Problem::UnknownTimeZone { tzid } if tzid == "Mars/Olympus"),
    );
}

#[test]
fn rejects_bad_date_time() {
    rejected(
        &calendar("BEGIN:VEVENT\r\nDTSTART:2024-01-01T00:00:00Z\r\nEND:VEVENT\r\n"),
        4,
        "DTSTART",
        |p| matches!(p, Problem::BadTime { .. }),
    );
}

#[test]
fn rejects_bad_rrule() {
    rejected(
        &calendar(
            "BEGIN:VEVENT\r\nDTSTART:20240101T000000Z\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n",
        ),
        5,
        "RRULE",
        |p| matches!(p, Problem::BadRecurrence { .. }),
    );
}

/// Found by fuzzing (fuzz/README.md): a non-ASCII BYDAY made the `rrule` crate panic.
#[test]
fn rejects_non_ascii_rrule_instead_of_panicking() {
    rejected(
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:40500615\nRRULE:FREQ=YEARLY;BYDAY=\u{327}H\n\
         END:VEVENT\nEND:VCALENDAR",
        4,
        "RRULE",
        |p| matches!(p, Problem::BadRecurrence { message } if message.contains("ASCII")),
    );
}

#[test]
fn rejects_end_before_start() {
    rejected(
        &calendar(
            "BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nDTEND:20240101T090000Z\r\nEND:VEVENT\r\n",
        ),
        5,
        "DTEND",
        |p| matches!(p, Problem::EndNotAfterStart { .. }),
    );
}

#[test]
fn rejects_end_and_duration_together() {
    rejected(
        &calendar(
            "BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nDTEND:20240101T110000Z\r\n\
             DURATION:PT1H\r\nEND:VEVENT\r\n",
        ),
        5,
        "DTEND",
        |p| matches!(p, Problem::BadValue { .. }),
    );
}

#[test]
fn rejects_duplicate_dtstart() {
    rejected(
        &calendar(
            "BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nDTSTART:20240102T100000Z\r\nEND:VEVENT\r\n",
        ),
        5,
        "DTSTART",
        |p| matches!(p, Problem::BadValue { .. }),
    );
}

#[test]
fn rejects_bad_duration() {
    rejected(
        &calendar("BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nDURATION:1 hour\r\nEND:VEVENT\r\n"),
        5,
        "DURATION",
        |p| matches!(p, Problem::BadNumber { .. }),
    );
}

#[test]
fn rejects_unclosed_component() {
    rejected(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nEND:VCALENDAR\r\n",
        4,
        "END",
        |p| matches!(p, Problem::Syntax { message } if message.contains("closes BEGIN:VEVENT")),
    );
    rejected(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\n",
        2,
        "BEGIN",
        |p| matches!(p, Problem::Syntax { message } if message.contains("never closed")),
    );
}

#[test]
fn rejects_files_that_are_not_calendars() {
    rejected(
        "start,end\n2024-01-01,2024-01-02\n",
        1,
        "content line",
        |p| matches!(p, Problem::Syntax { .. }),
    );
    rejected("SUMMARY:x\r\n", 1, "SUMMARY", |p| {
        matches!(p, Problem::Syntax { .. })
    });
    rejected("", 1, "BEGIN", |p| matches!(p, Problem::Syntax { .. }));
}

#[test]
fn rejects_malformed_content_line() {
    rejected(
        &calendar("BEGIN:VEVENT\r\nDTSTART;TZID=\"Europe/Berlin:20240101T100000\r\nEND:VEVENT\r\n"),
        4,
        "content line",
        |p| matches!(p, Problem::Syntax { .. }),
    );
}
