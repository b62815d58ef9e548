//! A parser for the Prometheus text exposition format, enough for the proxy's own metrics.

use std::collections::BTreeMap;

/// One sample line: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Metric name (e.g. `umbra_requests_total`).
    pub name: String,
    /// Label pairs.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses every sample line; comments, blank and malformed lines are skipped (a scrape of a
/// newer proxy with extra series must not fail).
pub fn parse(text: &str) -> Vec<Line> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let (labels, rest) = if let Some(body) = rest.strip_prefix('{') {
        let end = closing_brace(body)?;
        (parse_labels(&body[..end])?, &body[end + 1..])
    } else {
        (BTreeMap::new(), rest)
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Line {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Index of the `}` that closes the label set, skipping quoted values.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        out.insert(key, value);
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counters_histograms_and_skips_noise() {
        let text = "# HELP x y\n# TYPE umbra_requests_total counter\n\
            umbra_requests_total{code=\"200\",pool=\"primary\",workload=\"api\"} 42\n\
            umbra_request_duration_seconds_bucket{pool=\"shadow\",workload=\"a,b\",le=\"+Inf\"} 7\n\
            plain_metric 1.5e3\n\
            broken{oops 1\n\n";
        let lines = parse(text);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].labels["workload"], "api");
        assert_eq!(lines[0].value, 42.0);
        assert_eq!(lines[1].labels["workload"], "a,b");
        assert_eq!(lines[1].labels["le"], "+Inf");
        assert_eq!(lines[2].value, 1500.0);
    }

    #[test]
    fn escaped_quotes_in_label_values() {
        let lines = parse("m{a=\"x\\\"}y\"} 1\n");
        assert_eq!(lines[0].labels["a"], "x\"}y");
    }
}
