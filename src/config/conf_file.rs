//! Tokenizer for coturn's `turnserver.conf`.
//!
//! Grammar, as coturn reads it: one option per line; leading blanks are skipped; a line whose
//! first non-blank character is `#` is a comment; the key runs up to the first space, tab or
//! `=`, and every space, tab and `=` after it is skipped, so `key=value`, `key value` and
//! `key = value` are the same; a line with only a key is a bare flag. A `#` later in the line is
//! part of the value, because secrets may contain it. Trailing blanks are stripped, and one pair
//! of surrounding double (or, as a ferroturn extension, single) quotes is removed.

use super::{RawEntry, Source};

/// The entries of one file and the problems seen while splitting it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Entries in file order.
    pub entries: Vec<RawEntry>,
    /// Non-fatal oddities (coturn's "line ends with semicolon" check).
    pub warnings: Vec<String>,
}

/// Splits `text` into entries; `origin` names the file in every entry's [`Source`].
pub fn parse(text: &str, origin: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (index, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let source = Source::File {
            path: origin.to_string(),
            line: index + 1,
        };
        if line.ends_with(';') {
            parsed.warnings.push(format!(
                "{source}: line ends with a semicolon; is it part of the value?"
            ));
        }
        let (key, rest) = match line.find([' ', '\t', '=']) {
            Some(i) => (&line[..i], &line[i..]),
            None => (line, ""),
        };
        let rest = rest.trim_start_matches([' ', '\t', '=']);
        let key = key.strip_prefix("--").unwrap_or(key);
        let value = if rest.is_empty() {
            None
        } else {
            Some(unquote(rest).to_string())
        };
        parsed.entries.push(RawEntry {
            key: key.to_string(),
            value,
            source,
        });
    }
    parsed
}

/// Removes one pair of matching surrounding quotes.
pub(crate) fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_conf::key_values;

    /// Lines and the one entry each gives.
    #[test]
    fn spellings_give_one_entry() {
        let cases = [
            // Separators: `=`, blanks, a tab, blanks around `=`, blanks around the line.
            ("min-port=49160", "min-port", Some("49160")),
            ("min-port 49160", "min-port", Some("49160")),
            ("min-port\t49160", "min-port", Some("49160")),
            ("min-port = 49160", "min-port", Some("49160")),
            ("  min-port=49160   ", "min-port", Some("49160")),
            // Bare flags.
            ("fingerprint", "fingerprint", None),
            ("fingerprint   ", "fingerprint", None),
            ("fingerprint=", "fingerprint", None),
            // A `#` inside a value is kept.
            (
                "static-auth-secret=abc#def # not a comment",
                "static-auth-secret",
                Some("abc#def # not a comment"),
            ),
            // Balanced quotes are stripped, others kept.
            (
                "realm=\"meet.example.com\"",
                "realm",
                Some("meet.example.com"),
            ),
            (
                "realm='meet.example.com'",
                "realm",
                Some("meet.example.com"),
            ),
            ("realm=\"a b\"  ", "realm", Some("a b")),
            ("realm=\"unbalanced", "realm", Some("\"unbalanced")),
            ("realm=\"", "realm", Some("\"")),
            ("realm=\"mixed'", "realm", Some("\"mixed'")),
            // A `--` prefix is tolerated.
            ("--listening-port=3478", "listening-port", Some("3478")),
            // A value may hold blanks and `=`.
            ("cipher-list=A B=C", "cipher-list", Some("A B=C")),
        ];
        for (line, key, value) in cases {
            let p = parse(line, "t.conf");
            assert_eq!(key_values(&p.entries), [(key, value)], "{line:?}");
        }
    }

    #[test]
    fn comments_and_blank_lines() {
        let p = parse(
            "# comment\n\n   # indented comment\n\t\nrealm=x\n",
            "t.conf",
        );
        assert_eq!(p.entries.len(), 1);
        assert_eq!(
            p.entries[0].source,
            Source::File {
                path: "t.conf".into(),
                line: 5
            }
        );
    }

    #[test]
    fn crlf_line_endings() {
        let p = parse("realm=x\r\nfingerprint\r\n", "t.conf");
        assert_eq!(p.entries[0].value.as_deref(), Some("x"));
        assert_eq!(p.entries[1].key, "fingerprint");
    }

    #[test]
    fn semicolon_warning() {
        let p = parse("realm=example.com;", "t.conf");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].starts_with("t.conf:1: "), "{}", p.warnings[0]);
    }

    #[test]
    fn keeps_order_and_line_numbers() {
        let p = parse("a=1\n#\nb=2\nc", "x");
        let lines: Vec<_> = p
            .entries
            .iter()
            .map(|e| match &e.source {
                Source::File { line, .. } => *line,
                _ => 0,
            })
            .collect();
        assert_eq!(lines, vec![1, 3, 4]);
    }
}
