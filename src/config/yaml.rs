//! YAML text → the raw serde types of [`super::raw`], with the parser's
//! resource limits, and its first error turned into a located [`Problem`]
//! (file, line, column, key path, a message in words and a hint).

use super::error::Problem;
use super::raw::{MAIN_ONLY_KEYS, RawConfig, RawFragment};
use super::suggest::suggest;

/// Read the YAML into [`RawConfig`]. serde stops at the first syntax, type or
/// unknown-key error; that one is returned with its location and key path.
pub fn parse(text: &str, file: &str) -> Result<RawConfig, Problem> {
    parse_as(text, file)
}

/// Read an included file into [`RawFragment`]. A key only the main file may
/// set is named as such.
pub fn parse_fragment(text: &str, file: &str) -> Result<RawFragment, Problem> {
    parse_as(text, file).map_err(|mut p: Problem| {
        let key = p.key_path.as_str();
        if MAIN_ONLY_KEYS.contains(&key) && p.message.starts_with("unknown key") {
            p.message = format!("`{key}` may only be set in the main config file");
            p.hint = Some(
                "an included file holds `services`, `notifiers` and `maintenance`".to_string(),
            );
        }
        p
    })
}

fn parse_as<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    file: &str,
) -> Result<T, Problem> {
    parse_within(text, file, budget())
}

fn parse_within<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    file: &str,
    budget: serde_saphyr::Budget,
) -> Result<T, Problem> {
    // An empty file (or only comments) is an empty config; validation then
    // says what is missing instead of the parser saying "unexpected end".
    let has_content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !has_content {
        return Ok(T::default());
    }
    let mut options = serde_saphyr::Options::default();
    // We render our own one-line messages; the snippet would only be dropped.
    options.with_snippet = false;
    options.budget = Some(budget);
    // Fast path first: tracking the key path costs an allocation per key,
    // a third of the parse time of a 100 000-check file. Only a file that
    // fails is parsed again with tracking, to name the key in the message.
    if let Ok(raw) = serde_saphyr::from_str_with_options(text, options.clone()) {
        return Ok(raw);
    }
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = key_path(e.path());
            e.into_inner()
        })
    })
    .map_err(|e| problem_from_serde(&e, path, text, file))
}

/// Most YAML nodes (keys, scalars, lists, maps) one file may hold. A plain
/// check takes 8 to 40 nodes, so this admits well over 100 000 checks per
/// file while still bounding what a hostile file can make the parser do.
pub const MAX_NODES: usize = 10_000_000;

/// The parser's resource limits, sized for configs of 100 000 checks (the
/// library's defaults stop at 250 000 nodes, about 25 000 checks). Nesting
/// depth, aliases and anchors keep the library's defaults: a config needs
/// none of them in bulk.
fn budget() -> serde_saphyr::Budget {
    let mut b = serde_saphyr::Budget::default();
    b.max_nodes = MAX_NODES;
    // Every node is an event, plus one end event per list and map.
    b.max_events = 2 * MAX_NODES;
    b.max_total_scalar_bytes = super::limits::MAX_FILE_BYTES;
    b.max_reader_input_bytes = Some(super::limits::MAX_FILE_BYTES);
    // `!include` is not a sentinel feature (`include:` is).
    b.max_inclusion_depth = 0;
    b
}

/// A parser limit, said in words: what was too much and what to do.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> (String, Option<String>) {
    use serde_saphyr::budget::BudgetBreach as B;
    let split = Some("split the services over several files with `include:`".to_string());
    match breach {
        B::Nodes { .. } | B::Events { .. } => (
            format!("the file has more than {MAX_NODES} YAML nodes (keys, values, lists and maps)"),
            split,
        ),
        B::ScalarBytes { .. } | B::InputBytes { .. } => (
            format!(
                "the file holds more than {} MiB of text",
                super::limits::MAX_FILE_BYTES / (1024 * 1024)
            ),
            split,
        ),
        B::Depth { depth } => (
            format!("lists and maps are nested {depth} deep, more than a config needs"),
            None,
        ),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => (
            "too many YAML anchors or aliases (`&name` / `*name`)".to_string(),
            Some("repeat the settings or use `defaults:` instead of anchors".to_string()),
        ),
        B::MergeKeys { .. } => ("too many YAML merge keys (`<<:`)".to_string(), None),
        B::Documents { .. } => (
            "too many YAML documents (`---`) in one file".to_string(),
            Some("a config file is one document".to_string()),
        ),
        B::InclusionDepth { .. } => (
            "`!include` tags are not supported".to_string(),
            Some("list more files under the top-level `include:` key".to_string()),
        ),
        _ => (
            "the file is too large or too deeply structured to parse".to_string(),
            split,
        ),
    }
}

/// `services[0].checks[1].interval`, without the `value` hops that
/// [`serde_saphyr::Spanned`] adds on its way to the wrapped value.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key == "value" {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else if path == key || path.ends_with(&format!(".{key}")) {
        path.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn problem_from_serde(err: &serde_saphyr::Error, path: String, text: &str, file: &str) -> Problem {
    use serde_saphyr::Error as E;
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut problem = Problem {
        file: file.to_string(),
        line,
        column,
        key_path: path,
        message: String::new(),
        hint: None,
    };
    match err.without_snippet() {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            problem.key_path = join(&problem.key_path, field);
            problem.message = format!("unknown key `{field}`");
            problem.hint = Some(match suggest(field, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "valid keys here: {}",
                    expected
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        E::SerdeMissingField { field, .. } => {
            problem.key_path = join(&problem.key_path, field);
            problem.message = format!("missing required key `{field}`");
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => {
            problem.message = format!("expected {expected}, found {unexpected}");
        }
        E::InvalidScalar { ty, location } => {
            let found = location
                .span()
                .byte_offset()
                .zip(location.span().byte_len())
                .and_then(|(at, len)| text.get(at as usize..(at + len) as usize))
                .map(|s| format!(", found `{s}`"))
                .unwrap_or_default();
            problem.message = format!("expected {}{found}", describe_type(ty));
        }
        E::Unexpected { expected, .. } => {
            problem.message = match *expected {
                "mapping start" => "expected a mapping of `key: value` pairs".to_string(),
                "sequence start" => "expected a list (`- item` lines or `[a, b]`)".to_string(),
                other => format!("expected {other}"),
            };
        }
        E::Budget { breach, .. } => {
            let (message, hint) = budget_message(breach);
            problem.message = message;
            problem.hint = hint;
        }
        E::DuplicateMappingKey { key: Some(key), .. } => {
            problem.key_path = join(&problem.key_path, key);
            problem.message = format!("duplicate key `{key}`");
        }
        other => {
            let text = other.to_string();
            // The generic rendering appends the location we already print.
            let text = match text.rfind(" at line ") {
                Some(i) => &text[..i],
                None => &text,
            };
            problem.message = text.lines().next().unwrap_or_default().trim().to_string();
        }
    }
    problem
}

/// Rust scalar type names as an operator would say them.
fn describe_type(ty: &str) -> String {
    match ty {
        "u8" => "a whole number 0..=255".into(),
        "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "bool" => "`true` or `false`".into(),
        other => format!("a value of type {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_budget_breach_is_said_in_words_with_its_place() {
        let mut b = budget();
        b.max_nodes = 12;
        let text = "services:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n  - name: b\n";
        let p = parse_within::<RawConfig>(text, "t.yaml", b).unwrap_err();
        assert_eq!(
            p.to_string(),
            "t.yaml:5:14: services[0].checks[0]: the file has more than 10000000 YAML nodes (keys, values, lists and maps) — split the services over several files with `include:`"
        );
    }
}
