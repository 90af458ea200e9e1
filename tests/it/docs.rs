//! The user documentation stands on its own and stays true.
//!
//! - Nothing a user reads points outside the repository: the docs, the
//!   shipped configs, the dashboards, `--help` and `sentinel rules` output,
//!   and the strings in the code (log lines, errors) never mention the team's
//!   internal contract (`SPEC`, `SPEC.md`, `../shared`) or the build machine
//!   (`/work/`).
//! - Every relative Markdown link resolves to a file in the repository, and
//!   every `#anchor` to a heading of that file.
//! - The examples are real: every sentinel YAML block loads, every JSON block
//!   parses, every PromQL block passes `promtool`, the documented webhook
//!   signature verifies, the complete example is `config/example-full.yaml`,
//!   and the documented `validate` warning is what `validate` prints.
//! - The configuration reference is complete and exact: every key the parser
//!   accepts has a row in `docs/configuration.md`, and the documented ranges
//!   and defaults are the code's.

// Helpers shared by the tests panic on bad input too: a test file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sentinel::config::{self, limits};
use sha2::Sha256;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_sentinel");

fn root() -> PathBuf {
    PathBuf::from(ROOT)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The user documentation: README, `docs/`.
fn doc_pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    pages.extend(
        files_under(&root().join("docs"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    assert!(pages.len() >= 7, "docs/ is missing pages: {pages:?}");
    pages
}

/// Every Markdown file a user reads (for links).
fn markdown_files() -> Vec<PathBuf> {
    let mut files = doc_pages();
    for f in ["ARCHITECTURE.md", "dashboards/README.md", "bench/README.md"] {
        files.push(root().join(f));
    }
    files
}

/// Every file a user reads or copies.
fn user_facing_files() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("README.md"),
        root().join("ARCHITECTURE.md"),
        root().join("bench/README.md"),
    ];
    for dir in ["docs", "dashboards", "config"] {
        files.extend(files_under(&root().join(dir)));
    }
    files
}

fn shown(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap_or(path)
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------
// Pointers outside the repository
// ---------------------------------------------------------------------------

/// What in `text` points outside the repository: `SPEC` as a word
/// (case-sensitive, so `UNSPECIFIED` and `spec` are fine), `../shared` and
/// `/work/`.
fn outside_pointers(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for (i, _) in text.match_indices("SPEC") {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 4).copied();
        if !before.is_some_and(word) && !after.is_some_and(word) {
            found.push("SPEC");
        }
    }
    for needle in ["../shared", "/work/"] {
        if text.contains(needle) {
            found.push(needle);
        }
    }
    found
}

#[test]
fn the_pointer_check_tells_words_apart() {
    fn check(text: &str, expected: &[&str]) {
        assert_eq!(outside_pointers(text), expected, "{text:?}");
    }
    check("see SPEC §4", &["SPEC"]);
    check("`../shared/SPEC.md`", &["SPEC", "../shared"]);
    check("(SPEC: all incidents)", &["SPEC"]);
    check("SPEC", &["SPEC"]);
    check("Ipv4Addr::UNSPECIFIED", &[]);
    check("SPECS and SPEC_X and XSPEC", &[]);
    check("the spec of Standard Webhooks", &[]);
    check("/work/main/target", &["/work/"]);
    check("docs/configuration.md", &[]);
}

/// Every line of `text` (named `name`) with a pointer outside, as
/// `name:line: pointers: text`.
fn offending_lines(name: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let found = outside_pointers(line);
            (!found.is_empty()).then(|| format!("{name}:{}: {found:?}: {}", i + 1, line.trim()))
        })
        .collect()
}

#[test]
fn no_user_facing_file_points_outside_the_repository() {
    let files = user_facing_files();
    assert!(files.len() >= 15, "too few files scanned: {files:?}");
    let bad: Vec<String> = files
        .iter()
        .flat_map(|f| offending_lines(&shown(f), &read(f)))
        .collect();
    assert!(
        bad.is_empty(),
        "user-facing files point outside the repository (say the rule itself, or link into docs/):\n{}",
        bad.join("\n")
    );
}

