//! Client-supplied text made safe for log lines.
//!
//! A USERNAME (or any other string a client sends) may carry CR, LF, ESC or NUL; written raw
//! into a log it forges lines or drives the operator's terminal. [`Escaped`] prints such bytes
//! as `\r`, `\n`, `\e`, `\0` or `\xNN`, and a backslash as `\\`, so an escaped string always
//! reads back unambiguously and stays on one line.

use std::fmt;

/// Displays a client-supplied string with control characters escaped.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut clean = 0;
        for (i, c) in s.char_indices() {
            let escape: Option<&str> = match c {
                '\r' => Some("\\r"),
                '\n' => Some("\\n"),
                '\t' => Some("\\t"),
                '\u{1b}' => Some("\\e"),
                '\0' => Some("\\0"),
                '\\' => Some("\\\\"),
                _ => None,
            };
            let needs = escape.is_some() || c.is_control() || is_invisible_format(c);
            if !needs {
                continue;
            }
            f.write_str(&s[clean..i])?;
            match escape {
                Some(e) => f.write_str(e)?,
                None if (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                None => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            clean = i + c.len_utf8();
        }
        f.write_str(&s[clean..])
    }
}

/// Characters that reorder or hide text on a terminal (bidirectional overrides, line and
/// paragraph separators), which `char::is_control` does not cover.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        Escaped(s).to_string()
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(esc("1700000000:alice"), "1700000000:alice");
        assert_eq!(esc("jürgen@例え.jp"), "jürgen@例え.jp");
        assert_eq!(esc(""), "");
    }

    #[test]
    fn line_breaks_escapes_and_nul_are_escaped() {
        assert_eq!(
            esc("bob\r\nINFO forged line\u{1b}[2J\0end"),
            "bob\\r\\nINFO forged line\\e[2J\\0end"
        );
        assert_eq!(esc("a\\nb"), "a\\\\nb");
        assert_eq!(esc("\u{7f}\u{85}x"), "\\x7f\\x85x");
        assert_eq!(esc("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
    }

    #[test]
    fn output_never_contains_control_characters() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let out = esc(&all);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
    }
}
