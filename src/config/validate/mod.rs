//! Raw config → typed [`Config`]: defaults applied, every value checked, every
//! reference resolved. Problems are collected, not returned at the first one,
//! so an operator fixes the whole file in one round.
//!
//! One [`Validator`] walks the files; its methods are split by section:
//! `top` (server, storage, defaults, notifiers, response targets,
//! maintenance), `checks` (services and their checks), `probes` (what each
//! probe kind needs), `policy` (SLOs and incident policies) and `parse`
//! (single values: names, durations, numbers, URLs, addresses).

mod checks;
mod parse;
mod policy;
mod probes;
mod top;

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Location;

use super::Env;
use super::error::{Problem, Warning};
use super::raw::{IncludedFile, RawConfig};
use super::types::*;

/// Location used when a problem has nothing better to point at (a key
/// missing from the top level of the file).
const TOP: (u64, u64) = (1, 1);

/// What validation found: the config (meaningful only without problems),
/// every problem and every warning, unsorted.
pub(crate) struct Checked {
    pub config: Config,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

/// Validate the main file `raw` (named `file`) together with the included
/// files, in include order. Environment variables named by `_env` keys are
/// looked up through `env`.
pub(crate) fn validate(
    raw: RawConfig,
    file: &str,
    includes: &[IncludedFile],
    env: Env<'_>,
) -> Checked {
    let mut v = Validator {
        file,
        problems: Vec::new(),
        warnings: Vec::new(),
        retention: Storage::DEFAULT_RETENTION,
        env,
        seen_notifiers: HashMap::new(),
        seen_services: HashMap::new(),
        severity_uses: Vec::new(),
    };
    let config = v.config(raw, file, includes);
    Checked {
        config,
        problems: v.problems,
        warnings: v.warnings,
    }
}

struct Validator<'a> {
    /// The file being read: problems are located in it.
    file: &'a str,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
    /// `storage.retention` once read: SLO windows may not be longer.
    retention: Duration,
    env: Env<'a>,
    /// Names seen so far across all files → (file, line), for duplicates.
    seen_notifiers: HashMap<String, (&'a str, u64)>,
    seen_services: HashMap<String, (&'a str, u64)>,
    /// Each service's incident severity and where it comes from, for the
    /// warning about severities without response targets.
    severity_uses: Vec<SeverityUse<'a>>,
}

struct SeverityUse<'a> {
    severity: String,
    file: &'a str,
    at: (u64, u64),
    path: String,
}

fn pos(loc: &Location) -> (u64, u64) {
    (loc.line(), loc.column())
}

fn sub(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Validator<'a> {
    fn config(&mut self, raw: RawConfig, main: &'a str, includes: &'a [IncludedFile]) -> Config {
        let server = self.server(raw.server.as_ref());
        let storage = self.storage(raw.storage.as_ref());
        self.retention = storage.retention;
        let defaults = self.defaults(raw.defaults.as_ref());
        let metrics = Metrics {
            check_histograms: raw
                .metrics
                .as_ref()
                .and_then(|m| m.value.check_histograms)
                .unwrap_or(Metrics::default().check_histograms),
        };
        // Lists merge across files: the main file's first, then each
        // included file's in include order.
        let mut notifiers = self.notifiers(&raw.notifiers);
        for part in includes {
            self.file = &part.file;
            notifiers.extend(self.notifiers(&part.raw.notifiers));
        }
        self.file = main;
        let response_targets = self.response_targets(&raw.response_targets);
        let mut services = self.services(&raw.services, &defaults, &notifiers);
        for part in includes {
            self.file = &part.file;
            services.extend(self.services(&part.raw.services, &defaults, &notifiers));
        }
        self.file = main;
        if raw.services.is_empty() && includes.iter().all(|p| p.raw.services.is_empty()) {
            self.report(
                TOP,
                "services",
                "no services configured".into(),
                Some("add a `services:` list with at least one service and check".into()),
            );
        }
        let mut maintenance = self.maintenance(&raw.maintenance, &services);
        for part in includes {
            self.file = &part.file;
            maintenance.extend(self.maintenance(&part.raw.maintenance, &services));
        }
        self.file = main;
        self.server_warnings(&raw, &server);
        self.severity_warnings(&response_targets);
        self.file = main;
        Config {
            server,
            storage,
            defaults,
            notifiers,
            response_targets,
            maintenance,
            services,
            metrics,
        }
    }

    pub(super) fn report(
        &mut self,
        at: (u64, u64),
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: at.0,
            column: at.1,
            key_path: path.to_string(),
            message,
            hint,
        });
    }

    pub(super) fn problem(&mut self, at: (u64, u64), path: &str, message: impl Into<String>) {
        self.report(at, path, message.into(), None);
    }

    pub(super) fn missing(&mut self, parent: (u64, u64), parent_path: &str, key: &str) {
        self.problem(
            parent,
            &sub(parent_path, key),
            format!("missing required key `{key}`"),
        );
    }

    pub(super) fn warn(
        &mut self,
        at: (u64, u64),
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.warnings.push(Warning {
            problem: Problem {
                file: self.file.to_string(),
                line: at.0,
                column: at.1,
                key_path: path.to_string(),
                message,
                hint,
            },
            blocks_run: false,
        });
    }

    /// Where a name was first defined, as a duplicate's message says it.
    pub(super) fn first_defined(&self, (file, line): (&str, u64)) -> String {
        if file == self.file {
            format!("first defined on line {line}")
        } else {
            format!("first defined at {file}:{line}")
        }
    }
}
