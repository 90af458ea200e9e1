//! The grammar of `expect.json` paths, a deliberately small JSON path:
//! `$`, `.key`, `['key']` / `["key"]` and `[index]`. No filters, wildcards
//! or slices: a health check asks for one value at a known place, and a tiny
//! grammar keeps errors obvious. It lives in config so `validate` rejects a
//! bad path at load time; the probe selects with the parsed segments.

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

#[cfg(test)]
mod tests {
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
}
