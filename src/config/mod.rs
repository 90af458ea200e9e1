//! Configuration: YAML text → raw serde types (unknown keys rejected, every
//! node spanned) → validation → typed [`Config`].
//!
//! All problems in a file are collected and reported in one go, each with the
//! file, line, column, key path and what to do. Syntax, type and unknown-key
//! errors come from the YAML parser, which stops at the first one per file;
//! semantic problems (ranges, references, durations, URLs, ...) are all
//! reported.
//!
//! The main file may `include:` more files (glob patterns relative to it);
//! their `services`, `notifiers` and `maintenance` lists are appended to the
//! main file's, and each problem names the file it is in.
//!
//! Besides problems, loading yields [`Warning`]s: things that will not stop
//! the file from loading but will bite later (an unset `_env` variable,
//! write endpoints disabled, a severity without response targets).

pub mod duration;
mod error;
pub mod inbound;
mod include;
pub mod jsonpath;
pub mod limits;
mod raw;
mod status_page;
mod suggest;
pub mod tickets;
mod types;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Problem, Problems, Warning};
pub use inbound::{HookProvider, Inbound};
pub use types::*;

/// A valid config and what it warns about.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// In file order (main file first, then included files in include order).
    pub warnings: Vec<Warning>,
}

/// Reads an environment variable for the `_env` keys; `None` when unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment; an empty variable counts as unset.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Read and validate the config file at `path` (and the files it includes)
/// against the process environment; warnings are dropped. Problems name the
/// file as given, so editors and terminals can jump to them.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_checked(path, &process_env).map(|l| l.config)
}

/// [`load`], keeping the warnings.
pub fn load_checked(path: &Path, env: Env<'_>) -> Result<Loaded, ConfigError> {
    let text = read(path).map_err(|e| match e {
        ReadError::Io(source) => ConfigError::Io {
            path: path.to_path_buf(),
            source,
        },
        ReadError::TooLarge(p) => ConfigError::Invalid(Problems(vec![p])),
    })?;
    parse_with_env(&text, &path.display().to_string(), env)
}

/// What `sentinel run` and reload load: [`load_checked`] against the process
/// environment, where a warning that blocks running (an unset `headers_env`
/// variable: the check would run without its credentials) is an error.
pub fn load_for_run(path: &Path) -> Result<Loaded, ConfigError> {
    let loaded = load_checked(path, &process_env)?;
    let (blocking, warnings): (Vec<Warning>, Vec<Warning>) =
        loaded.warnings.into_iter().partition(|w| w.blocks_run);
    if blocking.is_empty() {
        return Ok(Loaded {
            config: loaded.config,
            warnings,
        });
    }
    Err(ConfigError::Invalid(Problems(
        blocking.into_iter().map(|w| w.problem).collect(),
    )))
}

/// Parse and validate config text against the process environment; `file`
/// is used in problem locations, and `include:` patterns resolve against its
/// directory.
///
/// A relative `storage.path` is kept relative: it resolves against the
/// working directory of the process, not the config file's directory.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_with_env(text, file, &process_env).map(|l| l.config)
}

/// [`parse_str`] with the environment given (tests, and callers that must
/// not read the process environment).
pub fn parse_with_env(text: &str, file: &str, env: Env<'_>) -> Result<Loaded, ConfigError> {
    let raw = yaml::parse(text, file).map_err(|p| ConfigError::Invalid(Problems(vec![p])))?;
    let base = Path::new(file)
        .parent()
        .map_or_else(PathBuf::new, Path::to_path_buf);
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut includes: Vec<raw::IncludedFile> = Vec::new();
    let mut seen: Vec<PathBuf> = vec![canonical(Path::new(file))];
    // Every file read, in include order: problems are sorted by it.
    let mut order: Vec<String> = vec![file.to_string()];
    for pattern in &raw.include {
        let at = (pattern.referenced.line(), pattern.referenced.column());
        let here = |message: String, hint: Option<String>| Problem {
            file: file.to_string(),
            line: at.0,
            column: at.1,
            key_path: "include".to_string(),
            message,
            hint,
        };
        let files = match include::expand(&base, &pattern.value) {
            Err(e) => {
                problems.push(here(e.to_string(), None));
                continue;
            }
            Ok(include::Expanded::Missing(p)) => {
                problems.push(here(
                    format!("included file {} does not exist", p.display()),
                    Some("patterns are relative to the including file's directory".into()),
                ));
                continue;
            }
            Ok(include::Expanded::Files(f)) if f.is_empty() => {
                warnings.push(Warning {
                    problem: here(
                        format!("include pattern `{}` matches no file", pattern.value.trim()),
                        Some("patterns are relative to the including file's directory".into()),
                    ),
                    blocks_run: false,
                });
                continue;
            }
            Ok(include::Expanded::Files(f)) => f,
        };
        for path in files {
            // A file matched twice (or the main file itself) is read once.
            let c = canonical(&path);
            if seen.contains(&c) {
                continue;
            }
            seen.push(c);
            let name = path.display().to_string();
            order.push(name.clone());
            match read(&path) {
                Ok(text) => match yaml::parse_fragment(&text, &name) {
                    Ok(raw) => includes.push(raw::IncludedFile { file: name, raw }),
                    Err(p) => problems.push(p),
                },
                Err(ReadError::TooLarge(p)) => problems.push(p),
                Err(ReadError::Io(e)) => {
                    problems.push(here(format!("cannot read included file {name}: {e}"), None))
                }
            }
        }
    }
    let validated = validate::validate(raw, file, &includes, env);
    problems.extend(validated.problems);
    warnings.extend(validated.warnings);
    // File order reads best: the main file, then each included file; within
    // a file by position. The sort is stable, so same-place entries keep the
    // order they were found in.
    let order = |f: &str| -> usize { order.iter().position(|n| n == f).unwrap_or(usize::MAX) };
    if !problems.is_empty() {
        problems.sort_by_key(|p| (order(&p.file), p.line, p.column));
        return Err(ConfigError::Invalid(Problems(problems)));
    }
    warnings.sort_by_key(|w| (order(&w.problem.file), w.problem.line, w.problem.column));
    Ok(Loaded {
        config: validated.config,
        warnings,
    })
}

enum ReadError {
    Io(std::io::Error),
    TooLarge(Problem),
}

/// A config file's text, refusing files over [`limits::MAX_FILE_BYTES`]
/// before reading them.
fn read(path: &Path) -> Result<String, ReadError> {
    let len = std::fs::metadata(path).map_err(ReadError::Io)?.len();
    if len > limits::MAX_FILE_BYTES as u64 {
        return Err(ReadError::TooLarge(Problem {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            key_path: String::new(),
            message: format!(
                "the file is {} MiB, more than {} MiB",
                len / (1024 * 1024),
                limits::MAX_FILE_BYTES / (1024 * 1024)
            ),
            hint: Some("split the services over several files with `include:`".into()),
        }));
    }
    std::fs::read_to_string(path).map_err(ReadError::Io)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
