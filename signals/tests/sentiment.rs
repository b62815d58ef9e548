//! Sentiment: VADER against the reference implementation, the posts feed, aggregation, the real
//! NAB Twitter volume slice on a grid, and one test per rejection.

mod support;

use signals::{
    Aggregator, Error, Grid, Problem, aggregate_posts, load_posts, load_volume_series, parse_posts,
    parse_volume_series, polarity_scores, sentiment_regressors,
};
use support::{read_fixture, unix, utc};

#[test]
fn vader_matches_the_reference_on_200_sentences() {
    let text = read_fixture("vader_reference.tsv");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [sentence, compound, pos, neu, neg] = cols[..] else {
            panic!("bad fixture line {line:?}")
        };
        let want = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        let got = polarity_scores(sentence);
        // The reference rounds compound to 4 decimals and the shares to 3.
        assert!(
            (got.compound - want(compound)).abs() <= 5.01e-5,
            "{sentence:?}: {got:?}"
        );
        assert!(
            (got.pos - want(pos)).abs() <= 5.01e-4,
            "{sentence:?}: {got:?}"
        );
        assert!(
            (got.neu - want(neu)).abs() <= 5.01e-4,
            "{sentence:?}: {got:?}"
        );
        assert!(
            (got.neg - want(neg)).abs() <= 5.01e-4,
            "{sentence:?}: {got:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 200);
}

#[test]
fn example_posts_aggregate_into_intervals() {
    let posts = load_posts(support::example("sentiment.jsonl"));
    let Ok(posts) = posts else {
        panic!("{posts:?}")
    };
    assert_eq!(posts.len(), 8);
    assert_eq!(posts[2].timestamp, utc("2024-11-29T08:05:00Z"));
    assert_eq!(posts[3].timestamp, utc("2024-11-29T08:07:02Z"));
    assert_eq!(posts[4].timestamp, utc("2024-11-29T07:12:30Z"));
    let buckets = aggregate_posts(&posts, 0, 600);
    let Ok(buckets) = buckets else {
        panic!("{buckets:?}")
    };
    let volumes: Vec<(i64, u64)> = buckets.iter().map(|b| (b.start, b.volume)).collect();
    assert_eq!(
        volumes,
        vec![
            (unix("2024-11-29T07:10:00Z"), 1),
            (unix("2024-11-29T08:00:00Z"), 4),
            (unix("2024-11-29T08:10:00Z"), 1),
            (unix("2024-11-29T08:20:00Z"), 2),
        ]
    );
    // "The site is down again?? This is the worst sale ever" is negative.
    assert!(buckets[0].mean_compound.is_some_and(|c| c < -0.5));
    let expected_0800: f64 = posts[..4]
        .iter()
        .map(|p| polarity_scores(&p.text).compound)
        .sum::<f64>()
        / 4.0;
    let got_0800 = buckets[1].mean_compound.unwrap_or(f64::NAN);
    assert!((got_0800 - expected_0800).abs() < 1e-12);
}

#[test]
fn streaming_and_batch_agree() {
    let posts = load_posts(support::example("sentiment.jsonl"));
    let Ok(posts) = posts else {
        panic!("{posts:?}")
    };
    let Ok(mut agg) = Aggregator::new(0, 300) else {
        panic!("step")
    };
    let mut streamed = Vec::new();
    for p in &posts {
        agg.push(p);
        // Emit whatever finished more than ten minutes before the latest post.
        streamed.extend(agg.drain_before(p.timestamp.timestamp() - 600));
    }
    streamed.extend(agg.drain_before(i64::MAX));
    streamed.sort_by_key(|b| b.start);
    assert_eq!(Ok(streamed), aggregate_posts(&posts, 0, 300));
}

/// The first ten hours of NAB's real Twitter mention volume for AMZN, hour by hour.
#[test]
fn real_twitter_volume_on_an_hourly_grid() {
    let points = load_volume_series(support::fixture("twitter_volume_amzn_slice.csv"));
    let Ok(points) = points else {
        panic!("{points:?}")
    };
    assert_eq!(points.len(), 120);
    assert_eq!(points[0].at, utc("2015-02-26T21:42:53Z"));
    assert_eq!(points[0].count, 57);
    // Independent sum straight from the CSV text.
    let raw_total: u64 = read_fixture("twitter_volume_amzn_slice.csv")
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok())
        .sum();

    // NAB samples sit at :42:53 etc.; 5-minute buckets aligned on the first sample keep each
    // sample in its own bucket.
    let origin = points[0].at.timestamp();
    let Ok(mut agg) = Aggregator::new(origin, 300) else {
        panic!("step")
    };
    for p in &points {
        agg.push_volume(*p);
    }
    let buckets = agg.buckets();
    assert_eq!(buckets.len(), 120);
    assert_eq!(buckets.iter().map(|b| b.volume).sum::<u64>(), raw_total);
    assert!(buckets.iter().all(|b| b.mean_compound.is_none()));

    // Ten hourly grid points from the first sample, then two hours of future.
    let Ok(grid) = Grid::new(origin, 3600, 12) else {
        panic!("grid")
    };
    let series = sentiment_regressors(&buckets, &grid);
    let hourly: f64 = series.volume[..10].iter().sum();
    assert!(
        (hourly - raw_total as f64).abs() < 1e-6,
        "{hourly} vs {raw_total}"
    );
    for (i, v) in series.volume[..10].iter().enumerate() {
        let want: u64 = points[i * 12..(i + 1) * 12].iter().map(|p| p.count).sum();
        assert!((v - want as f64).abs() < 1e-6, "hour {i}: {v} vs {want}");
    }
    // The future carries the last hour of data forward.
    assert_eq!(series.volume[10], series.volume[9]);
    assert_eq!(series.volume[11], series.volume[9]);
    // Volume-only data has no sentiment: neutral everywhere.
    assert!(series.mean_compound.iter().all(|c| *c == 0.0));
}

