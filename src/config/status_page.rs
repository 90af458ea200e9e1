//! Validation of the `status_page:` block: a title, the services shown (each
//! must exist; no duplicates) and whether incidents are shown. Kept apart from
//! `validate.rs` so the block stays self-contained; its problems join the
//! file's list like every other problem.

use serde_saphyr::Spanned;

use super::error::Problem;
use super::raw::RawStatusPage;
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
                    let hint = crate::config::suggest::suggest(name, names.iter().copied())
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

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, StatusPage, parse_str};

    const SERVICES: &str = r#"
services:
  - name: identity
    checks: [{ name: a, tcp: { host: 127.0.0.1, port: 1 } }]
  - name: vpn
    checks: [{ name: a, tcp: { host: 127.0.0.1, port: 1 } }]
"#;

    /// The problems of `block` appended to two services, as printed.
    fn problems(block: &str) -> Vec<String> {
        match parse_str(&format!("{SERVICES}{block}"), "t.yaml") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p.0.iter().map(ToString::to_string).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    /// The status page doc's example is a whole, valid config.
    #[test]
    fn the_readme_example_loads() {
        let readme = include_str!("../../docs/status-page.md");
        let blocks: Vec<&str> = readme
            .split("```yaml\n")
            .skip(1)
            .filter_map(|b| b.split_once("```").map(|(y, _)| y))
            .filter(|y| y.contains("status_page:"))
            .collect();
        assert_eq!(blocks.len(), 1);
        let cfg = parse_str(blocks[0], "docs/status-page.md").unwrap();
        assert_eq!(cfg.status_page.title, "ACME IT service status");
        assert_eq!(
            cfg.status_page.services.as_deref(),
            Some(&["identity".to_string()][..])
        );
    }

    #[test]
    fn defaults_show_every_service_and_incidents() {
        let cfg = parse_str(SERVICES, "t.yaml").unwrap();
        assert_eq!(cfg.status_page, StatusPage::default());
        assert_eq!(cfg.status_page.title, "Service status");
        assert!(cfg.status_page.shows("vpn") && cfg.status_page.show_incidents);
    }

    #[test]
    fn a_valid_block_is_taken_as_written() {
        let cfg = parse_str(
            &format!(
                "{SERVICES}status_page:\n  title: \"  IT <status>  \"\n  services: [vpn]\n  show_incidents: false\n"
            ),
            "t.yaml",
        )
        .unwrap();
        let p = &cfg.status_page;
        assert_eq!(p.title, "IT <status>");
        assert_eq!(p.services.as_deref(), Some(&["vpn".to_string()][..]));
        assert!(!p.show_incidents);
        assert!(p.shows("vpn") && !p.shows("identity"));
    }

    #[test]
    fn unknown_duplicate_and_empty_entries_name_their_line() {
        assert_eq!(
            problems("status_page:\n  services: [identity, vnp, identity]\n"),
            [
                "t.yaml:8:24: status_page.services[1]: unknown service `vnp` in status_page — did you mean `vpn`?",
                "t.yaml:8:29: status_page.services[2]: service `identity` is listed twice",
            ]
        );
        assert_eq!(
            problems("status_page:\n  services: []\n  title: \"\"\n"),
            [
                "t.yaml:8:13: status_page.services: empty `services` list — leave `services` out to show every service",
                "t.yaml:9:10: status_page.title: `title` is empty",
            ]
        );
        assert_eq!(
            problems("status_page:\n  titel: x\n"),
            ["t.yaml:8:3: status_page.titel: unknown key `titel` — did you mean `title`?"]
        );
        let long = "x".repeat(201);
        assert_eq!(
            problems(&format!("status_page:\n  title: {long}\n")),
            ["t.yaml:8:10: status_page.title: `title` is longer than 200 characters"]
        );
    }
}
