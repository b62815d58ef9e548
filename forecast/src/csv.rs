//! Reads `timestamp,value` (NAB) and `ds,y` (Prophet) CSV files into raw observations.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::ForecastError;

/// Samples as read from a file, in file order; `NaN` marks an empty or `NaN` value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// Unix seconds (UTC; naive timestamps are taken as UTC).
    pub times: Vec<i64>,
    /// Values, `NaN` where missing.
    pub values: Vec<f64>,
}

/// Reads a two-column time series CSV file (header optional).
pub fn read_observations(path: &Path) -> Result<Observations, ForecastError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ForecastError::Io {
        file: file.clone(),
        source,
    })?;
    parse_observations(&text, &file)
}

/// Parses two-column time series CSV text; `file` names the source in errors.
///
/// The first record is a header when its first field is not a timestamp. Timestamps may be
/// `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS`, RFC 3339, `YYYY-MM-DD` or integer unix seconds.
pub fn parse_observations(text: &str, file: &str) -> Result<Observations, ForecastError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut names = vec!["1".to_string(), "2".to_string()];
    let mut out = Observations::default();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ForecastError::Parse {
            file: file.to_string(),
            line: e.position().map_or(0, |p| p.line()),
            field: "record".into(),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(index as u64 + 1, |p| p.line());
        let error = |field: &str, message: String| ForecastError::Parse {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message,
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let first = record.get(0).unwrap_or("");
        if index == 0 && parse_timestamp(first).is_none() {
            names = record.iter().map(str::to_string).collect();
            if names.len() < 2 {
                return Err(error(first, "expected two columns: time and value".into()));
            }
            continue;
        }
        if record.len() < 2 {
            return Err(error(
                &names[1],
                format!("missing value column (got {} fields)", record.len()),
            ));
        }
        let time = parse_timestamp(first)
            .ok_or_else(|| error(&names[0], format!("`{first}` is not a timestamp")))?;
        let raw = record.get(1).unwrap_or("");
        let value =
            parse_value(raw).ok_or_else(|| error(&names[1], format!("`{raw}` is not a number")))?;
        out.times.push(time);
        out.values.push(value);
    }
    if out.times.is_empty() {
        return Err(ForecastError::Parse {
            file: file.to_string(),
            line: 1,
            field: names[0].clone(),
            message: "no data rows".into(),
        });
    }
    Ok(out)
}

/// Parses one timestamp into unix seconds; `None` when no format matches.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    let s = s.trim();
    for f in FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp());
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    // Bare integers are unix seconds, but not tiny ones that are really a header like "1".
    s.parse::<i64>().ok().filter(|v| *v > 100_000_000)
}

fn parse_value(s: &str) -> Option<f64> {
    if s.is_empty() || s.eq_ignore_ascii_case("nan") || s.eq_ignore_ascii_case("null") {
        return Some(f64::NAN);
    }
    s.parse::<f64>().ok().filter(|v| !v.is_infinite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nab_style_with_header() {
        // First rows of numenta-NAB/nyc_taxi.csv.
        let text = "timestamp,value\n2014-07-01 00:00:00,10844\n2014-07-01 00:30:00,8127\n";
        let obs = parse_observations(text, "nyc.csv").expect("parses");
        assert_eq!(obs.times, vec![1_404_172_800, 1_404_174_600]);
        assert_eq!(obs.values, vec![10844.0, 8127.0]);
    }

    #[test]
    fn reads_prophet_style_quoted_dates() {
        // First rows of facebook-prophet/example_wp_log_peyton_manning.csv.
        let text =
            "\"ds\",\"y\"\n\"2007-12-10\",9.59076113897809\n\"2007-12-11\",8.51959031601596\n";
        let obs = parse_observations(text, "pm.csv").expect("parses");
        assert_eq!(obs.times[1] - obs.times[0], 86_400);
        assert!((obs.values[1] - 8.519_590_316_015_96).abs() < 1e-12);
    }

    #[test]
    fn headerless_and_missing_values() {
        let text = "2014-07-01 00:00:00,1\n2014-07-01 00:30:00,\n2014-07-01 01:00:00,NaN\n";
        let obs = parse_observations(text, "x.csv").expect("parses");
        assert_eq!(obs.values.len(), 3);
        assert!(obs.values[1].is_nan() && obs.values[2].is_nan());
    }

    #[test]
    fn bad_value_names_file_line_and_field() {
        let text = "timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01 00:30:00,abc\n";
        let err = parse_observations(text, "bad.csv").expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("bad.csv:3"), "{msg}");
        assert!(msg.contains("`value`"), "{msg}");
    }

    #[test]
    fn bad_timestamp_names_the_time_column() {
        let text = "ds,y\n2014-07-01,1\n2014-13-45,2\n";
        let msg = parse_observations(text, "d.csv")
            .expect_err("must fail")
            .to_string();
        assert!(msg.contains("d.csv:3") && msg.contains("`ds`"), "{msg}");
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(parse_observations("timestamp,value\n", "e.csv").is_err());
    }
}