/// Asserts `result` is an `Invalid` error at `line` and `field` with a matching problem.
fn rejected<T: std::fmt::Debug>(
    result: Result<T, Error>,
    line: usize,
    field: &str,
    check: fn(&Problem) -> bool,
) {
    let Err(e) = result else {
        panic!("accepted: {result:?}")
    };
    let Error::Invalid {
        line: l,
        field: f,
        problem,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((*l, f.as_str()), (Some(line), field), "{e}");
    assert!(check(problem), "{e}");
}

const OK_POST: &str = r#"{"timestamp": 1700000000, "text": "fine"}"#;

#[test]
fn rejects_post_without_text() {
    rejected(
        parse_posts(
            "posts.jsonl",
            &format!("{OK_POST}\n{{\"timestamp\": 1700000000}}\n"),
        ),
        2,
        "text",
        |p| *p == Problem::Missing,
    );
}

#[test]
fn rejects_post_with_bad_timestamp() {
    rejected(
        parse_posts(
            "posts.jsonl",
            r#"{"timestamp": "last tuesday", "text": "x"}"#,
        ),
        1,
        "timestamp",
        |p| matches!(p, Problem::BadTime { .. }),
    );
    // Milliseconds are refused, not read as a date in the year 55,000.
    rejected(
        parse_posts(
            "posts.jsonl",
            r#"{"timestamp": 1700000000000, "text": "x"}"#,
        ),
        1,
        "timestamp",
        |p| matches!(p, Problem::BadTime { .. }),
    );
}

#[test]
fn rejects_post_with_non_string_text() {
    rejected(
        parse_posts("posts.jsonl", r#"{"timestamp": 1700000000, "text": 5}"#),
        1,
        "text",
        |p| matches!(p, Problem::BadValue { .. }),
    );
}

#[test]
fn rejects_negative_volume() {
    rejected(
        parse_volume_series("v.csv", "timestamp,value\n2015-02-26 21:42:53,-3\n"),
        2,
        "value",
        |p| matches!(p, Problem::BadNumber { .. }),
    );
}
