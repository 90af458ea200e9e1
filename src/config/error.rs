//! What went wrong with a config file, in a shape both people (`sentinel
//! validate`) and code (`/-/reload` answers, tests) can use.

use std::fmt;
use std::path::PathBuf;

/// The error of [`crate::config::load`] / [`crate::config::parse_str`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config; every problem found is listed.
    #[error("{0}")]
    Invalid(Problems),
}

impl ConfigError {
    /// The problems, empty for an IO error. Handy for callers that render
    /// problems themselves (JSON answers of `/-/reload`).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Invalid(p) => &p.0,
        }
    }
}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problems(pub Vec<Problem>);

/// One thing to fix, located precisely enough for an editor to jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the location is unknown.
    pub line: u64,
    /// 1-based; 0 when the location is unknown.
    pub column: u64,
    /// Where in the document, e.g. `services[0].checks[1].interval`; empty for the root.
    pub key_path: String,
    pub message: String,
    /// What to do about it (`did you mean `interval`?`), when we know.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        write!(f, "{} problem(s) found", self.0.len())
    }
}

/// Something that will not stop sentinel from loading the file but will
/// likely bite later (an unset `_env` variable, write endpoints disabled).
/// `sentinel validate` prints them and exits 0 (2 with `--strict`); `run`
/// logs them at WARN at start and on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub problem: Problem,
    /// `run` and reload treat this one as an error: a check cannot run
    /// correctly without it (an unset `headers_env` variable).
    pub blocks_run: bool,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.problem.fmt(f)
    }
}
