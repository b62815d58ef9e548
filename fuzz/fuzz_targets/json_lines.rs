//! The JSON Lines feeds: deployment events and social posts, with what the controller does next.
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap_or_default();
    // The controller's webhook without `X-GitHub-Event`: events, then deployments from them.
    if let Ok(events) = signals::parse_deploy_events("fuzz.jsonl", text, now) {
        let _ = signals::deployments_from_events(&events, TimeDelta::minutes(30));
    }
    // Posts are scored with VADER and bucketed by 5 minutes, as the controller stores them.
    if let Ok(posts) = signals::parse_posts("fuzz.jsonl", text) {
        let _ = signals::aggregate_posts(&posts, 0, 300);
    }
});
