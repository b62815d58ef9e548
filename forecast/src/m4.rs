//! Reads the M4 competition's wide CSV files (one series per row, `"H1","605","586",...`).
//!
//! The M4 data (github.com/Mcompetitions/M4-methods, `Dataset/{Train,Test}/*.csv`) is the
//! public yardstick `bench/forecast` measures against; rows end early when a series is short,
//! so trailing fields are empty.

use crate::ForecastError;

/// One M4 series: its id (`H1`) and its values in order.
#[derive(Debug, Clone, PartialEq)]
pub struct M4Series {
    /// The series id from the first column.
    pub id: String,
    /// The values, without the empty trailing fields.
    pub values: Vec<f64>,
}

/// Parses an M4 file; `source` names it in errors.
pub fn read_m4(text: &str, source: &str) -> Result<Vec<M4Series>, ForecastError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // Line 1 is the header.
        let line = i + 2;
        let record = record.map_err(|e| ForecastError::Invalid(format!("{source}:{line}: {e}")))?;
        let mut fields = record.iter();
        let id = fields
            .next()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ForecastError::Invalid(format!("{source}:{line}: no series id")))?
            .to_string();
        let values = fields
            .map(str::trim)
            .take_while(|f| !f.is_empty())
            .enumerate()
            .map(|(col, f)| {
                f.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        ForecastError::Invalid(format!(
                            "{source}:{line}: column {}: `{f}` is not a number",
                            col + 2
                        ))
                    })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        out.push(M4Series { id, values });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_of_different_lengths() {
        let text =
            "\"V1\",\"V2\",\"V3\",\"V4\"\n\"H1\",\"1\",\"2.5\",\"3\"\n\"H2\",\"4\",\"\",\"\"\n";
        let series = read_m4(text, "t.csv").expect("parses");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].values, vec![1.0, 2.5, 3.0]);
        assert_eq!(
            series[1],
            M4Series {
                id: "H2".into(),
                values: vec![4.0]
            }
        );
    }

    #[test]
    fn a_bad_number_names_file_line_and_column() {
        let err = read_m4("\"V1\",\"V2\"\n\"H1\",\"x\"\n", "t.csv").expect_err("bad");
        assert!(err.to_string().contains("t.csv:2: column 2"), "{err}");
    }
}
