//! An iCalendar file through `signals::parse_ics`, then expanded as the controller's start-up does.
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;
use signals::ExpandLimits;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(calendar) = signals::parse_ics("fuzz.ics", text) else {
        return;
    };
    // The controller expands over [now - retention, now + 90 days] with the default limits.
    let now = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap_or_default();
    let _ = calendar.occurrences(
        now - TimeDelta::days(14),
        now + TimeDelta::days(90),
        &ExpandLimits::default(),
    );
});
