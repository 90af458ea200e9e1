//! A deliberately small JSON path: `$`, `.key`, `['key']` / `["key"]` and
//! `[index]`. No filters, wildcards or slices: a health check asks for one
//! value at a known place, and a tiny grammar keeps errors obvious.
//!
//! Public so config validation can reject a bad path at load time with
//! [`parse`] instead of at the first probe run.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON path {path:?} at byte {at}: {what}")]
pub struct JsonPathError {
    pub path: String,
    pub at: usize,
    pub what: &'static str,
}

/// Parses `$.a.b[0]['c d']` into segments.
pub fn parse(path: &str) -> Result<Vec<Segment>, JsonPathError> {
    let err = |at: usize, what: &'static str| JsonPathError {
        path: path.to_string(),
        at,
        what,
    };
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'$') {
        return Err(err(0, "must start with `$`"));
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
                    end += 1;
                }
                if end == start {
                    return Err(err(start, "empty key after `.`"));
                }
                out.push(Segment::Key(path[start..end].to_string()));
                i = end;
            }
            b'[' => {
                let start = i + 1;
                match bytes.get(start) {
                    Some(&q @ (b'\'' | b'"')) => {
                        let key_start = start + 1;
                        let close = path[key_start..]
                            .find(q as char)
                            .map(|p| key_start + p)
                            .ok_or_else(|| err(start, "unterminated quoted key"))?;
                        if bytes.get(close + 1) != Some(&b']') {
                            return Err(err(close + 1, "expected `]` after quoted key"));
                        }
                        out.push(Segment::Key(path[key_start..close].to_string()));
                        i = close + 2;
                    }
                    _ => {
                        let close = path[start..]
                            .find(']')
                            .map(|p| start + p)
                            .ok_or_else(|| err(i, "unterminated `[`"))?;
                        let index = path[start..close]
                            .parse::<usize>()
                            .map_err(|_| err(start, "index must be a non-negative integer"))?;
                        out.push(Segment::Index(index));
                        i = close + 1;
                    }
                }
            }
            _ => return Err(err(i, "expected `.` or `[`")),
        }
    }
    Ok(out)
}

/// The value at `path`, if every step exists.
pub fn select<'a>(root: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Segment::Key(k) => v.as_object()?.get(k),
        Segment::Index(i) => v.as_array()?.get(*i),
    })
}

/// Equality as an operator means it: JSON equality, numbers compared by
/// value (`3` equals `3.0`), and a string expectation also matches a number
/// or bool whose text it is, because YAML authors often quote (`"3"`, `"true"`).
pub fn matches(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => a == e || a.as_f64() == e.as_f64(),
        (Value::Number(a), Value::String(e)) => a.to_string() == *e,
        (Value::Bool(a), Value::String(e)) => a.to_string() == *e,
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_string())
    }

    fn check(path: &str, expected: Result<Vec<Segment>, (usize, &'static str)>) {
        let got = parse(path).map_err(|e| (e.at, e.what));
        assert_eq!(got, expected, "path {path:?}");
    }

    #[test]
    fn parse_table() {
        check("$", Ok(vec![]));
        check("$.status", Ok(vec![key("status")]));
        check(
            "$.a.b[0].c",
            Ok(vec![key("a"), key("b"), Segment::Index(0), key("c")]),
        );
        check("$['a b']", Ok(vec![key("a b")]));
        check("$[\"x.y\"][12]", Ok(vec![key("x.y"), Segment::Index(12)]));
        check("status", Err((0, "must start with `$`")));
        check("$.", Err((2, "empty key after `.`")));
        check("$[-1]", Err((2, "index must be a non-negative integer")));
        check("$['a", Err((2, "unterminated quoted key")));
        check("$['a'", Err((5, "expected `]` after quoted key")));
        check("$[1", Err((1, "unterminated `[`")));
        check("$x", Err((1, "expected `.` or `[`")));
    }

    #[test]
    fn select_table() {
        let doc = json!({"status": "UP", "a": {"b": [{"c": 3}, {"c": 4}]}, "k y": true});
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("$.status", Some(json!("UP"))),
            ("$.a.b[1].c", Some(json!(4))),
            ("$['k y']", Some(json!(true))),
            ("$.a.b[2]", None),
            ("$.status.x", None),
            ("$.a[0]", None),
            ("$", Some(doc.clone())),
        ];
        for (path, want) in cases {
            let segs = parse(path).unwrap();
            assert_eq!(select(&doc, &segs), want.as_ref(), "path {path}");
        }
    }

    #[test]
    fn matches_table() {
        let cases = [
            (json!("UP"), json!("UP"), true),
            (json!("DOWN"), json!("UP"), false),
            (json!(3), json!(3), true),
            (json!(3), json!(3.0), true),
            (json!(3), json!("3"), true),
            (json!(true), json!("true"), true),
            (json!(true), json!(true), true),
            (json!("3"), json!(3), false),
            (json!(null), json!(null), true),
            (json!([1, 2]), json!([1, 2]), true),
            (json!({"a": 1}), json!({"a": 2}), false),
        ];
        for (actual, expected, want) in cases {
            assert_eq!(matches(&actual, &expected), want, "{actual} vs {expected}");
        }
    }
}
