//! Property tests: no parser panics on any input (random bytes, and structured inputs near the
//! valid ones), expansion always ends, and grid outputs stay in range.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use signals::{
    ExpandLimits, Grid, SentimentBucket, campaign_active, deployment_indicator, event_indicator,
    parse_campaigns, parse_deploy_events, parse_deploy_schedule, parse_github_webhook, parse_ics,
    parse_posts, parse_volume_series, polarity_scores, sentiment_regressors,
};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// Feeds `text` to every parser; only panics matter, results are ignored.
fn every_parser(text: &str) {
    let _ = parse_ics("fuzz", text).map(|cal| {
        cal.occurrences(
            DateTime::from_timestamp(0, 0).unwrap_or_default(),
            DateTime::from_timestamp(4_000_000_000, 0).unwrap_or_default(),
            &ExpandLimits {
                max_occurrences: 200,
                max_scan_per_event: 2_000,
            },
        )
    });
    let _ = parse_campaigns("fuzz", text);
    let _ = parse_deploy_schedule("fuzz", text, TimeDelta::minutes(30));
    let _ = parse_deploy_events("fuzz", text, now());
    let _ = parse_github_webhook("fuzz", None, text);
    let _ = parse_github_webhook("fuzz", Some("deployment_status"), text);
    let _ = parse_posts("fuzz", text);
    let _ = parse_volume_series("fuzz", text);
    let p = polarity_scores(text);
    assert!((-1.0..=1.0).contains(&p.compound), "{p:?}");
}

fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(items).prop_map(String::from)
}

/// RRULE values: a FREQ (rarely a broken one) and up to five other parts, plausible or not.
fn rrule() -> impl Strategy<Value = String> {
    let freq = prop_oneof![
        10 => one_of(&[
            "FREQ=SECONDLY",
            "FREQ=MINUTELY",
            "FREQ=HOURLY",
            "FREQ=DAILY",
            "FREQ=WEEKLY",
            "FREQ=MONTHLY",
            "FREQ=YEARLY",
        ]),
        1 => one_of(&["FREQ=NEVER", "", "X-NAME=1"]),
    ];
    let part = prop_oneof![
        one_of(&[
            "WKST=SU",
            "BYDAY=MO,WE,FR",
            "BYDAY=-1FR",
            "BYDAY=53MO",
            "BYDAY=0TU",
            "BYSETPOS=-1",
            "BYSETPOS=400",
            "UNTIL=20240301",
            "UNTIL=20240301T000000Z",
            "UNTIL=19000101T000000",
            "UNTIL=99991231T235959Z",
            "COUNT=0",
        ]),
        (0u32..3_000).prop_map(|n| format!("INTERVAL={n}")),
        (0u32..100).prop_map(|n| format!("COUNT={n}")),
        (-40i32..40).prop_map(|n| format!("BYMONTHDAY={n}")),
        (0u32..15).prop_map(|n| format!("BYMONTH={n}")),
        (0u32..26).prop_map(|n| format!("BYHOUR={n}")),
        (-60i32..60).prop_map(|n| format!("BYWEEKNO={n}")),
        (-400i32..400).prop_map(|n| format!("BYYEARDAY={n}")),
    ];
    (freq, prop::collection::vec(part, 0..5)).prop_map(|(f, mut parts)| {
        parts.insert(0, f);
        parts.join(";")
    })
}

/// DTSTART lines of every kind, including edge years.
fn dtstart() -> impl Strategy<Value = String> {
    let year = prop_oneof![1 => Just(1u32), 1 => Just(1969), 8 => 1990u32..2040, 1 => Just(9999)];
    (year, 1u32..13, 1u32..29, 0u32..24, 0u32..60).prop_flat_map(|(y, mo, d, h, mi)| {
        let date = format!("{y:04}{mo:02}{d:02}");
        let time = format!("{date}T{h:02}{mi:02}00");
        prop::sample::select(vec![
            format!("DTSTART;VALUE=DATE:{date}"),
            format!("DTSTART:{time}Z"),
            format!("DTSTART:{time}"),
            format!("DTSTART;TZID=America/New_York:{time}"),
            format!("DTSTART;TZID=Europe/Berlin:{time}"),
            format!("DTSTART;TZID=Australia/Lord_Howe:{time}"),
            format!("DTSTART;TZID=Nowhere/Else:{time}"),
        ])
    })
}

fn vevent() -> impl Strategy<Value = String> {
    (
        dtstart(),
        prop::option::of(rrule()),
        prop::option::of(one_of(&[
            "DURATION:PT1H",
            "DURATION:P1D",
            "DURATION:-PT1H",
            "DURATION:P9999999W",
            "DTEND:20300101T000000Z",
            "DTEND;VALUE=DATE:20300101",
            "EXDATE:20240101T000000Z,20240102T000000Z",
            "EXDATE;VALUE=DATE:20240101",
            "RDATE:20240105T000000Z",
            "RECURRENCE-ID:20240101T000000Z",
            "STATUS:CANCELLED",
        ])),
    )
        .prop_map(|(start, rule, extra)| {
            let mut lines = vec!["BEGIN:VEVENT".to_string(), "UID:u".into(), start];
            lines.extend(rule.map(|r| format!("RRULE:{r}")));
            lines.extend(extra);
            lines.push("END:VEVENT".into());
            lines.join("\r\n")
        })
}

/// CSV cells near the valid ones.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&[
            "2024-11-29",
            "2024-11-29 09:00",
            "2024-11-29T09:00:00Z",
            "2024-11-29T09:00:00+14:00",
            "+262143-12-31",
            "9999-12-31",
            "0000-01-01",
            "30%",
            "0.3",
            "-100%",
            "1e308%",
            "NaN",
            "a;b|c",
            "\"x,y\"",
            "",
        ]),
        "[ -~]{0,12}",
    ]
}

