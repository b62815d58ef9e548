//! The forecast crate's error type.

/// Everything that can go wrong reading a series or forecasting it.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// A CSV file could not be opened or read.
    #[error("reading {file}: {source}")]
    Io {
        /// The file being read.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV record did not parse; names the file, line and field.
    #[error("{file}:{line}: field `{field}`: {message}")]
    Parse {
        /// The file being read.
        file: String,
        /// 1-based line number.
        line: u64,
        /// The column name (or its 1-based index when there is no header).
        field: String,
        /// What was wrong with it.
        message: String,
    },
    /// The series is too short for what was asked.
    #[error("series has {got} usable points, need at least {need}")]
    TooShort {
        /// Points available.
        got: usize,
        /// Points needed.
        need: usize,
    },
    /// An argument or input is invalid (bad level, misaligned regressor, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// One model could not fit or predict this series.
    #[error("model {model} failed: {reason}")]
    ModelFailed {
        /// The model's name.
        model: String,
        /// Why it failed.
        reason: String,
    },
    /// No candidate model could produce a forecast.
    #[error("every candidate model failed; last error: {0}")]
    AllModelsFailed(String),
}

impl ForecastError {
    /// Shorthand for a [`ForecastError::ModelFailed`].
    pub(crate) fn model(model: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::ModelFailed {
            model: model.into(),
            reason: reason.to_string(),
        }
    }
}
