//! Selecting and comparing the value an `expect.json` path names; the
//! grammar ([`parse`], [`Segment`]) is config's, so a bad path is refused
//! at load time.

use serde_json::Value;

pub use crate::config::jsonpath::{JsonPathError, Segment, parse};

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
