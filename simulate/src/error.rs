//! Why a replay cannot run: bad settings or a trace it cannot replay.

/// A replay that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The trace has too few usable points, or bad values.
    #[error("trace: {0}")]
    Trace(String),
    /// A setting is out of range; the message names it.
    #[error("setting {name}: {message}")]
    Setting {
        /// The flag or field.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl SimulateError {
    pub(crate) fn setting(name: &'static str, message: impl Into<String>) -> Self {
        SimulateError::Setting {
            name,
            message: message.into(),
        }
    }
}
