//! Validation of the `status_page:` block: a title, the services shown (each
//! must exist; no duplicates) and whether incidents are shown. Kept apart from
//! `validate.rs` so the block stays self-contained; its problems join the
//! file's list like every other problem.

use serde_saphyr::Spanned;

use super::error::Problem;
use super::raw::{self, RawStatusPage};
use super::types::{Service, StatusPage};

/// Longest accepted title: it is the page heading and the feed title.
const MAX_TITLE_CHARS: usize = 200;

/// The typed block (defaults where absent or wrong) and every problem found.
pub(super) fn validate(
    raw: Option<&Spanned<RawStatusPage>>,
    services: &[Service],
    file: &str,
) -> (StatusPage, Vec<Problem>) {
    let mut page = StatusPage::default();
    let mut problems = Vec::new();
    let Some(raw) = raw else {
        return (page, problems);
    };
    let mut problem =
        |at: &serde_saphyr::Location, key: &str, message: String, hint: Option<String>| {
            problems.push(Problem {
                file: file.to_string(),
                line: at.line(),
                column: at.column(),
                key_path: format!("status_page.{key}"),
                message,
                hint,
            });
        };
    let raw = &raw.value;

    if let Some(t) = &raw.title {
        let title = t.value.trim();
        if title.is_empty() {
            problem(&t.referenced, "title", "`title` is empty".into(), None);
        } else if title.chars().count() > MAX_TITLE_CHARS {
            problem(
                &t.referenced,
                "title",
                format!("`title` is longer than {MAX_TITLE_CHARS} characters"),
                None,
            );
        } else {
            page.title = title.to_string();
        }
    }

    if let Some(s) = &raw.show_incidents {
        page.show_incidents = s.value;
    }

    if let Some(list) = &raw.services {
        if list.value.is_empty() {
            problem(
                &list.referenced,
                "services",
                "empty `services` list".into(),
                Some("leave `services` out to show every service".into()),
            );
        } else {
            let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            let mut shown: Vec<String> = Vec::with_capacity(list.value.len());
            let mut ok = true;
            for (i, svc) in list.value.iter().enumerate() {
                let name = svc.value.as_str();
                let key = format!("services[{i}]");
                if !names.contains(&name) {
                    let hint = raw::suggest(name, names.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"));
                    problem(
                        &svc.referenced,
                        &key,
                        format!("unknown service `{name}` in status_page"),
                        hint,
                    );
                    ok = false;
                } else if shown.iter().any(|s| s == name) {
                    problem(
                        &svc.referenced,
                        &key,
                        format!("service `{name}` is listed twice"),
                        None,
                    );
                    ok = false;
                } else {
                    shown.push(name.to_string());
                }
            }
            if ok {
                page.services = Some(shown);
            }
        }
    }
    (page, problems)
}
