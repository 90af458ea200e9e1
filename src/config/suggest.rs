//! "Did you mean ...?": the closest known word to a misspelt one, for
//! unknown keys, notifier types, services and notifiers.

/// The closest candidate to a misspelt `word`: edit distance of at most 2, or
/// one being a prefix of the other. `None` when nothing is close.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let cl = c.to_ascii_lowercase();
            let d = edit_distance(&lower, &cl);
            let prefix = !lower.is_empty() && (cl.starts_with(&lower) || lower.starts_with(&cl));
            // A prefix (`time` for `timeout`) beats a short accidental distance.
            (d <= 2 || prefix).then_some(((!prefix, d), c))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(word: &str, expected: Option<&str>) {
        let keys = ["interval", "timeout", "name", "http", "tcp", "dns", "tls"];
        assert_eq!(suggest(word, keys), expected, "{word}");
    }

    #[test]
    fn suggestions() {
        check("intervl", Some("interval"));
        check("Interval", Some("interval"));
        check("timout", Some("timeout"));
        check("time", Some("timeout"));
        check("htp", Some("http"));
        check("frobnicate", None);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
