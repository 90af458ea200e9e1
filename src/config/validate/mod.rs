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
mod inbound;
mod parse;
mod policy;
mod probes;
mod tickets;
mod top;

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Location;

use super::Env;
use super::error::{Problem, Warning};
use super::raw::{IncludedFile, RawConfig};
use super::types::*;

/// Where in a file a problem or warning points; both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    line: u64,
    column: u64,
}

/// Where a problem points when it has nothing better (a key missing from
/// the top level of the file).
const FILE_START: Position = Position { line: 1, column: 1 };

/// Where a name (of a service or notifier) was first defined, for the
/// message about a duplicate.
#[derive(Debug, Clone, Copy)]
struct FirstDefinition<'a> {
    file: &'a str,
    line: u64,
}

/// What validation found: the config (meaningful only without problems),
/// every problem and every warning, unsorted.
pub(crate) struct Validated {
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
) -> Validated {
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
    Validated {
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
    /// Names seen so far across all files, for duplicates.
    seen_notifiers: HashMap<String, FirstDefinition<'a>>,
    seen_services: HashMap<String, FirstDefinition<'a>>,
    /// Each service's incident severity and where it comes from, for the
    /// warning about severities without response targets.
    severity_uses: Vec<SeverityUse<'a>>,
}

struct SeverityUse<'a> {
    severity: String,
    file: &'a str,
    at: Position,
    path: String,
}

/// Where a spanned value of the file starts.
fn pos(loc: &Location) -> Position {
    Position {
        line: loc.line(),
        column: loc.column(),
    }
}

/// The key path of `key` under `path`: `services[0]` + `name` →
/// `services[0].name`; under the root, `key` itself.
fn join_key(path: &str, key: &str) -> String {
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
        let metrics = MetricsExport {
            check_histograms: raw
                .metrics
                .as_ref()
                .and_then(|m| m.value.check_histograms)
                .unwrap_or(MetricsExport::default().check_histograms),
        };
        // Lists merge across files: the main file's first, then each
        // included file's in include order.
        let mut notifiers = self.notifiers(&raw.notifiers);
        for part in includes {
            self.file = &part.file;
            notifiers.extend(self.notifiers(&part.raw.notifiers));
        }
        self.file = main;
        let response_targets = self.response_targets(&raw.response_targets, &notifiers);
        let mut services = self.services(&raw.services, &defaults, &notifiers);
        for part in includes {
            self.file = &part.file;
            services.extend(self.services(&part.raw.services, &defaults, &notifiers));
        }
        self.file = main;
        if raw.services.is_empty() && includes.iter().all(|p| p.raw.services.is_empty()) {
            self.report(
                FILE_START,
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
        let (status_page, problems) =
            crate::config::status_page::validate(raw.status_page.as_ref(), &services, self.file);
        self.problems.extend(problems);
        let inbound = self.inbound(raw.inbound.as_ref());
        // A button press needs a hook that checks it: Slack messages carry
        // buttons exactly when `inbound.slack` is configured.
        for n in &mut notifiers {
            if let NotifierKind::Slack { buttons, .. } = &mut n.kind {
                *buttons = inbound.slack.is_some();
            }
        }
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
            status_page,
            inbound,
        }
    }

    pub(super) fn report(
        &mut self,
        at: Position,
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: at.line,
            column: at.column,
            key_path: path.to_string(),
            message,
            hint,
        });
    }

    pub(super) fn problem(&mut self, at: Position, path: &str, message: impl Into<String>) {
        self.report(at, path, message.into(), None);
    }

    pub(super) fn missing(&mut self, parent: Position, parent_path: &str, key: &str) {
        self.problem(
            parent,
            &join_key(parent_path, key),
            format!("missing required key `{key}`"),
        );
    }

    pub(super) fn warn(&mut self, at: Position, path: &str, message: String, hint: Option<String>) {
        self.warnings.push(Warning {
            problem: Problem {
                file: self.file.to_string(),
                line: at.line,
                column: at.column,
                key_path: path.to_string(),
                message,
                hint,
            },
            blocks_run: false,
        });
    }

    /// Where a name was first defined, as a duplicate's message says it.
    pub(super) fn first_defined(&self, first: FirstDefinition<'_>) -> String {
        let FirstDefinition { file, line } = first;
        if file == self.file {
            format!("first defined on line {line}")
        } else {
            format!("first defined at {file}:{line}")
        }
    }
}

/// The fix for a reference to a notifier `name` that is not among `known`:
/// the closest name, else the names there are, else `none_defined`.
fn unknown_notifier_hint(name: &str, known: &[&str], none_defined: &str) -> String {
    match crate::config::suggest::suggest(name, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => none_defined.to_string(),
        None => format!(
            "defined notifiers: {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