fn sentinel(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .env_remove("SENTINEL_API_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn cli_output_points_nowhere_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    // A file with one of each kind of mistake, so the hints are printed too.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "server: { listen: nowhere, max_concurrency: 0 }\n\
         notifiers:\n  - { name: x, type: pagerdty, url: 'https://u:p@h/' }\n\
         services:\n  - name: a b\n    slo: { objective: 100, window: 100000000w }\n\
         \x20   incident: { notify: [nope] }\n    checks:\n      - name: c\n        interval: 1x\n\
         \x20       http: { url: ftp://x, expect: { body_regex: '(' } }\n",
    )
    .unwrap();
    let broken = broken.display().to_string();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "services:\n  - name: a\n    chekcs: []\n").unwrap();
    let typo = typo.display().to_string();
    let runs: [&[&str]; 14] = [
        &["--help"],
        &["help"],
        &["--version"],
        &["run", "--help"],
        &["validate", "--help"],
        &["report", "--help"],
        &["rules", "--help"],
        &["help", "validate"],
        &["rules", "-c", "config/sentinel.yaml"],
        &["rules", "-c", "config/example-full.yaml"],
        &["validate", "-c", "config/sentinel.yaml"],
        &["validate", "--strict", "-c", "config/example-full.yaml"],
        &["validate", "-c", &broken],
        &["validate", "-c", &typo],
    ];
    let mut bad = Vec::new();
    for args in runs {
        let out = sentinel(args);
        let text = all_output(&out);
        assert!(
            !text.trim().is_empty(),
            "`sentinel {args:?}` printed nothing"
        );
        // The temp dir's path is ours, not the program's.
        let text = text.replace(&dir.path().display().to_string(), "TMP");
        bad.extend(offending_lines(
            &format!("sentinel {}", args.join(" ")),
            &text,
        ));
    }
    let rules = sentinel(&["rules", "-c", "config/sentinel.yaml"]);
    assert_eq!(rules.status.code(), Some(0), "{}", all_output(&rules));
    assert!(String::from_utf8_lossy(&rules.stdout).contains("SentinelErrorBudgetBurn"));
    assert!(
        bad.is_empty(),
        "CLI output points outside the repository:\n{}",
        bad.join("\n")
    );
}

