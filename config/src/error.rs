//! The one config error type: every rejection names the file, the line and the field.

use std::fmt;
use std::path::PathBuf;

/// A path to a field inside a config file, e.g. `workloads[0].guard.max_p99_ms`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl FieldPath {
    /// The path of a top-level key.
    pub fn root(key: &str) -> Self {
        FieldPath(vec![Segment::Key(key.to_string())])
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_string()));
        p
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        FieldPath(
            path.iter()
                .filter_map(|s| match s {
                    S::Map { key } | S::Enum { variant: key } => Some(Segment::Key(key.clone())),
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Why a config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not have the schema's shape (unknown or misspelled
    /// key, wrong type).
    #[error("{}:{line}:{column}: {field}{sep}{message}", path.display(), sep = if field.0.is_empty() { "" } else { ": " })]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
        /// The field being read, as far as it is known.
        field: FieldPath,
        /// What is wrong.
        message: String,
    },
    /// A well-formed value the schema does not allow (out of range, duplicate, inconsistent).
    #[error("{}:{line}: {field}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the field (or of its nearest enclosing table).
        line: usize,
        /// The offending field.
        field: FieldPath,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    /// The field the error is about (empty for read errors).
    pub fn field(&self) -> Option<&FieldPath> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { field, .. } | ConfigError::Invalid { field, .. } => Some(field),
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// A validation failure before it is placed in a file: the field and the message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub field: FieldPath,
    pub message: String,
}

impl Invalid {
    pub fn new(field: FieldPath, message: impl fmt::Display) -> Self {
        Invalid {
            field,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_toml_access() {
        let p = FieldPath::root("workloads")
            .index(2)
            .key("guard")
            .key("window");
        assert_eq!(p.to_string(), "workloads[2].guard.window");
    }
}
