//! Reading a config file: TOML syntax and shape first, then validation, all or nothing.

use std::path::{Path, PathBuf};

use crate::controller::ControllerSettings;
use crate::error::{ConfigError, FieldPath, Invalid};
use crate::locate::{line_col, line_of};
use crate::proxy::{self, Env, ProxySettings};
use crate::raw::RawFile;
use crate::workload::{self, WorkloadSpec};

/// A validated `umbra.toml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[proxy]`.
    pub proxy: ProxySettings,
    /// `[[workloads]]`, in file order.
    pub workloads: Vec<WorkloadSpec>,
    /// `[controller]` (defaults when absent).
    pub controller: ControllerSettings,
    /// The file it came from.
    pub source: PathBuf,
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Validates config `text`; `path` names it in errors; `env:NAME` tokens come from the
/// process environment.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with_env(path, text, &|name| std::env::var(name).ok())
}

/// Like [`parse`], with `env:NAME` tokens looked up through `env` (e.g. a token generated for
/// this run, without mutating the process environment).
pub fn parse_with_env(path: &Path, text: &str, env: &Env<'_>) -> Result<Config, ConfigError> {
    let raw: RawFile = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| syntax_in(path, text, &e))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    validate(&raw, &base, env)
        .map_err(|e| invalid_in(path, text, e))
        .map(|(proxy, workloads, controller)| Config {
            proxy,
            workloads,
            controller,
            source: path.to_path_buf(),
        })
}

fn validate(
    raw: &RawFile,
    base: &Path,
    env: &Env<'_>,
) -> Result<(ProxySettings, Vec<WorkloadSpec>, ControllerSettings), Invalid> {
    let proxy = proxy::validate(&raw.proxy, env, base)?;
    let at = FieldPath::root("workloads");
    let workloads = raw
        .workloads
        .iter()
        .enumerate()
        .map(|(i, w)| workload::validate(w, &at.index(i)))
        .collect::<Result<Vec<_>, _>>()?;
    workload::check_unique(&workloads)?;
    let controller = crate::controller::validate(raw.controller.as_ref(), &proxy, base, env)?;
    Ok((proxy, workloads, controller))
}

/// A validation failure placed in its file.
pub(crate) fn invalid_in(
    path: &Path,
    text: &str,
    Invalid { field, message }: Invalid,
) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: line_of(text, &field),
        field,
        message,
    }
}

/// A serde/TOML failure placed in its file, naming the key.
pub(crate) fn syntax_in(
    path: &Path,
    text: &str,
    e: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let inner = e.inner();
    let mut field = FieldPath::from_serde(e.path());
    let message = inner.message().trim().to_string();
    // For an unknown key serde's path stops at the enclosing table; name the key itself.
    if let Some(key) = unknown_field(&message) {
        field = field.key(key);
    }
    let (line, column) = match inner.span() {
        Some(span) => line_col(text, span.start),
        None => (line_of(text, &field), 1),
    };
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        field,
        message,
    }
}

/// The key in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// An error about `field` of the config file at `path`, placed on its line (for checks made
/// after loading, such as a certificate file's content).
pub fn invalid_field(
    path: &Path,
    field: FieldPath,
    message: impl std::fmt::Display,
) -> ConfigError {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    invalid_in(path, &text, Invalid::new(field, message))
}
