//! `include:` patterns → the files they name.
//!
//! A pattern is a path relative to the including file's directory (or
//! absolute) whose components may use `*` (any run of characters) and `?`
//! (one character); `**` is not supported. Matches are regular files, sorted
//! by path, hidden files (`.name`) only when the pattern component starts
//! with a dot. Only the main file includes: included files cannot include
//! further, so there are no cycles to follow.

use std::path::{Component, Path, PathBuf};

/// What an include pattern resolved to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expanded {
    /// Matching files, sorted; empty when a wildcard pattern matched nothing.
    Files(Vec<PathBuf>),
    /// A pattern without wildcards names one file, and it does not exist.
    Missing(PathBuf),
}

/// A pattern that cannot name files; the text is the problem's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    #[error("empty include pattern")]
    Empty,
    /// Quotes the pattern, trimmed.
    #[error("include pattern `{0}`: `**` is not supported; use `*` within one directory")]
    RecursiveWildcard(String),
}

/// Expand `pattern` against `base` (the including file's directory).
pub(crate) fn expand(base: &Path, pattern: &str) -> Result<Expanded, PatternError> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    if pattern.contains("**") {
        return Err(PatternError::RecursiveWildcard(pattern.to_string()));
    }
    let rel = Path::new(pattern);
    let full = if rel.is_absolute() {
        rel.to_path_buf()
    } else {
        base.join(rel)
    };
    if !has_wildcard(pattern) {
        return Ok(if full.is_file() {
            Expanded::Files(vec![full])
        } else {
            Expanded::Missing(full)
        });
    }
    let mut found = vec![PathBuf::new()];
    let components: Vec<Component> = full.components().collect();
    for (i, c) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let part = c.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for dir in &found {
            if !has_wildcard(&part) {
                let p = dir.join(c.as_os_str());
                if (last && p.is_file()) || (!last && p.is_dir()) {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            }) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if !matches(&part, &name) {
                    continue;
                }
                let p = dir.join(&name);
                if (last && p.is_file()) || (!last && p.is_dir()) {
                    next.push(p);
                }
            }
        }
        found = next;
    }
    found.sort();
    Ok(Expanded::Files(found))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Shell-style match of one path component: `*` any run, `?` one character.
fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, name: &str, expected: bool) {
        assert_eq!(matches(pattern, name), expected, "{pattern} vs {name}");
    }

    #[test]
    fn wildcards() {
        check("*.yaml", "a.yaml", true);
        check("*.yaml", "a.yml", false);
        check("*.y*ml", "a.yml", true);
        check("a?c", "abc", true);
        check("a?c", "ac", false);
        check("*", "", true);
        check("*a*b", "xxaxxb", true);
        check("*a*b", "xxaxxbc", false);
        check("svc-*.yaml", "svc-identity.yaml", true);
    }

    #[test]
    fn expands_relative_to_the_base_sorted_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("conf.d");
        std::fs::create_dir_all(d.join("sub.yaml")).unwrap();
        for f in ["b.yaml", "a.yaml", ".hidden.yaml", "c.txt"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        assert_eq!(
            expand(dir.path(), "conf.d/*.yaml").unwrap(),
            Expanded::Files(vec![d.join("a.yaml"), d.join("b.yaml")])
        );
        assert_eq!(
            expand(dir.path(), "conf.d/none-*.yaml").unwrap(),
            Expanded::Files(vec![])
        );
        assert_eq!(
            expand(dir.path(), "conf.d/a.yaml").unwrap(),
            Expanded::Files(vec![d.join("a.yaml")])
        );
        assert_eq!(
            expand(dir.path(), "conf.d/x.yaml").unwrap(),
            Expanded::Missing(d.join("x.yaml"))
        );
        assert_eq!(
            expand(dir.path(), "*/b.yaml").unwrap(),
            Expanded::Files(vec![d.join("b.yaml")])
        );
        assert_eq!(
            expand(dir.path(), " conf.d/**/*.yaml ").map_err(|e| e.to_string()),
            Err(
                "include pattern `conf.d/**/*.yaml`: `**` is not supported; use `*` within one directory"
                    .to_string()
            )
        );
        assert_eq!(expand(dir.path(), "  "), Err(PatternError::Empty));
    }
}