fn csv(header: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(cell(), 2..6), 0..6).prop_map(move |rows| {
        let body: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
        format!("{header}\n{}", body.join("\n"))
    })
}

/// JSON objects near the valid ones.
fn json_line() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        one_of(&[
            "\"started\"",
            "\"failed\"",
            "\"2024-01-01T00:00:00Z\"",
            "\"checkout\"",
            "1700000000",
            "-1",
            "1e300",
            "18446744073709551615",
            "null",
            "[]",
            "{}",
            "\"\"",
        ]),
        "\"[ -~]{0,10}\"",
    ];
    let key = one_of(&[
        "workload",
        "status",
        "at",
        "timestamp",
        "id",
        "environment",
        "text",
        "deployment",
        "deployment_status",
        "other",
    ]);
    prop::collection::vec((key, value), 0..6).prop_map(|kv| {
        let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!("{{{}}}", fields.join(", "))
    })
}

// 256 cases each (proptest's default); set PROPTEST_CASES to search longer.
proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        every_parser(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        every_parser(&text);
    }

    #[test]
    fn calendars_near_valid_never_panic_and_expansion_ends(
        events in prop::collection::vec(vevent(), 1..4),
        from in 600_000_000i64..2_300_000_000,
        span in 1i64..100_000_000,
    ) {
        let text = format!("BEGIN:VCALENDAR\r\n{}\r\nEND:VCALENDAR\r\n", events.join("\r\n"));
        if let Ok(cal) = parse_ics("fuzz.ics", &text) {
            let from_t = DateTime::from_timestamp(from, 0).unwrap_or_default();
            let to_t = DateTime::from_timestamp(from + span, 0).unwrap_or_default();
            let limits = ExpandLimits { max_occurrences: 300, max_scan_per_event: 3_000 };
            let got = cal.occurrences(from_t, to_t, &limits);
            prop_assert!(got.events.len() <= 300);
            for e in &got.events {
                prop_assert!(e.end >= e.start);
                prop_assert!(e.start < to_t);
            }
        }
    }

    #[test]
    fn csv_near_valid_never_panics(
        campaigns in csv("start,end,workloads,expected_uplift"),
        schedule in csv("start,end,workloads,description"),
        volume in csv("timestamp,value"),
    ) {
        let _ = parse_campaigns("c.csv", &campaigns);
        let _ = parse_deploy_schedule("d.csv", &schedule, TimeDelta::minutes(30));
        let _ = parse_volume_series("v.csv", &volume);
    }

    #[test]
    fn json_near_valid_never_panics(lines in prop::collection::vec(json_line(), 0..6)) {
        let text = lines.join("\n");
        let _ = parse_deploy_events("e.jsonl", &text, now());
        let _ = parse_posts("p.jsonl", &text);
        for line in &lines {
            let _ = parse_github_webhook("hook", None, line);
        }
    }

    #[test]
    fn indicators_stay_between_zero_and_one(
        intervals in prop::collection::vec((-1_000i64..20_000, -1_000i64..20_000), 0..20),
        start in -5_000i64..5_000,
        step in 1i64..5_000,
        len in 0usize..50,
    ) {
        let grid = Grid::new(start, step, len);
        prop_assume!(grid.is_ok());
        let Ok(grid) = grid else { return Ok(()) };
        let windows: Vec<signals::EventWindow> = intervals
            .iter()
            .map(|(s, e)| signals::EventWindow { name: "x".into(), start: *s, end: *e })
            .collect();
        let got = event_indicator(&windows, &grid);
        prop_assert_eq!(got.len(), len);
        prop_assert!(got.iter().all(|v| (0.0..=1.0).contains(v)), "{:?}", got);
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
        let campaigns: Vec<signals::Campaign> = intervals
            .iter()
            .map(|(s, e)| signals::Campaign {
                start: t(*s),
                end: t(*e),
                workloads: vec![],
                expected_uplift: 0.5,
            })
            .collect();
        prop_assert!(campaign_active(&campaigns, "w", &grid).iter().all(|v| (0.0..=1.0).contains(v)));
        let deployments: Vec<signals::Deployment> = intervals
            .iter()
            .map(|(s, e)| signals::Deployment {
                id: "d".into(),
                workloads: vec!["w".into()],
                environment: "production".into(),
                start: t(*s),
                end: t(*e),
                status: signals::DeploymentStatus::Planned,
                description: String::new(),
                source: "t".into(),
            })
            .collect();
        prop_assert!(deployment_indicator(&deployments, "w", &grid).iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn sentiment_series_stay_in_range(
        raw in prop::collection::vec((-10_000i64..10_000, 1i64..3_000, 0u64..1_000, prop::option::of(-1.0f64..=1.0)), 0..20),
        start in -20_000i64..20_000,
        step in 1i64..4_000,
        len in 0usize..40,
    ) {
        let Ok(grid) = Grid::new(start, step, len) else { return Ok(()) };
        let buckets: Vec<SentimentBucket> = raw
            .iter()
            .map(|(s, l, v, m)| SentimentBucket { start: *s, end: s + l, volume: *v, mean_compound: *m })
            .collect();
        let got = sentiment_regressors(&buckets, &grid);
        prop_assert_eq!(got.volume.len(), len);
        prop_assert!(got.volume.iter().all(|v| v.is_finite() && *v >= 0.0));
        prop_assert!(got.mean_compound.iter().all(|c| (-1.0..=1.0).contains(c)));
    }
}
