//! A GitHub `deployment`/`deployment_status` delivery through `signals::parse_github_webhook`.
#![no_main]

use chrono::TimeDelta;
use libfuzzer_sys::fuzz_target;

/// `X-GitHub-Event` values: the two the parser reads, one it ignores, and none (inferred).
const EVENTS: [Option<&str>; 4] = [
    Some("deployment"),
    Some("deployment_status"),
    Some("ping"),
    None,
];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the header, the rest is the body.
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let event = EVENTS[usize::from(pick) % EVENTS.len()];
    // As the controller's webhook handler: one event, then the deployment it makes.
    if let Ok(Some(e)) = signals::parse_github_webhook("webhook:github", event, body) {
        let _ = signals::deployments_from_events(&[e], TimeDelta::minutes(30));
    }
});
