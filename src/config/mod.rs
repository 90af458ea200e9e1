//! Configuration: YAML text → raw serde types (unknown keys rejected, every
//! node spanned) → validation → typed [`Config`].
//!
//! All problems in a file are collected and reported in one go, each with the
//! file, line, column, key path and what to do. Syntax, type and unknown-key
//! errors come from the YAML parser, which stops at the first one; semantic
//! problems (ranges, references, durations, URLs, ...) are all reported.

pub mod duration;
mod error;
mod raw;
mod status_page;
mod types;
mod validate;

use std::path::Path;

pub use error::{ConfigError, Problem, Problems};
pub use types::*;

/// Read and validate the config file at `path`. Problems name the file as
/// given, so editors and terminals can jump to them.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, &path.display().to_string())
}

/// Parse and validate config text; `file` is only used in problem locations.
///
/// A relative `storage.path` is kept relative: it resolves against the
/// working directory of the process, not the config file's directory.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let raw = raw::parse(text, file).map_err(|p| ConfigError::Invalid(Problems(vec![p])))?;
    validate::validate(raw, file).map_err(ConfigError::Invalid)
}
