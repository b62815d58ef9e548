//! The CSV feeds: campaigns, the deployment schedule and a sentiment volume series, same bytes each.
#![no_main]

use chrono::TimeDelta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Each parser rejects the others' columns early, so one input exercises all three headers.
    let _ = signals::parse_campaigns("fuzz.csv", text);
    let _ = signals::parse_deploy_schedule("fuzz.csv", text, TimeDelta::minutes(30));
    let _ = signals::parse_volume_series("fuzz.csv", text);
});