/// `line` without a `//` comment (outside string literals).
fn code_part(line: &str) -> &str {
    if line.trim_start().starts_with("//") {
        return "";
    }
    let mut in_string = false;
    let mut escaped = false;
    // A `'"'` char literal is not the start of a string.
    let masked = line.replace("'\"'", "'.'");
    let bytes = masked.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Log lines, errors and API messages are user-facing text too. Comments
/// are not scanned here.
#[test]
fn strings_in_the_code_point_nowhere_outside_the_repository() {
    assert_eq!(code_part(r#"let a = "x"; // SPEC §4"#), r#"let a = "x"; "#);
    assert_eq!(code_part(r#"f("http://h") // c"#), r#"f("http://h") "#);
    assert_eq!(code_part("//! SPEC"), "");
    let mut bad = Vec::new();
    let sources: Vec<PathBuf> = files_under(&root().join("src"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(sources.len() >= 20, "too few sources: {sources:?}");
    for f in &sources {
        let text = read(f);
        let code: String = text
            .lines()
            .map(|l| format!("{}\n", code_part(l)))
            .collect();
        bad.extend(offending_lines(&shown(f), &code));
    }
    assert!(
        bad.is_empty(),
        "strings in the code point outside the repository:\n{}",
        bad.join("\n")
    );
}

/// The docs paths the code tells users to read exist.
#[test]
fn docs_named_by_the_code_exist() {
    let re = regex::Regex::new(r"docs/[a-z_]+\.md").unwrap();
    let mut named = 0;
    for f in files_under(&root().join("src")) {
        for m in re.find_iter(&read(&f)) {
            named += 1;
            assert!(
                root().join(m.as_str()).is_file(),
                "{} names {}, which does not exist",
                shown(&f),
                m.as_str()
            );
        }
    }
    assert!(named >= 1, "the API's 404 names docs/api.md");
}

// ---------------------------------------------------------------------------
// Markdown structure: code blocks, headings, links
// ---------------------------------------------------------------------------

/// A fenced code block: its info string (`yaml`, `json`, ...), its text
/// (dedented to the fence) and the line of the fence.
struct Block {
    lang: String,
    text: String,
    line: usize,
}

/// The fenced code blocks of a Markdown text, and the text outside them
/// (code lines blanked, so line numbers stay).
fn split_fences(md: &str) -> (Vec<Block>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for (i, line) in md.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None if trimmed.starts_with("```") => {
                let block = Block {
                    lang: trimmed.trim_start_matches('`').trim().to_string(),
                    text: String::new(),
                    line: i + 1,
                };
                open = Some((indent, block));
                prose.push(String::new());
            }
            None => prose.push(line.to_string()),
            Some((_, block)) if trimmed == "```" => {
                blocks.push(block);
                prose.push(String::new());
            }
            Some((fence_indent, mut block)) => {
                block
                    .text
                    .push_str(line.get(fence_indent..).unwrap_or(trimmed));
                block.text.push('\n');
                open = Some((fence_indent, block));
                prose.push(String::new());
            }
        }
    }
    assert!(open.is_none(), "unclosed code fence");
    (blocks, prose)
}

fn blocks_of(path: &Path, lang: &str) -> Vec<Block> {
    split_fences(&read(path))
        .0
        .into_iter()
        .filter(|b| b.lang == lang)
        .collect()
}

/// Inline code spans replaced by `code`, so `[`notifiers[]`](#x)` reads as
/// a link and code never does.
fn without_inline_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = "`".repeat(ticks);
        let after = &rest[start + ticks..];
        match after.find(&fence) {
            Some(end) => {
                out.push_str("code");
                rest = &after[end + ticks..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (`-` and
/// `_` kept), spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn slugs_are_githubs() {
    fn check(heading: &str, expected: &str) {
        assert_eq!(slug(heading), expected, "{heading:?}");
    }
    check("`services[].checks[].http`", "servicescheckshttp");
    check(
        "Warnings and `validate --strict`",
        "warnings-and-validate---strict",
    );
    check(
        "Secret headers: `headers_env`",
        "secret-headers-headers_env",
    );
    check("`POST /-/reload`", "post--reload");
    check("Wiring Prometheus → Grafana", "wiring-prometheus--grafana");
    check("MTTD, MTTA, MTTR", "mttd-mtta-mttr");
}

/// The anchors of a Markdown file's headings (duplicates get `-1`, `-2`, ...).
fn anchors(md: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for line in split_fences(md).1 {
        let t = line.trim_start();
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !t[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&t[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `(line, target)` of every link in the prose of a Markdown text: inline
/// `[text](target)` and reference definitions `[name]: target`.
fn links(md: &str) -> Vec<(usize, String)> {
    let inline = regex::Regex::new(r"\]\(([^)\s]+)(?:\s+[^)]*)?\)").unwrap();
    let reference = regex::Regex::new(r"^\s*\[[^\]]+\]:\s*(\S+)").unwrap();
    let mut out = Vec::new();
    for (i, line) in split_fences(md).1.iter().enumerate() {
        let line = without_inline_code(line);
        for c in inline.captures_iter(&line) {
            out.push((i + 1, c[1].to_string()));
        }
        if let Some(c) = reference.captures(&line) {
            out.push((i + 1, c[1].to_string()));
        }
    }
    out
}

#[test]
fn every_relative_link_resolves_to_a_file_and_heading_in_the_repository() {
    let repo = root().canonicalize().unwrap();
    let mut bad = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let md = read(&file);
        let dir = file.parent().unwrap();
        for (line, target) in links(&md) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let at = format!("{}:{line}: {target}", shown(&file));
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            let Ok(dest) = dest.canonicalize() else {
                bad.push(format!("{at}: no such file"));
                continue;
            };
            if !dest.starts_with(&repo) {
                bad.push(format!("{at}: outside the repository"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if dest.extension().is_none_or(|e| e != "md") {
                bad.push(format!("{at}: an anchor into a file that is not Markdown"));
            } else if !anchors(&read(&dest)).iter().any(|a| a == anchor) {
                bad.push(format!(
                    "{at}: no heading with anchor #{anchor} in {}",
                    shown(&dest)
                ));
            }
        }
    }
    assert!(checked >= 100, "only {checked} links checked");
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------
// The examples are real
// ---------------------------------------------------------------------------

/// Top-level keys of a sentinel config file.
const CONFIG_KEYS: [&str; 10] = [
    "include",
    "server",
    "storage",
    "defaults",
    "metrics",
    "notifiers",
    "response_targets",
    "maintenance",
    "services",
    "inbound",
];

fn top_level_keys(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter(|l| !l.starts_with([' ', '#', '-']) && l.contains(':'))
        .map(|l| l.split(':').next().unwrap_or_default().trim().to_string())
        .collect()
}

/// Every YAML block with a sentinel key at the top loads (a block without
/// `services` gets a stub service). Blocks for other tools (Prometheus,
/// Grafana) have none of sentinel's keys; a block mixing both is a typo and
/// fails.
#[test]
fn every_sentinel_yaml_block_in_the_docs_loads() {
    let env = |_: &str| Some("https://hooks.example.com/x".to_string());
    let mut loaded: BTreeMap<String, usize> = BTreeMap::new();
    for page in doc_pages() {
        for block in blocks_of(&page, "yaml") {
            let keys = top_level_keys(&block.text);
            if !keys.iter().any(|k| CONFIG_KEYS.contains(&k.as_str())) {
                continue;
            }
            let name = format!("{}:{}", shown(&page), block.line);
            let mut text = block.text.clone();
            if !keys.iter().any(|k| k == "services") {
                text.push_str("services:\n  - name: stub\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n");
            }
            // `include` patterns resolve against the file's directory.
            let file = page.parent().unwrap().join("example.yaml");
            if let Err(e) = config::parse_with_env(&text, &file.display().to_string(), &env) {
                panic!("{name}: this YAML block does not load:\n{text}\n{e}");
            }
            *loaded.entry(shown(&page)).or_default() += 1;
        }
    }
    assert!(
        loaded.get("README.md").copied().unwrap_or(0) >= 2,
        "{loaded:?}"
    );
    assert!(
        loaded.get("docs/configuration.md").copied().unwrap_or(0) >= 6,
        "{loaded:?}"
    );
}

#[test]
fn every_json_block_in_the_docs_parses() {
    let mut parsed = 0;
    for page in doc_pages() {
        for block in blocks_of(&page, "json") {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&block.text) {
                panic!(
                    "{}:{}: JSON block does not parse: {e}\n{}",
                    shown(&page),
                    block.line,
                    block.text
                );
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 10, "only {parsed} JSON blocks");
}

/// The expressions of a PromQL block: a line that does not start with
/// whitespace starts one, indented lines continue it, `#` lines are comments.
fn promql_expressions(block: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in block.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match out.last_mut() {
            Some(expr) if line.starts_with([' ', '\t']) => {
                expr.push(' ');
                expr.push_str(t);
            }
            _ => out.push(t.to_string()),
        }
    }
    out
}

#[test]
fn every_promql_recipe_passes_promtool() {
    let mut exprs = Vec::new();
    for page in doc_pages() {
        for block in blocks_of(&page, "promql") {
            exprs.extend(promql_expressions(&block.text));
        }
    }
    assert!(exprs.len() >= 15, "only {} PromQL expressions", exprs.len());
    let mut rules = String::from("groups:\n  - name: docs\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: docs:recipe{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipes.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect(
            "promtool must be installed (Debian package `prometheus`; scripts/test.sh installs it)",
        );
    assert!(
        out.status.success(),
        "promtool rejects a documented PromQL recipe:\n{}\n{rules}",
        all_output(&out)
    );
}

/// The signed request in docs/webhooks.md verifies the way the page tells
/// receivers to verify it, with the secret it names.
#[test]
fn the_documented_webhook_signature_verifies() {
    let page = read(&root().join("docs/webhooks.md"));
    let secret = regex::Regex::new(r"`(whsec_[A-Za-z0-9+/=]+)`")
        .unwrap()
        .captures(&page)
        .expect("docs/webhooks.md names the secret of its worked example")[1]
        .to_string();
    let blocks = blocks_of(&root().join("docs/webhooks.md"), "http");
    assert_eq!(blocks.len(), 1, "one worked example");
    let (head, body) = blocks[0]
        .text
        .split_once("\n\n")
        .expect("headers, a blank line, the body");
    let body = body.trim_end_matches('\n');
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_string()
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(sig, expected);
    // The body is the event of the first JSON example, byte for byte the
    // fields it shows.
    let event: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["id"], id.as_str());
    let first_json = blocks_of(&root().join("docs/webhooks.md"), "json")
        .into_iter()
        .next()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&first_json.text).unwrap();
    assert_eq!(event, shown);
}

/// "A complete example" in docs/configuration.md is the shipped
/// `config/example-full.yaml`.
#[test]
fn the_complete_example_is_config_example_full() {
    let page = read(&root().join("docs/configuration.md"));
    let section = page
        .split("## A complete example")
        .nth(1)
        .expect("the section exists");
    let text = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("with a YAML block");
    let env = |_: &str| Some("https://hooks.example.com/x".to_string());
    let documented = config::parse_with_env(text, "config/x.yaml", &env).unwrap();
    let file = read(&root().join("config/example-full.yaml"));
    let shipped = config::parse_with_env(&file, "config/x.yaml", &env).unwrap();
    assert_eq!(
        format!("{:?}", documented.config),
        format!("{:?}", shipped.config)
    );
}

// ---------------------------------------------------------------------------
// The shipped config under --strict
// ---------------------------------------------------------------------------

#[test]
fn the_shipped_config_is_clean_under_strict_once_the_api_token_is_set() {
    let with_token = Command::new(BIN)
        .args(["validate", "--strict", "-c", "config/sentinel.yaml"])
        .current_dir(ROOT)
        .env("SENTINEL_API_TOKEN", "a-long-random-token")
        .output()
        .unwrap();
    assert_eq!(
        with_token.status.code(),
        Some(0),
        "{}",
        all_output(&with_token)
    );
    assert!(
        !all_output(&with_token).contains("warning"),
        "{}",
        all_output(&with_token)
    );

    let without = sentinel(&["validate", "--strict", "-c", "config/sentinel.yaml"]);
    assert_eq!(without.status.code(), Some(2));
    let text = all_output(&without);
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("SENTINEL_API_TOKEN"), "{text}");

    // docs/configuration.md shows exactly this output.
    let page = root().join("docs/configuration.md");
    let shown = blocks_of(&page, "text")
        .into_iter()
        .find(|b| b.text.contains("warning: config/sentinel.yaml"))
        .expect("docs/configuration.md shows the shipped config's warning");
    for line in shown.text.lines() {
        assert!(
            text.lines().any(|l| l == line),
            "docs/configuration.md:{} shows `{line}`, but validate prints:\n{text}",
            shown.line
        );
    }
}

// ---------------------------------------------------------------------------
// The configuration reference is complete and exact
// ---------------------------------------------------------------------------

/// The sections of a Markdown text: (heading, body up to the next heading).
fn sections(md: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in split_fences(md).1 {
        let t = line.trim_start();
        if t.starts_with('#') && t.trim_start_matches('#').starts_with(' ') {
            out.push((t.trim_start_matches('#').trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(&line);
            body.push('\n');
        }
    }
    out
}

/// The configuration reference: section body for the key path `path` (the
/// section whose heading names it in backticks).
fn reference_section(path: &str) -> String {
    let page = read(&root().join("docs/configuration.md"));
    let wanted = format!("`{path}`");
    sections(&page)
        .into_iter()
        .find(|(h, _)| h.contains(&wanted))
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("docs/configuration.md has no section headed {wanted}"))
}

/// The table cells of the row of `key` in the section for `path`.
fn reference_row(path: &str, key: &str) -> Vec<String> {
    let section = reference_section(path);
    let start = format!("| `{key}` |");
    let row = section
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("docs/configuration.md: no row for `{key}` under `{path}`"));
    row.trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

/// The keys the parser accepts at one level, from its own "valid keys here"
/// hint for an unknown key.
fn accepted_keys(yaml_with_unknown_key: &str) -> Vec<String> {
    let env = |_: &str| None;
    let err = match config::parse_with_env(yaml_with_unknown_key, "k.yaml", &env) {
        Ok(_) => panic!("accepted:\n{yaml_with_unknown_key}"),
        Err(e) => e.to_string(),
    };
    let list = err
        .split("valid keys here: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no key list in: {err}"));
    let list = list.lines().next().unwrap_or_default();
    list.split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect()
}

/// (documented section, a file with an unknown key at that level).
const LEVELS: [(&str, &str); 24] = [
    ("", "zzzzzzzz: 1\n"),
    ("inbound", "inbound: { zzzzzzzz: 1 }\n"),
    (
        "inbound.pagerduty",
        "inbound: { pagerduty: { zzzzzzzz: 1 } }\n",
    ),
    (
        "inbound.opsgenie",
        "inbound: { opsgenie: { zzzzzzzz: 1 } }\n",
    ),
    ("inbound.slack", "inbound: { slack: { zzzzzzzz: 1 } }\n"),
    (
        "inbound.servicenow",
        "inbound: { servicenow: { zzzzzzzz: 1 } }\n",
    ),
    ("inbound.jira", "inbound: { jira: { zzzzzzzz: 1 } }\n"),
    ("server", "server: { zzzzzzzz: 1 }\n"),
    ("storage", "storage: { zzzzzzzz: 1 }\n"),
    ("defaults", "defaults: { zzzzzzzz: 1 }\n"),
    ("metrics", "metrics: { zzzzzzzz: 1 }\n"),
    ("notifiers[]", "notifiers: [ { zzzzzzzz: 1 } ]\n"),
    (
        "response_targets",
        "response_targets: { P1: { zzzzzzzz: 1 } }\n",
    ),
    ("maintenance[]", "maintenance: [ { zzzzzzzz: 1 } ]\n"),
    ("services[]", "services: [ { zzzzzzzz: 1 } ]\n"),
    (
        "services[].checks[]",
        "services: [ { name: a, checks: [ { zzzzzzzz: 1 } ] } ]\n",
    ),
    (
        "services[].checks[].http",
        "services: [ { name: a, checks: [ { name: c, http: { zzzzzzzz: 1 } } ] } ]\n",
    ),
    (
        "services[].checks[].http.expect",
        "services: [ { name: a, checks: [ { name: c, http: { expect: { zzzzzzzz: 1 } } } ] } ]\n",
    ),
    (
        "services[].checks[].tcp",
        "services: [ { name: a, checks: [ { name: c, tcp: { zzzzzzzz: 1 } } ] } ]\n",
    ),
    (
        "services[].checks[].dns",
        "services: [ { name: a, checks: [ { name: c, dns: { zzzzzzzz: 1 } } ] } ]\n",
    ),
    (
        "services[].checks[].tls",
        "services: [ { name: a, checks: [ { name: c, tls: { zzzzzzzz: 1 } } ] } ]\n",
    ),
    (
        "services[].slo",
        "services: [ { name: a, slo: { zzzzzzzz: 1 } } ]\n",
    ),
    (
        "services[].slo.latency",
        "services: [ { name: a, slo: { latency: { zzzzzzzz: 1 } } } ]\n",
    ),
    (
        "services[].incident",
        "services: [ { name: a, incident: { zzzzzzzz: 1 } } ]\n",
    ),
];

#[test]
fn every_config_key_has_a_row_in_the_reference() {
    let mut keys = 0;
    for (path, yaml) in LEVELS {
        for key in accepted_keys(yaml) {
            keys += 1;
            if path.is_empty() {
                // Each top-level key has a section of its own.
                let page = read(&root().join("docs/configuration.md"));
                let headed = sections(&page).iter().any(|(h, _)| {
                    h.contains(&format!("`{key}`")) || h.contains(&format!("`{key}[]`"))
                });
                assert!(headed, "docs/configuration.md: no section for `{key}`");
            } else {
                reference_row(path, &key);
            }
        }
    }
    assert!(keys >= 70, "only {keys} keys found");
}

/// Durations (`100ms`, `1d`) in a table cell, parsed.
fn durations_in(cell: &str) -> Vec<Duration> {
    regex::Regex::new(r"\b\d+(ms|s|m|h|d|w)\b")
        .unwrap()
        .find_iter(cell)
        .filter_map(|m| config::duration::parse(m.as_str()).ok())
        .collect()
}

/// Whole numbers in a table cell (digits not part of a duration).
fn numbers_in(cell: &str) -> Vec<i64> {
    regex::Regex::new(r"\b\d+\b")
        .unwrap()
        .find_iter(cell)
        .filter_map(|m| m.as_str().parse().ok())
        .collect()
}

enum Range {
    D(limits::DurationRange),
    I(limits::IntRange),
}

#[test]
fn documented_ranges_are_the_codes() {
    use Range::{D, I};
    let cases: [(&str, &str, Range); 26] = [
        ("server", "max_concurrency", I(limits::MAX_CONCURRENCY)),
        ("server", "max_connections", I(limits::MAX_CONNECTIONS)),
        ("server", "worker_threads", I(limits::WORKER_THREADS)),
        ("server", "read_timeout", D(limits::READ_TIMEOUT)),
        ("storage", "minute_retention", D(limits::MINUTE_RETENTION)),
        ("storage", "retention", D(limits::RETENTION)),
        ("defaults", "interval", D(limits::INTERVAL)),
        ("defaults", "timeout", D(limits::TIMEOUT)),
        ("notifiers[]", "max_age", D(limits::NOTIFIER_MAX_AGE)),
        ("notifiers[]", "timeout", D(limits::NOTIFIER_TIMEOUT)),
        ("notifiers[]", "repost_every", D(limits::REPOST_EVERY)),
        (
            "response_targets",
            "acknowledge",
            D(limits::RESPONSE_TARGET),
        ),
        ("response_targets", "restore", D(limits::RESPONSE_TARGET)),
        ("services[].checks[]", "interval", D(limits::INTERVAL)),
        ("services[].checks[]", "timeout", D(limits::TIMEOUT)),
        (
            "services[].checks[].http",
            "max_body_bytes",
            I(limits::MAX_BODY_BYTES),
        ),
        (
            "services[].checks[].http.expect",
            "max_latency",
            D(limits::LATENCY),
        ),
        (
            "services[].checks[].http.expect",
            "cert_min_days",
            I(limits::CERT_MIN_DAYS),
        ),
        ("services[].checks[].tcp", "port", I(limits::PORT)),
        (
            "services[].checks[].tcp",
            "cert_min_days",
            I(limits::CERT_MIN_DAYS),
        ),
        ("services[].checks[].tls", "port", I(limits::PORT)),
        (
            "services[].checks[].tls",
            "cert_min_days",
            I(limits::CERT_MIN_DAYS),
        ),
        ("services[].slo", "window", D(limits::SLO_WINDOW)),
        ("services[].slo.latency", "threshold", D(limits::LATENCY)),
        ("services[].incident", "open_after", I(limits::STREAK)),
        ("services[].incident", "resolve_after", I(limits::STREAK)),
    ];
    for (path, key, range) in cases {
        let row = reference_row(path, key);
        let cell = &row[2];
        match range {
            D(r) => {
                let found = durations_in(cell);
                assert!(
                    found.contains(&r.min) && found.contains(&r.max),
                    "`{path}` `{key}`: the range `{cell}` is not {}..={}",
                    config::duration::format(r.min),
                    config::duration::format(r.max)
                );
            }
            I(r) => {
                let found = numbers_in(cell);
                assert!(
                    found.contains(&r.min) && found.contains(&r.max),
                    "`{path}` `{key}`: the range `{cell}` is not {}..={}",
                    r.min,
                    r.max
                );
            }
        }
    }
    let most = limits::MAX_OBJECTIVE_PERCENT.to_string();
    for path in ["services[].slo", "services[].slo.latency"] {
        let row = reference_row(path, "objective");
        assert!(row[2].contains(&most), "`{path}` `objective`: {row:?}");
    }
}

/// The first `code` span of a table cell.
fn first_code(cell: &str) -> String {
    cell.split('`').nth(1).unwrap_or_default().to_string()
}

#[test]
fn documented_defaults_are_the_codes() {
    let env = |_: &str| None;
    let minimal = "services:\n  - name: a\n    slo: { objective: 99 }\n    checks:\n      - name: h\n        http: { url: 'https://h/' }\n      - name: t\n        tls: { host: h }\n";
    let cfg = config::parse_with_env(minimal, "k.yaml", &env)
        .unwrap()
        .config;
    let with_notifier =
        format!("{minimal}notifiers:\n  - {{ name: n, type: webhook, url: 'http://h/' }}\n");
    let notifier = config::parse_with_env(&with_notifier, "k.yaml", &env)
        .unwrap()
        .config
        .notifiers
        .remove(0);
    let with_alertmanager =
        format!("{minimal}notifiers:\n  - {{ name: n, type: alertmanager, url: 'http://h/' }}\n");
    let alertmanager = config::parse_with_env(&with_alertmanager, "k.yaml", &env)
        .unwrap()
        .config
        .notifiers
        .remove(0);
    let config::NotifierKind::Alertmanager { repost_every, .. } = alertmanager.kind else {
        panic!("{alertmanager:?}")
    };
    let svc = &cfg.services[0];
    let (config::ProbeSpec::Http(http), config::ProbeSpec::Tls(tls)) =
        (&svc.checks[0].probe, &svc.checks[1].probe)
    else {
        panic!("{:?}", svc.checks)
    };
    let slo = svc.slo.as_ref().unwrap();
    let d = config::duration::format;
    let cases: Vec<(&str, &str, String)> = vec![
        ("server", "listen", cfg.server.listen.to_string()),
        (
            "server",
            "max_concurrency",
            cfg.server.max_concurrency.to_string(),
        ),
        ("server", "read_timeout", d(cfg.server.read_timeout)),
        ("storage", "path", cfg.storage.path.display().to_string()),
        (
            "storage",
            "minute_retention",
            d(cfg.storage.minute_retention),
        ),
        ("storage", "retention", d(cfg.storage.retention)),
        ("defaults", "interval", d(cfg.defaults.interval)),
        ("defaults", "timeout", d(cfg.defaults.timeout)),
        (
            "metrics",
            "check_histograms",
            cfg.metrics.check_histograms.to_string(),
        ),
        ("notifiers[]", "max_age", d(notifier.max_age)),
        ("notifiers[]", "timeout", d(notifier.timeout)),
        ("notifiers[]", "repost_every", d(repost_every)),
        ("services[].checks[].http", "method", http.method.clone()),
        (
            "services[].checks[].http",
            "follow_redirects",
            http.follow_redirects.to_string(),
        ),
        (
            "services[].checks[].http",
            "tls_verify",
            http.tls_verify.to_string(),
        ),
        (
            "services[].checks[].http",
            "max_body_bytes",
            http.max_body_bytes.to_string(),
        ),
        ("services[].checks[].tls", "port", tls.port.to_string()),
        (
            "services[].checks[].tls",
            "cert_min_days",
            tls.cert_min_days.to_string(),
        ),
        (
            "services[].checks[].tls",
            "tls_verify",
            tls.tls_verify.to_string(),
        ),
        ("services[].slo", "window", slo.window.label()),
        (
            "services[].incident",
            "open_after",
            svc.incident.open_after.to_string(),
        ),
        (
            "services[].incident",
            "resolve_after",
            svc.incident.resolve_after.to_string(),
        ),
        (
            "services[].incident",
            "burn_rate_alerts",
            svc.incident.burn_rate_alerts.to_string(),
        ),
        (
            "services[].incident",
            "severity",
            svc.incident.severity.clone(),
        ),
    ];
    for (path, key, actual) in cases {
        let row = reference_row(path, key);
        let documented = first_code(&row[1]);
        let same = documented == actual
            || matches!(
                (config::duration::parse(&documented), config::duration::parse(&actual)),
                (Ok(a), Ok(b)) if a == b
            );
        assert!(
            same,
            "`{path}` `{key}`: documented default `{documented}`, the code's is `{actual}`"
        );
    }
    // The status default is a range, not one code.
    assert_eq!(http.expect.status, (200..=299).collect::<Vec<u16>>());
    assert!(reference_row("services[].checks[].http.expect", "status")[1].contains("200 … 299"));
}
